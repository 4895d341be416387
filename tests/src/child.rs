//! Waiting on child processes with a bound: a child that hangs fails its test, with what the
//! child printed, instead of hanging the whole run.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How long a test waits on a child before failing. Generous: the machines that run the tests
/// are shared and slow, and a child that needs this long has hung.
pub const BOUND: Duration = Duration::from_secs(120);

/// How often [`wait`] asks whether the child has ended.
const POLL: Duration = Duration::from_millis(5);

/// Polls `ready` until it returns `Some`, for at most [`BOUND`]; `None` past that.
pub fn poll<T>(ready: impl FnMut() -> Option<T>) -> Option<T> {
    poll_within(BOUND, ready)
}

fn poll_within<T>(bound: Duration, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    loop {
        if let Some(value) = ready() {
            return Some(value);
        }
        if started.elapsed() > bound {
            return None;
        }
        // A wait for an event (the child's end, a lock's state), not for time to pass.
        std::thread::sleep(POLL);
    }
}

/// Waits for `child` to end, for at most [`BOUND`]; past that, kills it and panics naming
/// `what`.
pub fn wait(child: &mut Child, what: &str) -> ExitStatus {
    wait_within(BOUND, child, what)
}

fn wait_within(bound: Duration, child: &mut Child, what: &str) -> ExitStatus {
    match poll_within(bound, || child.try_wait().expect("the child's status")) {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not end within {bound:?}; killed");
        }
    }
}

/// Runs `command` to its end with its output captured, as [`Command::output`] does, but for at
/// most [`BOUND`]; past that, kills it and panics with what it printed so far.
pub fn output(command: &mut Command) -> Output {
    output_within(BOUND, command)
}

fn output_within(bound: Duration, command: &mut Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the child starts");
    let stdout = Captured::read(child.stdout.take().expect("piped stdout"));
    let stderr = Captured::read(child.stderr.take().expect("piped stderr"));
    let ended = poll_within(bound, || child.try_wait().expect("the child's status"));
    let status = ended.unwrap_or_else(|| {
        let _ = child.kill();
        child.wait().expect("the killed child's status")
    });
    // A process the child started may still hold the pipes: take what came, within the bound.
    let output = Output {
        status,
        stdout: stdout.bytes(bound),
        stderr: stderr.bytes(bound),
    };
    assert!(
        ended.is_some(),
        "{command:?} did not end within {bound:?}; killed. stdout: {} stderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A pipe read to its end on a thread of its own, so that a child filling one pipe never
/// blocks.
struct Captured {
    bytes: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Captured {
    fn read(mut pipe: impl Read + Send + 'static) -> Self {
        let bytes = Arc::<Mutex<Vec<u8>>>::default();
        let (sender, done) = mpsc::channel();
        let filled = Arc::clone(&bytes);
        std::thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                filled.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
            let _ = sender.send(());
        });
        Captured { bytes, done }
    }

    /// What was read once the pipe ended, or after `bound`, whichever comes first.
    fn bytes(self, bound: Duration) -> Vec<u8> {
        let _ = self.done.recv_timeout(bound);
        std::mem::take(&mut self.bytes.lock().unwrap())
    }
}

/// A child's standard output, read a line at a time with a bound.
pub struct Lines {
    reader: Option<BufReader<ChildStdout>>,
}

impl Lines {
    /// The lines `child` prints (its stdout must be piped).
    pub fn of(child: &mut Child) -> Self {
        Lines {
            reader: Some(BufReader::new(child.stdout.take().expect("piped stdout"))),
        }
    }

    /// The next line, without its newline, waiting for it for at most [`BOUND`]; past that,
    /// kills `child` and panics. An ended stdout reads as an empty line.
    pub fn next(&mut self, child: &mut Child) -> String {
        let mut reader = self
            .reader
            .take()
            .expect("a reader (an earlier line timed out)");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = sender.send((line, reader));
        });
        match receiver.recv_timeout(BOUND) {
            Ok((line, reader)) => {
                self.reader = Some(reader);
                line.trim_end().to_owned()
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no line from the child within {BOUND:?}; killed");
            }
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_millis(200);

    fn panic_text(run: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let err = std::panic::catch_unwind(run).expect_err("no panic");
        err.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    #[test]
    fn a_child_that_never_ends_fails_the_wait_and_is_killed() {
        let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
        let pid = child.id();
        let text = panic_text(move || {
            wait_within(SHORT, &mut child, "sleep");
        });
        assert!(text.contains("sleep did not end"), "{text}");
        // Killed and reaped: no process of that id is left.
        #[cfg(target_os = "linux")]
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
        let _ = pid;
    }

    #[test]
    fn a_child_that_never_ends_fails_with_what_it_printed() {
        let text = panic_text(|| {
            output_within(
                SHORT,
                Command::new("sh").args(["-c", "echo partial; exec sleep 1000"]),
            );
        });
        assert!(text.contains("did not end"), "{text}");
        assert!(text.contains("partial"), "{text}");
    }

    #[test]
    fn a_child_that_ends_is_waited_for() {
        let out = output(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]));
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }
}
