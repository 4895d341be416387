//! The connections to one Redis server, shared by every cache of the process that names it:
//! a pool of idle connections (a failed one is dropped, and the next command connects anew),
//! connect and command timeouts, and a pause after a failed connection during which commands
//! fail at once rather than wait for the timeout again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use super::Redis;
use super::renewal::Renewals;
use super::subscriber::Hub;

/// One server, as the caches of this process reach it.
pub(crate) struct Server {
    client: redis::Client,
    /// The URL without its password: what messages name.
    pub(crate) name: String,
    pub(crate) config: Redis,
    idle: Mutex<Vec<redis::Connection>>,
    started: Instant,
    /// Milliseconds since `started` before which commands do not try to connect.
    skip_until_ms: AtomicU64,
    /// Whether the last command succeeded: a warning is logged when this turns false, not at
    /// every failed command of a down server.
    healthy: AtomicBool,
    pub(crate) hub: Hub,
    pub(crate) renewals: Renewals,
}

/// Idle connections kept per server; more are made when more threads ask at once.
const MAX_IDLE: usize = 16;

impl Server {
    /// The server `config` names, shared with the other caches of the process that name it
    /// with the same timeouts. An invalid URL is an error naming it.
    pub(crate) fn shared(config: &Redis) -> Result<Arc<Server>, String> {
        static SERVERS: Mutex<Vec<Weak<Server>>> = Mutex::new(Vec::new());
        let mut servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
        servers.retain(|s| s.strong_count() > 0);
        let same = |s: &Server| {
            s.config.url == config.url
                && s.config.connect_timeout == config.connect_timeout
                && s.config.command_timeout == config.command_timeout
                && s.config.retry_after == config.retry_after
        };
        if let Some(server) = servers.iter().filter_map(Weak::upgrade).find(|s| same(s)) {
            return Ok(server);
        }
        let client = redis::Client::open(config.url.as_str()).map_err(|e| e.to_string())?;
        let server = Arc::new(Server {
            client,
            name: public_name(&config.url),
            config: config.clone(),
            idle: Mutex::new(Vec::new()),
            started: Instant::now(),
            skip_until_ms: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
            hub: Hub::default(),
            renewals: Renewals::default(),
        });
        servers.push(Arc::downgrade(&server));
        Ok(server)
    }

    /// A new connection with the command timeout set on it.
    pub(crate) fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let connection = self
            .client
            .get_connection_with_timeout(self.config.connect_timeout)?;
        connection.set_read_timeout(Some(self.config.command_timeout))?;
        connection.set_write_timeout(Some(self.config.command_timeout))?;
        Ok(connection)
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Runs `command` on an idle connection or a new one. A failure drops the connection (the
    /// next command connects anew); a failure to connect makes commands skip the server for
    /// `retry_after`. The error is the message to log.
    pub(crate) fn run<T>(
        &self,
        command: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, String> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut connection = match idle {
            Some(connection) => connection,
            None => {
                if self.now_ms() < self.skip_until_ms.load(Ordering::Acquire) {
                    return Err("the server failed a moment ago; not tried again yet".into());
                }
                match self.connect() {
                    Ok(connection) => connection,
                    Err(err) => {
                        let pause = self.config.retry_after.as_millis() as u64;
                        self.skip_until_ms
                            .store(self.now_ms() + pause, Ordering::Release);
                        return Err(format!("could not connect: {err}"));
                    }
                }
            }
        };
        match command(&mut connection) {
            Ok(value) => {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                if idle.len() < MAX_IDLE {
                    idle.push(connection);
                }
                drop(idle);
                if !self.healthy.swap(true, Ordering::AcqRel) {
                    log::info!("cacheman: the Redis server {} answers again", self.name);
                }
                Ok(value)
            }
            Err(err) => {
                // A connection that failed may hold half an answer: never reused. Others
                // idle may be as dead (a restarted server): they fail once each.
                if err.is_io_error() || err.is_connection_dropped() || err.is_timeout() {
                    self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
                }
                Err(err.to_string())
            }
        }
    }

    /// Whether this failure is the first since the server last answered (then it is worth a
    /// warning; later ones are logged at debug level).
    pub(crate) fn first_failure(&self) -> bool {
        self.healthy.swap(false, Ordering::AcqRel)
    }
}

/// `url` without a password, for messages and logs.
fn public_name(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::public_name;

    #[test]
    fn a_password_never_reaches_a_message() {
        assert_eq!(
            public_name("redis://:hunter2@cache.internal:6379/0"),
            "redis://…@cache.internal:6379/0"
        );
        assert_eq!(
            public_name("redis://127.0.0.1:6379/"),
            "redis://127.0.0.1:6379/"
        );
    }
}
