//! The connections to one Redis server or Cluster, shared by every cache of the process that
//! names it: a pool of idle connections (a failed one is dropped, and the next command
//! connects anew), connect and command timeouts, and a pause after a failed connection during
//! which commands fail at once rather than wait for the timeout again.
//!
//! A URL `redis+cluster://[[user]:password@]host:port[,host:port...]` names a Cluster by some
//! of its nodes: commands go through the `redis` crate's cluster client (each script to the
//! node of its first key's slot, following redirections), and the subscriber listens on one
//! node at a time (Cluster forwards every `PUBLISH` to every node).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use super::Redis;
use super::renewal::Renewals;
use super::subscriber::Hub;

/// The scheme of URLs that name a Cluster.
pub(crate) const CLUSTER_SCHEME: &str = "redis+cluster://";

/// How the process reaches the server.
enum Backend {
    Single(redis::Client),
    /// A Cluster: the cluster client, and a plain client per node named (for pub/sub).
    Cluster {
        client: redis::cluster::ClusterClient,
        nodes: Vec<redis::Client>,
    },
}

/// A connection to a server or to a Cluster.
pub(crate) enum Connection {
    Single(redis::Connection),
    Cluster(redis::cluster::ClusterConnection),
}

impl Connection {
    fn like(&mut self) -> &mut dyn redis::ConnectionLike {
        match self {
            Connection::Single(c) => c,
            Connection::Cluster(c) => c,
        }
    }
}

/// One server (or Cluster), as the caches of this process reach it.
pub(crate) struct Server {
    backend: Backend,
    /// The URL without its password: what messages name.
    pub(crate) name: String,
    pub(crate) config: Redis,
    idle: Mutex<Vec<Connection>>,
    /// The node the subscriber tries next (a Cluster's nodes in turn).
    next_node: AtomicU64,
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
        let backend = match cluster_nodes(&config.url) {
            Some(nodes) => {
                let nodes = nodes?;
                let client =
                    redis::cluster::ClusterClientBuilder::new(nodes.iter().map(String::as_str))
                        .connection_timeout(config.connect_timeout)
                        .response_timeout(config.command_timeout)
                        // A down node costs a few tries, not the client's default sixteen.
                        .retries(2)
                        .min_retry_wait(10)
                        .max_retry_wait(100)
                        .build()
                        .map_err(|e| e.to_string())?;
                let nodes = nodes
                    .iter()
                    .map(|node| redis::Client::open(node.as_str()))
                    .collect::<Result<_, _>>()
                    .map_err(|e| e.to_string())?;
                Backend::Cluster { client, nodes }
            }
            None => Backend::Single(
                redis::Client::open(config.url.as_str()).map_err(|e| e.to_string())?,
            ),
        };
        let server = Arc::new(Server {
            backend,
            next_node: AtomicU64::new(0),
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

    /// Whether this is a Cluster (whose scripts each stay in one slot).
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.backend, Backend::Cluster { .. })
    }

    /// A new connection with the command timeout set on it.
    fn connect(&self) -> redis::RedisResult<Connection> {
        match &self.backend {
            Backend::Single(client) => self.connect_to(client).map(Connection::Single),
            Backend::Cluster { client, .. } => client.get_connection().map(Connection::Cluster),
        }
    }

    fn connect_to(&self, client: &redis::Client) -> redis::RedisResult<redis::Connection> {
        let connection = client.get_connection_with_timeout(self.config.connect_timeout)?;
        connection.set_read_timeout(Some(self.config.command_timeout))?;
        connection.set_write_timeout(Some(self.config.command_timeout))?;
        Ok(connection)
    }

    /// A connection for the subscriber: the server's, or a Cluster node's (each call the next
    /// node named, so that a down node is left for another).
    pub(crate) fn subscriber_connection(&self) -> redis::RedisResult<redis::Connection> {
        match &self.backend {
            Backend::Single(client) => self.connect_to(client),
            Backend::Cluster { nodes, .. } => {
                let turn = self.next_node.fetch_add(1, Ordering::Relaxed) as usize;
                self.connect_to(&nodes[turn % nodes.len()])
            }
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Runs `command` on an idle connection or a new one. A failure drops the connection (the
    /// next command connects anew); a failure to connect makes commands skip the server for
    /// `retry_after`. The error is the message to log.
    pub(crate) fn run<T>(
        &self,
        command: impl FnOnce(&mut dyn redis::ConnectionLike) -> redis::RedisResult<T>,
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
        match command(connection.like()) {
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

/// The nodes a `redis+cluster://` URL names, as `redis://` URLs (`None`: not a Cluster URL;
/// `Err`: what is wrong with it).
fn cluster_nodes(url: &str) -> Option<Result<Vec<String>, String>> {
    let rest = url.strip_prefix(CLUSTER_SCHEME)?;
    let (auth, hosts) = match rest.rfind('@') {
        Some(at) => (&rest[..=at], &rest[at + 1..]),
        None => ("", rest),
    };
    let hosts = match hosts.split_once('/') {
        None => hosts,
        Some((hosts, "" | "0")) => hosts,
        Some((_, db)) => {
            return Some(Err(format!(
                "a Cluster has only database 0, and the URL names database {db}"
            )));
        }
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|node| !node.is_empty())
        .map(|node| format!("redis://{auth}{node}/"))
        .collect();
    if nodes.is_empty() {
        return Some(Err(format!(
            "it names no node: write {CLUSTER_SCHEME}host:port[,host:port...]"
        )));
    }
    Some(Ok(nodes))
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
    use super::{cluster_nodes, public_name};

    #[test]
    fn a_cluster_url_names_its_nodes() {
        assert_eq!(cluster_nodes("redis://127.0.0.1:6379/"), None);
        assert_eq!(
            cluster_nodes("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001/"),
            Some(Ok(vec![
                "redis://:pw@10.0.0.1:7000/".to_owned(),
                "redis://:pw@10.0.0.2:7001/".to_owned()
            ]))
        );
        assert_eq!(
            cluster_nodes("redis+cluster://h:1"),
            Some(Ok(vec!["redis://h:1/".to_owned()]))
        );
        let db = cluster_nodes("redis+cluster://h:1/3").unwrap().unwrap_err();
        assert!(db.contains("database 3"), "{db}");
        assert!(cluster_nodes("redis+cluster:///").unwrap().is_err());
    }

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
