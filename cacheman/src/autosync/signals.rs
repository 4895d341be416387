//! With the `signal-flush` feature, on Unix: SIGINT (Ctrl-C) and SIGTERM save every dirty
//! autosyncing cache, then end the process as the signal would have, so the shell still sees
//! "killed by SIGINT".

use std::panic::catch_unwind;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Installs the handlers, once per process (with the first autosyncing cache). The handlers
/// only wake a thread; the saving happens on that thread, where it is safe to do anything.
pub(crate) fn install() {
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(err) => {
            log::warn!(
                "cacheman: could not handle SIGINT and SIGTERM ({err}); not flushing on them"
            );
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("cacheman-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                // A failure is logged by `flush_all`; the process ends either way.
                let _ = catch_unwind(super::flush_all);
                if signal_hook::low_level::emulate_default_handler(signal).is_err() {
                    std::process::exit(128 + signal);
                }
            }
        });
    if let Err(err) = spawned {
        log::warn!("cacheman: could not start the signal thread ({err}); not flushing on signals");
    }
}
