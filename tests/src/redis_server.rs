//! A real Redis server for the `redis` tests: the one `.ci/run` started (its URL in
//! `CACHEMAN_REDIS_URL`), or one started here from the `redis-server` binary on 127.0.0.1 at a
//! free port, with no persistence, stopped when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::child;

/// A `redis-server` process this test started.
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    process: Option<Child>,
    /// Started by `.ci/run`, not here: never stopped or restarted by a test.
    external: bool,
}

/// The `redis-server` binary: `$CACHEMAN_REDIS_SERVER`, else the first on `PATH`, else
/// Debian's place.
pub fn server_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CACHEMAN_REDIS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("redis-server"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        let debian = Path::new("/usr/bin/redis-server");
        debian.is_file().then(|| debian.to_owned())
    })
}

/// The server `.ci/run` started (`CACHEMAN_REDIS_URL`, on this machine), or one started here
/// (see [`start_or_skip`]). For tests that never stop the server; each uses keys of its own
/// (its own manager name).
pub fn running_or_skip(test: &str) -> Option<RedisServer> {
    let url = std::env::var("CACHEMAN_REDIS_URL").unwrap_or_default();
    let port = url
        .strip_prefix("redis://127.0.0.1:")
        .and_then(|rest| rest.trim_end_matches('/').parse::<u16>().ok());
    match port {
        Some(port) => Some(RedisServer {
            binary: server_binary().unwrap_or_else(|| PathBuf::from("redis-server")),
            port,
            dir: tempfile::tempdir().expect("a temporary directory"),
            process: None,
            external: true,
        }),
        None => start_or_skip(test),
    }
}

/// A server of this test's own, started here: says why a test cannot run, and fails instead
/// under CI (`CI` set), which must have a server binary; returns `None` to skip.
pub fn start_or_skip(test: &str) -> Option<RedisServer> {
    binary_or_skip(test).map(RedisServer::start)
}

/// The `redis-server` binary; or says why `test` cannot run and returns `None` (fails instead
/// under CI, which must have one).
pub fn binary_or_skip(test: &str) -> Option<PathBuf> {
    match server_binary() {
        Some(binary) => Some(binary),
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: no redis-server binary, and CI must have one (.ci/run installs \
                 Debian's redis-server)"
            );
            eprintln!(
                "SKIPPED {test}: no redis-server binary found (install Debian's redis-server, \
                 or set CACHEMAN_REDIS_SERVER)"
            );
            None
        }
    }
}

impl RedisServer {
    fn start(binary: PathBuf) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut server = RedisServer {
            binary,
            port,
            dir: tempfile::tempdir().expect("a temporary directory"),
            process: None,
            external: false,
        };
        server.restart();
        server
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the server (again, on the same port, empty) and waits until it accepts
    /// connections.
    pub fn restart(&mut self) {
        assert!(
            !self.external,
            "a test restarted the server .ci/run started"
        );
        assert!(self.process.is_none(), "the server runs already");
        let process = Command::new(&self.binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", self.binary.display()));
        self.process = Some(process);
        let address = ("127.0.0.1", self.port);
        let up = child::poll(|| {
            TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], self.port)),
                Duration::from_millis(100),
            )
            .ok()
        });
        assert!(up.is_some(), "redis-server did not listen on {address:?}");
    }

    /// Stops the server (SIGKILL: nothing is saved) and waits for it to end.
    pub fn stop(&mut self) {
        assert!(
            !self.external || self.process.is_none(),
            "a test stopped the server .ci/run started"
        );
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            child::wait(&mut process, "redis-server");
        }
    }

    /// The server's clock (`TIME`) in milliseconds: what its expiry of keys follows.
    pub fn time_ms(&self) -> u64 {
        time_ms(&self.cli(&["TIME"]))
    }

    /// Runs `redis-cli` against the server with `args`; what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        let cli = self.binary.with_file_name("redis-cli");
        let mut command = Command::new(if cli.is_file() {
            cli
        } else {
            PathBuf::from("redis-cli")
        });
        command.args(["-p", &self.port.to_string()]).args(args);
        let out = child::output(&mut command);
        assert!(out.status.success(), "{command:?} failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Milliseconds from what `redis-cli TIME` printed (seconds, then microseconds).
pub fn time_ms(printed: &str) -> u64 {
    let mut parts = printed
        .split_whitespace()
        .map(|p| p.parse::<u64>().unwrap());
    let (seconds, micros) = (parts.next().unwrap(), parts.next().unwrap());
    seconds * 1000 + micros / 1000
}
