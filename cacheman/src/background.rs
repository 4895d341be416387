//! One job at a time in the background (a compaction of a cache or of a dependency graph): a
//! named thread started unless the last one is still running, and joined when asked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// At most one background job of its owner at a time.
#[derive(Default)]
pub(crate) struct Background {
    running: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Background {
    /// Runs `job` on a thread named `name` unless a job is running (then nothing happens).
    /// Without a thread (a limit on threads) the job is not run.
    pub(crate) fn start(&self, name: &str, job: impl FnOnce() + Send + 'static) {
        if self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        // The last one finished (it cleared `running`): collect its thread.
        self.wait();
        let running = Arc::clone(&self.running);
        let spawned = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                job();
                running.store(false, Ordering::Release);
            });
        match spawned {
            Ok(handle) => *self.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle),
            Err(_) => self.running.store(false, Ordering::Release),
        }
    }

    /// Waits for the job in progress, if any.
    pub(crate) fn wait(&self) {
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            // A panic in it is its own report; the files are as a failed save leaves them.
            let _ = handle.join();
        }
    }

    /// Whether a job is running.
    #[cfg(test)]
    pub(crate) fn running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn a_second_job_is_not_started_while_the_first_runs() {
        let background = Background::default();
        let (go, wait) = channel::<()>();
        let (done, finished) = channel::<u32>();
        let first = done.clone();
        background.start("test-background", move || {
            wait.recv().unwrap();
            first.send(1).unwrap();
        });
        assert!(background.running());
        background.start("test-background", move || done.send(2).unwrap());
        go.send(()).unwrap();
        background.wait();
        assert!(!background.running());
        assert_eq!(finished.try_iter().collect::<Vec<_>>(), [1]);
    }
}
