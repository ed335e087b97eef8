//! CORS as AWS answers it, from template.yaml's own settings: the HttpApi's `CorsConfiguration` for
//! the API and the media bucket's `CorsRules` for S3, with the allowed origins of the
//! `AllowedOrigins` parameter (its default, or `DM_ALLOWED_ORIGINS`). A page on another origin then
//! works locally exactly as it will against a deployed stack.

use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method};
use serde_yaml_ng::Value;

use crate::{BoxError, template};

#[derive(Clone, Debug)]
pub struct Cors {
    origins: Vec<String>,
    methods: String,
    headers: String,
    expose: String,
    max_age: u64,
}

/// A list of the template (`[a, b]`) as `a,b`.
fn joined(list: &Value) -> String {
    list.as_sequence()
        .map(|items| items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

/// `DM_ALLOWED_ORIGINS`, else the template parameter's default.
pub fn allowed_origins() -> Result<Vec<String>, BoxError> {
    let configured = std::env::var("DM_ALLOWED_ORIGINS").ok().filter(|v| !v.is_empty());
    let template = template()?;
    let list = match configured {
        Some(list) => list,
        None => template["Parameters"]["AllowedOrigins"]["Default"]
            .as_str()
            .ok_or("template.yaml has no AllowedOrigins default")?
            .to_owned(),
    };
    Ok(list.split(',').map(|origin| origin.trim().to_owned()).filter(|o| !o.is_empty()).collect())
}

impl Cors {
    /// The HTTP API's settings.
    pub fn api(origins: Vec<String>) -> Result<Self, BoxError> {
        let template = template()?;
        let config = &template["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"];
        Ok(Self {
            origins,
            methods: joined(&config["AllowMethods"]),
            headers: joined(&config["AllowHeaders"]),
            expose: joined(&config["ExposeHeaders"]),
            max_age: config["MaxAge"].as_u64().unwrap_or(0),
        })
    }

    /// The media bucket's settings.
    pub fn bucket(origins: Vec<String>) -> Result<Self, BoxError> {
        let template = template()?;
        let rule = &template["Resources"]["MediaBucket"]["Properties"]["CorsConfiguration"]["CorsRules"][0];
        Ok(Self {
            origins,
            methods: joined(&rule["AllowedMethods"]),
            headers: joined(&rule["AllowedHeaders"]),
            expose: String::new(),
            max_age: rule["MaxAge"].as_u64().unwrap_or(0),
        })
    }

    /// What `Access-Control-Allow-Origin` says to a request from `origin`, if it may call.
    fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        let origin = origin?;
        if self.origins.iter().any(|o| o == "*") {
            return Some(HeaderValue::from_static("*"));
        }
        let origin_text = origin.to_str().ok()?;
        self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin_text)).then(|| origin.clone())
    }

    /// A preflight's answer headers; `None` when the request is no preflight. An origin that may not
    /// call gets an answer without CORS headers, which the browser refuses.
    pub fn preflight(&self, method: &Method, request: &HeaderMap) -> Option<HeaderMap> {
        if method != Method::OPTIONS
            || !request.contains_key(ORIGIN)
            || !request.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let mut answer = HeaderMap::new();
        if let Some(origin) = self.allow_origin(request.get(ORIGIN)) {
            answer.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            for (name, value) in [
                (ACCESS_CONTROL_ALLOW_METHODS, self.methods.clone()),
                (ACCESS_CONTROL_ALLOW_HEADERS, self.headers.clone()),
                (ACCESS_CONTROL_MAX_AGE, self.max_age.to_string()),
            ] {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    answer.insert(name, value);
                }
            }
        }
        answer.insert(VARY, HeaderValue::from_static("origin"));
        Some(answer)
    }

    /// Adds the CORS headers to the answer of an actual (not preflight) request from `origin`.
    pub fn decorate(&self, origin: Option<&HeaderValue>, answer: &mut HeaderMap) {
        if let Some(origin) = self.allow_origin(origin) {
            answer.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            if let Ok(expose) = HeaderValue::from_str(&self.expose)
                && !self.expose.is_empty()
            {
                answer.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose);
            }
        }
        answer.append(VARY, HeaderValue::from_static("origin"));
    }
}
