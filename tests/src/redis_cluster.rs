//! A real Redis Cluster for the `redis_cluster` tests: the one `.ci/run` started (its URL in
//! `CACHEMAN_REDIS_CLUSTER_URL`), or three masters started here from the `redis-server` binary
//! on 127.0.0.1 at free ports (`--cluster-enabled yes`, joined by `redis-cli --cluster
//! create`), with no persistence, stopped when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::child;
use crate::redis_server::{self, server_binary};

/// A Cluster of three masters, no replicas.
pub struct RedisCluster {
    binary: PathBuf,
    ports: Vec<u16>,
    _dir: tempfile::TempDir,
    processes: Vec<Child>,
}

/// The Cluster `.ci/run` started (`CACHEMAN_REDIS_CLUSTER_URL`, on this machine), or one
/// started here; `None` (with the reason printed) when no server binary can be had, which
/// fails under CI instead.
pub fn running_or_skip(test: &str) -> Option<RedisCluster> {
    let url = std::env::var("CACHEMAN_REDIS_CLUSTER_URL").unwrap_or_default();
    let ports: Option<Vec<u16>> = url
        .strip_prefix("redis+cluster://")
        .map(|rest| rest.trim_end_matches('/'))
        .and_then(|nodes| {
            nodes
                .split(',')
                .map(|node| node.strip_prefix("127.0.0.1:")?.parse().ok())
                .collect()
        });
    if let Some(ports) = ports {
        return Some(RedisCluster {
            binary: server_binary().unwrap_or_else(|| PathBuf::from("redis-server")),
            ports,
            _dir: tempfile::tempdir().expect("a temporary directory"),
            processes: Vec::new(),
        });
    }
    redis_server::binary_or_skip(test).map(RedisCluster::start)
}

/// A port free on 127.0.0.1 whose Cluster bus port (10000 above) is free too.
fn free_port(taken: &[u16]) -> u16 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos()) as usize
        + std::process::id() as usize * 7919;
    (0..25_000)
        .map(|i| 20_000 + ((seed + i * 131) % 25_000) as u16)
        .find(|port| {
            !taken.contains(port)
                && TcpListener::bind(("127.0.0.1", *port)).is_ok()
                && TcpListener::bind(("127.0.0.1", *port + 10_000)).is_ok()
        })
        .expect("a free port pair")
}

impl RedisCluster {
    fn start(binary: PathBuf) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut ports = Vec::new();
        let mut processes = Vec::new();
        for _ in 0..3 {
            let port = free_port(&ports);
            let node_dir = dir.path().join(port.to_string());
            std::fs::create_dir(&node_dir).unwrap();
            let process = Command::new(&binary)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&node_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("could not start {}: {e}", binary.display()));
            ports.push(port);
            processes.push(process);
        }
        let cluster = RedisCluster {
            binary,
            ports,
            _dir: dir,
            processes,
        };
        for port in cluster.ports.clone() {
            child::poll(|| {
                cluster
                    .try_cli(port, &["PING"])
                    .filter(|o| o.contains("PONG"))
            })
            .expect("a Cluster node never answered");
        }
        let nodes: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let mut create = vec!["--cluster", "create"];
        create.extend(nodes.iter().map(String::as_str));
        create.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        cluster.cli(cluster.ports[0], &create);
        for port in cluster.ports.clone() {
            child::poll(|| {
                cluster
                    .try_cli(port, &["CLUSTER", "INFO"])
                    .filter(|o| o.contains("cluster_state:ok"))
            })
            .expect("the Cluster never came up");
        }
        cluster
    }

    /// The URL naming the Cluster by all its nodes.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}/", nodes.join(","))
    }

    /// The masters' ports.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// The keys matching `pattern` held by the node at `port`.
    pub fn keys_on(&self, port: u16, pattern: &str) -> Vec<String> {
        self.cli(port, &["--scan", "--pattern", pattern])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn try_cli(&self, port: u16, args: &[&str]) -> Option<String> {
        let cli = self.binary.with_file_name("redis-cli");
        let mut command = Command::new(if cli.is_file() {
            cli
        } else {
            PathBuf::from("redis-cli")
        });
        command.args(["-p", &port.to_string()]).args(args);
        let out = child::output(&mut command);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `redis-cli` against the node at `port` with `args`; what it printed.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        self.try_cli(port, args)
            .unwrap_or_else(|| panic!("redis-cli -p {port} {args:?} failed"))
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for process in &mut self.processes {
            let _ = process.kill();
            child::wait(process, "a Cluster node");
        }
    }
}
