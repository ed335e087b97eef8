//! Just enough of the W3C WebDriver protocol to drive Debian's headless Chromium through
//! chromedriver: sessions, navigation, clicks, typing, scripts and screenshots.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// Where Debian's chromium-driver puts them; `CHROMEDRIVER` and `CHROMIUM` name others.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// How long a page gets to show what a step waits for (a stream event included) under a loaded CI.
pub const WAIT: Duration = Duration::from_secs(30);

/// A running chromedriver, stopped when dropped.
pub struct Driver {
    base: String,
    http: reqwest::Client,
    _process: Child,
}

impl Driver {
    pub async fn start() -> Self {
        let program = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.into());
        assert!(
            Path::new(&program).exists(),
            "{program} is missing: `make test` installs Debian's chromium and chromium-driver"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let process = Command::new(&program)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let driver = Self { base: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new(), _process: process };
        let started = Instant::now();
        loop {
            let ready = driver.http.get(format!("{}/status", driver.base)).send().await;
            if let Ok(response) = ready
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == true
            {
                return driver;
            }
            assert!(started.elapsed() < WAIT, "chromedriver did not get ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new headless browser with a fresh profile: a desktop window, or a phone's screen (a
    /// viewport of `width` x `height` CSS pixels at twice the density, with touch).
    pub async fn browser(&self, name: &str, screen: Screen) -> Browser {
        let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
        // The machine's network is closed: no background connections, no first-run calls home.
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ]
        .map(String::from)
        .into();
        let mut options = json!({ "binary": binary });
        match screen {
            Screen::Desktop { width, height } => args.push(format!("--window-size={width},{height}")),
            Screen::Phone { width, height } => {
                let metrics = json!({ "width": width, "height": height, "pixelRatio": 2, "touch": true });
                options["mobileEmulation"] = json!({ "deviceMetrics": metrics });
            }
        }
        options["args"] = json!(args);
        let capabilities =
            json!({ "capabilities": { "alwaysMatch": { "browserName": "chrome", "goog:chromeOptions": options } } });
        let response = self.http.post(format!("{}/session", self.base)).json(&capabilities).send().await;
        let value = match response {
            Ok(response) => response.json::<Value>().await.unwrap_or_default(),
            Err(err) => panic!("chromedriver does not answer: {err}"),
        };
        let Some(id) = value["value"]["sessionId"].as_str() else { panic!("no browser session: {value}") };
        Browser { name: name.into(), session: format!("{}/session/{id}", self.base), http: self.http.clone() }
    }
}

#[derive(Clone, Copy)]
pub enum Screen {
    Desktop { width: u32, height: u32 },
    Phone { width: u32, height: u32 },
}

/// One browser window.
pub struct Browser {
    pub name: String,
    session: String,
    http: reqwest::Client,
}

impl Browser {
    async fn command(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|err| err.to_string())?;
        let ok = response.status().is_success();
        let value: Value = response.json().await.map_err(|err| err.to_string())?;
        if ok { Ok(value["value"].clone()) } else { Err(value["value"]["message"].as_str().unwrap_or("?").to_owned()) }
    }

    pub async fn go(&self, url: &str) -> Result<(), String> {
        self.command(Method::POST, "/url", Some(json!({ "url": url }))).await.map(drop)
    }

    async fn element(&self, css: &str) -> Result<String, String> {
        let found =
            self.command(Method::POST, "/element", Some(json!({ "using": "css selector", "value": css }))).await?;
        // The W3C element reference key.
        found["element-6066-11e4-a52e-4f735466cecf"].as_str().map(str::to_owned).ok_or_else(|| format!("no {css}"))
    }

    /// Clicks the element `css` finds. A page that re-renders a list between the find and the
    /// click (a live event arriving) leaves a stale reference: the element is found again.
    pub async fn click(&self, css: &str) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let element = self.element(css).await?;
            match self.command(Method::POST, &format!("/element/{element}/click"), Some(json!({}))).await {
                Err(err) if err.contains("stale element") && started.elapsed() < WAIT => continue,
                done => return done.map(drop),
            }
        }
    }

    /// Types `text` into the element as keystrokes (a file path, for a file input).
    pub async fn type_into(&self, css: &str, text: &str) -> Result<(), String> {
        let element = self.element(css).await?;
        self.command(Method::POST, &format!("/element/{element}/value"), Some(json!({ "text": text }))).await.map(drop)
    }

    /// Accepts the page's `confirm()` once it shows.
    pub async fn accept_alert(&self) -> Result<(), String> {
        let started = Instant::now();
        loop {
            match self.command(Method::POST, "/alert/accept", Some(json!({}))).await {
                Ok(_) => return Ok(()),
                Err(err) if started.elapsed() > WAIT => return Err(err),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub async fn script(&self, script: &str) -> Result<Value, String> {
        self.command(Method::POST, "/execute/sync", Some(json!({ "script": script, "args": [] }))).await
    }

    /// Waits until `script` returns something truthy.
    pub async fn until(&self, script: &str) -> Result<Value, String> {
        let started = Instant::now();
        loop {
            match self.script(script).await {
                Ok(value) if !matches!(value, Value::Null | Value::Bool(false)) => return Ok(value),
                Ok(_) if started.elapsed() > WAIT => return Err(format!("not within {WAIT:?}: {script}")),
                Err(err) if started.elapsed() > WAIT => return Err(err),
                _ => tokio::time::sleep(Duration::from_millis(150)).await,
            }
        }
    }

    pub async fn screenshot(&self, path: &Path) -> Result<PathBuf, String> {
        let encoded = self.command(Method::GET, "/screenshot", None).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .map_err(|err| err.to_string())?;
        std::fs::write(path, png).map_err(|err| err.to_string())?;
        Ok(path.to_owned())
    }

    pub async fn close(&self) {
        let _ = self.command(Method::DELETE, "", None).await;
    }
}
