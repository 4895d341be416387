//! How other hosts' invalidations reach this process: one thread per server subscribes to the
//! invalidation channel of every cache that keeps a local copy (on a Cluster, on one node,
//! which hears every node's `PUBLISH`), and calls the callback each cache handed its store. While the subscription is down, no cache keeps a local copy (its
//! `heard` flag is false), and every copy is dropped when it is lost and again when it is back,
//! since invalidations may have been published meanwhile.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::server::Server;

/// What a cache calls to drop its local copy.
type DropLocal = Arc<dyn Fn() + Send + Sync>;

/// What one cache handed its store: its channel, whether it is heard now, what to call.
struct Watcher {
    id: u64,
    channel: String,
    heard: Arc<AtomicBool>,
    drop_local: DropLocal,
}

/// The watchers of one server and its subscriber thread.
#[derive(Default)]
pub(crate) struct Hub {
    watchers: Mutex<Vec<Watcher>>,
    next_id: AtomicU64,
    running: AtomicBool,
}

/// How often the subscriber looks for new channels and for the end of its server.
const POLL: Duration = Duration::from_millis(50);

impl Hub {
    /// Adds a watcher; starts the subscriber thread if it is not running. Returns the id to
    /// take it off with.
    pub(crate) fn watch(
        &self,
        server: &Arc<Server>,
        channel: String,
        heard: Arc<AtomicBool>,
        drop_local: Box<dyn Fn() + Send + Sync>,
    ) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().push(Watcher {
            id,
            channel,
            heard,
            drop_local: Arc::from(drop_local),
        });
        if !self.running.swap(true, Ordering::AcqRel) {
            let weak = Arc::downgrade(server);
            let spawned = std::thread::Builder::new()
                .name("cacheman-redis-sub".into())
                .spawn(move || subscribe_loop(weak));
            if let Err(err) = spawned {
                self.running.store(false, Ordering::Release);
                log::warn!(
                    "cacheman: could not start the Redis subscriber thread for {}: {err}; \
                     caches on it keep no local copy",
                    server.name
                );
            }
        }
        id
    }

    pub(crate) fn unwatch(&self, id: u64) {
        self.lock().retain(|w| w.id != id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Watcher>> {
        self.watchers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The callbacks of `channel` (`None`: every watcher's), called outside the lock.
    fn callbacks(&self, channel: Option<&str>) -> Vec<DropLocal> {
        self.lock()
            .iter()
            .filter(|w| channel.is_none_or(|c| c == w.channel))
            .map(|w| w.drop_local.clone())
            .collect()
    }

    /// Marks every watcher unheard and drops every local copy.
    fn lost(&self) {
        for w in self.lock().iter() {
            w.heard.store(false, Ordering::Release);
        }
        for drop_local in self.callbacks(None) {
            drop_local();
        }
    }
}

/// The subscriber thread: runs until its server is dropped.
fn subscribe_loop(weak: Weak<Server>) {
    loop {
        let Some(server) = weak.upgrade() else {
            return;
        };
        let outcome = listen(&server, &weak);
        server.hub.lost();
        let pause = server.config.retry_after.max(POLL);
        match outcome {
            Ok(()) => return, // the server was dropped
            Err(err) => log::debug!(
                "cacheman: Redis subscription to {} lost: {err}; local copies dropped, \
                 trying again in {pause:?}",
                server.name
            ),
        }
        drop(server);
        // Sleep in short steps, so that a dropped server ends the thread soon.
        let mut slept = Duration::ZERO;
        while slept < pause {
            std::thread::sleep(POLL);
            slept += POLL;
            if weak.strong_count() == 0 {
                return;
            }
        }
    }
}

/// Subscribes and hands out messages until the connection fails (`Err`) or the server is
/// dropped (`Ok`).
fn listen(server: &Arc<Server>, weak: &Weak<Server>) -> redis::RedisResult<()> {
    let mut connection = server.subscriber_connection()?;
    let mut pubsub = connection.as_pubsub();
    pubsub.set_read_timeout(Some(POLL))?;
    let mut subscribed: HashSet<String> = HashSet::new();
    let mut first = true;
    loop {
        // New watchers: subscribe first, drop their copies (an invalidation may have come
        // before the subscription), then let them keep copies.
        let fresh: Vec<(String, Arc<AtomicBool>, DropLocal)> = server
            .hub
            .lock()
            .iter()
            .filter(|w| !w.heard.load(Ordering::Acquire))
            .map(|w| (w.channel.clone(), w.heard.clone(), w.drop_local.clone()))
            .collect();
        for (channel, heard, drop_local) in fresh {
            if subscribed.insert(channel.clone()) {
                pubsub.subscribe(&channel)?;
            }
            drop_local();
            heard.store(true, Ordering::Release);
        }
        if first {
            log::debug!("cacheman: subscribed to invalidations on {}", server.name);
            first = false;
        }
        match pubsub.get_message() {
            Ok(message) => {
                for drop_local in server.hub.callbacks(Some(message.get_channel_name())) {
                    drop_local();
                }
            }
            Err(err) if err.is_timeout() => {
                if weak.strong_count() <= 1 {
                    return Ok(()); // only this thread holds the server
                }
            }
            Err(err) => return Err(err),
        }
    }
}
