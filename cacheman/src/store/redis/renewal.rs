//! Leases kept alive while their holders compute: one thread per server renews (`PEXPIRE`,
//! by a script that checks the token) every lease this process holds on it, each at a third
//! of its length, so a computation longer than its lease still runs once across hosts. A
//! holder that dies stops renewing with its process, and its lease expires as before; a lease
//! the server no longer gives to its token (expired during a stall, or the server restarted)
//! is not renewed again.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::scripts;
use super::server::Server;

/// One lease this process holds.
struct Held {
    token: u64,
    key: String,
    lease_ms: u64,
    due: Instant,
}

#[derive(Default)]
struct State {
    held: Vec<Held>,
    /// Whether the renewal thread runs (it ends when no lease is held).
    running: bool,
    /// When the waiting renewal thread wakes by itself: a lease due before is woken for.
    wakes_at: Option<Instant>,
}

/// The leases this process holds on one server, and the thread that renews them.
#[derive(Default)]
pub(crate) struct Renewals {
    state: Mutex<State>,
    changed: Condvar,
}

/// How long the renewal thread waits for a new lease once none is held before it ends: a
/// process that keeps missing keeps one thread rather than starting one per miss.
const IDLE: Duration = Duration::from_secs(1);

/// How often a lease of `lease_ms` is renewed: at a third of its length, so two renewals in a
/// row may be late before it runs out.
fn every(lease_ms: u64) -> Duration {
    Duration::from_millis((lease_ms / 3).max(1))
}

impl Renewals {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Renews the lease `key` (held by `token`, `lease_ms` long) until [`let_go`](Self::let_go).
    pub(crate) fn hold(&self, server: &Arc<Server>, key: String, token: u64, lease_ms: u64) {
        let mut state = self.lock();
        let due = Instant::now() + every(lease_ms);
        state.held.push(Held {
            token,
            key,
            lease_ms,
            due,
        });
        if state.running {
            // Leases of one length come due in the order they were taken: the thread is
            // woken (a context switch on every miss) only for one due before it wakes anyway.
            if state.wakes_at.is_none_or(|wakes_at| due < wakes_at) {
                self.changed.notify_one();
            }
            return;
        }
        let weak = Arc::downgrade(server);
        let spawned = std::thread::Builder::new()
            .name("cacheman-redis-lease".into())
            .spawn(move || renew_loop(weak));
        match spawned {
            Ok(_) => state.running = true,
            Err(err) => log::warn!(
                "cacheman: could not start the Redis lease renewal thread for {}: {err}; a \
                 computation longer than its lease may run on another host too",
                server.name
            ),
        }
    }

    /// Stops renewing the lease of `token` (its value was put or it was released).
    pub(crate) fn let_go(&self, token: u64) {
        self.lock().held.retain(|held| held.token != token);
    }
}

/// The renewal thread: renews what is due, sleeps until the next is; ends when nothing has
/// been held for [`IDLE`].
fn renew_loop(weak: Weak<Server>) {
    loop {
        let Some(server) = weak.upgrade() else {
            return;
        };
        let due = {
            let renewals = &server.renewals;
            let mut state = renewals.lock();
            let mut idle_since = None;
            loop {
                let now = Instant::now();
                let Some(next) = state.held.iter().map(|held| held.due).min() else {
                    let since = *idle_since.get_or_insert(now);
                    if now.duration_since(since) >= IDLE {
                        state.running = false;
                        state.wakes_at = None;
                        return;
                    }
                    let wait = IDLE - now.duration_since(since);
                    state.wakes_at = Some(now + wait);
                    state = renewals
                        .changed
                        .wait_timeout(state, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    continue;
                };
                idle_since = None;
                if next <= now {
                    break;
                }
                state.wakes_at = Some(next);
                state = renewals
                    .changed
                    .wait_timeout(state, next - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            state.wakes_at = None;
            let now = Instant::now();
            let mut due = Vec::new();
            for held in state.held.iter_mut().filter(|held| held.due <= now) {
                held.due = now + every(held.lease_ms);
                due.push((held.token, held.key.clone(), held.lease_ms));
            }
            due
        };
        for (token, key, lease_ms) in due {
            let renewed = server.run(|c| {
                scripts::RENEW
                    .key(&key)
                    .arg(token)
                    .arg(lease_ms)
                    .invoke::<i64>(c)
            });
            match renewed {
                Ok(1) => {}
                Ok(_) => {
                    log::debug!(
                        "cacheman: the lease {key} on {} is no longer this caller's; not \
                         renewed again",
                        server.name
                    );
                    server.renewals.let_go(token);
                }
                // Tried again when next due: the lease may still be alive.
                Err(message) => log::debug!(
                    "cacheman: could not renew the lease {key} on {}: {message}",
                    server.name
                ),
            }
        }
    }
}
