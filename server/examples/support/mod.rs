//! What the whole-system benches (`sync_bench`, `blob_bench`, `scale_bench`, `load_bench`)
//! share: a real `quartier-server` release process on a free loopback port, `--name value`
//! arguments, and signed changes made without a device store ([`signed`]).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

// Not every bench makes its own signed changes.
#[allow(dead_code)]
pub mod signed;

pub type BoxError = Box<dyn std::error::Error>;

/// A running server, killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the `quartier-server` next to this example's binary (same profile) on `data`.
#[allow(dead_code)] // `load_bench` picks its binary itself.
pub fn start_server(data: &std::path::Path) -> Result<Server, BoxError> {
    start_server_at(&server_binary()?, data)
}

/// The `quartier-server` next to this example's binary (same profile).
pub fn server_binary() -> Result<std::path::PathBuf, BoxError> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().and_then(|p| p.parent()).ok_or("no target dir")?;
    Ok(dir.join("quartier-server"))
}

/// Starts the `quartier-server` binary `binary` on `data` (another build of it, to compare).
pub fn start_server_at(binary: &std::path::Path, data: &std::path::Path) -> Result<Server, BoxError> {
    let mut child = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        // Bench settings: any device may register spaces, no rate limits (docs/server.md).
        .args([
            "--space-creation",
            "anyone",
            "--rate-per-address-per-minute",
            "0",
            "--rate-per-device-per-minute",
            "0",
            "--registrations-per-hour",
            "0",
            "--redemptions-per-hour",
            "0",
        ])
        .env("QUARTIER_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start {}: {e} (build it with cargo build --release -p quartier-server)",
                binary.display()
            )
        })?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
    let url = line.trim().rsplit(' ').next().ok_or("no url")?.to_owned();
    Ok(Server { child, url })
}

/// A scratch folder on a memory file system when there is one (`/dev/shm`): what the benches
/// measure is the server and the sync, not the disk of the machine generating the content.
#[allow(dead_code)] // `blob_bench` measures the disk too.
pub fn scratch_dir() -> Result<tempfile::TempDir, BoxError> {
    let shm = std::path::Path::new("/dev/shm");
    Ok(if shm.is_dir() {
        tempfile::tempdir_in(shm)?
    } else {
        tempfile::tempdir()?
    })
}

/// The value after `name` on the command line, or `default`.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `/proc/<pid>/status` figure in KiB (`VmRSS`, `VmHWM` …), where the system has one.
/// (Not every bench reports memory.)
#[allow(dead_code)]
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Waits (at most `limit`) until the server's creation prover (`sync::creations`, off the push
/// path) has recorded the forms of the documents in `data` never edited since their first
/// change, as it has long done on a real server by the time a new member joins; returns how
/// long that took. Stops early once the number left stops falling for five seconds (a document
/// the rule cannot rebuild never gets a form).
#[allow(dead_code)] // only the benches with an initial sync wait for it.
pub fn wait_for_creation_forms(
    data: &std::path::Path,
    limit: std::time::Duration,
) -> Result<std::time::Duration, BoxError> {
    let started = std::time::Instant::now();
    let db = rusqlite::Connection::open_with_flags(
        data.join("quartier-server.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let left = || -> rusqlite::Result<i64> {
        db.query_row(
            "SELECT count(*) FROM (SELECT doc_id FROM log WHERE record = 'change'
                                   GROUP BY doc_id HAVING count(*) = 1)
             WHERE doc_id NOT IN (SELECT doc_id FROM doc_creations)",
            [],
            |r| r.get(0),
        )
    };
    let (mut last, mut since) = (left()?, std::time::Instant::now());
    while last > 0 && started.elapsed() < limit && since.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = left()?;
        if now < last {
            since = std::time::Instant::now();
        }
        last = now;
    }
    Ok(started.elapsed())
}
