//! Workload 4 of BENCHMARKS.md (save and load), measured so that the ratios mean something on
//! a shared machine: each round takes, in turn (the order rotates every round), a whole save
//! (`Cache::compact`) of 1,000,000 entries (`u64` → 100-byte `Vec<u8>`), the same file's bytes written as a durable
//! program writes them ([`benches::replace_durably`]: a new file, fsync, rename over the old
//! one, directory fsync), a reload of the cache (over the entries it holds, which it frees),
//! an open of the same file by a new cache (a load into an empty cache), and with
//! `--cacheman-py`, CacheMan's (Python) save and load of the same entries (`benches/python/cacheman_bench.py --serve`, timed inside
//! that process as ours are inside this one). Every figure is a median over the rounds. A slow
//! minute of the host then slows every side alike; the criterion pair in
//! `benches/save_load.rs` measures them a minute apart.
//!
//! Both sides of the save ratio leave out the release of the file they replace: a cacheman
//! save lets go of it on a thread after returning, and the baseline holds it open across its
//! rename and closes it after its timed region. The fsync of the baseline's file is also timed
//! on its own: the report estimates a save without fsync from it, to compare with CacheMan,
//! which does not fsync.
//!
//! `cargo run --release -p benches --bin save_ratio [ROUNDS] [--cacheman-py]` prints one JSON
//! object.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use cacheman::{AutoSync, Cache, CacheManager, CacheOptions};

const ENTRIES: u64 = 1_000_000;

/// Milliseconds `work` took.
fn timed(work: impl FnOnce()) -> f64 {
    let started = Instant::now();
    work();
    started.elapsed().as_secs_f64() * 1e3
}

fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The Python CacheMan, filled with the same entries, timing the steps it is asked for.
struct CacheManPy {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl CacheManPy {
    fn start() -> Self {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let mut child = Command::new("python3")
            .arg(format!("{root}/benches/python/cacheman_bench.py"))
            .args(["--venv", &format!("{root}/target/cacheman-py-venv")])
            .args(["--entries", &ENTRIES.to_string(), "--serve"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs benches/python/cacheman_bench.py");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut python = CacheManPy {
            child,
            stdin,
            stdout,
        };
        assert_eq!(
            python.line(),
            "ready",
            "cacheman_bench.py --serve did not start"
        );
        python
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("a line from Python");
        line.trim().to_owned()
    }

    /// Milliseconds `step` ("save" or "load") took in the Python process.
    fn time(&mut self, step: &str) -> f64 {
        writeln!(self.stdin, "{step}").expect("Python reads its steps");
        let seconds: f64 = self.line().parse().expect("Python's timing");
        seconds * 1e3
    }
}

impl Drop for CacheManPy {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.wait();
    }
}

/// The steps of one round, each returning its time (and the baseline its fsync) in ms.
#[derive(Clone, Copy)]
enum Step {
    Save,
    Write,
    Load,
    Open,
    PySave,
    PyLoad,
}

fn main() {
    let rounds = benches::count_arg(25);
    let with_python = std::env::args().any(|arg| arg == "--cacheman-py");
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("bench", dir.path());
    // Saved when this program says so, never by the background saver.
    let options = CacheOptions::new().autosync(AutoSync::disabled());
    let cache: Cache<u64, Vec<u8>> = manager.register_custom_cache("big", options).unwrap();
    cache.extend((0..ENTRIES).map(|k| (k, benches::value_of(k))));
    cache.save().unwrap();
    let bytes = std::fs::read(manager.cache_file_path("big").unwrap()).unwrap();
    let plain = dir.path().join("plain.bin");
    let mut python = with_python.then(CacheManPy::start);

    // Each timed step starts on a settled machine: the file a save or the baseline replaced
    // is let go of (about 20 ms of freeing pages) before the next step starts.
    let settle = || std::thread::sleep(Duration::from_millis(100));
    // The time of `step`, and the baseline's fsync.
    let run = |step: Step, python: &mut Option<CacheManPy>| -> (f64, Option<f64>) {
        settle();
        let time = match step {
            Step::Save => timed(|| {
                // The whole save: a compaction (a save appends only what changed).
                cache.insert(0, benches::value_of(0));
                cache.compact().unwrap();
            }),
            Step::Write => {
                let started = Instant::now();
                let replaced = benches::replace_durably(&plain, &bytes, true);
                let whole = started.elapsed().as_secs_f64() * 1e3;
                // Outside the timed region, as a save's release is.
                drop(replaced.old);
                return (whole, Some(replaced.fsync.as_secs_f64() * 1e3));
            }
            Step::Load => timed(|| cache.reload().unwrap()),
            Step::Open => {
                let manager = CacheManager::new("bench", dir.path());
                let options = CacheOptions::new().autosync(AutoSync::disabled());
                let mut opened = None;
                let time = timed(|| {
                    let fresh: Cache<u64, Vec<u8>> =
                        manager.register_custom_cache("big", options).unwrap();
                    assert_eq!(fresh.len() as u64, ENTRIES);
                    opened = Some(fresh);
                });
                // Its entries are freed outside the timed region.
                drop(opened);
                time
            }
            Step::PySave => python.as_mut().map_or(f64::NAN, |p| p.time("save")),
            Step::PyLoad => python.as_mut().map_or(f64::NAN, |p| p.time("load")),
        };
        (time, None)
    };
    let mut steps = vec![Step::Save, Step::Write, Step::Load, Step::Open];
    if with_python {
        steps.extend([Step::PySave, Step::PyLoad]);
    }
    // Once each first: the plain file then exists, as the cache file does.
    for &step in &steps {
        run(step, &mut python);
    }
    let mut fsyncs = Vec::new();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); steps.len()];
    let mut save_over_write = Vec::new();
    for round in 0..rounds {
        let mut this_round = vec![0.0; steps.len()];
        for i in 0..steps.len() {
            let which = (round + i) % steps.len();
            let (time, fsync) = run(steps[which], &mut python);
            this_round[which] = time;
            fsyncs.extend(fsync);
        }
        save_over_write.push(this_round[0] / this_round[1]);
        for (all, one) in times.iter_mut().zip(this_round) {
            all.push(one);
        }
    }
    assert_eq!(cache.len() as u64, ENTRIES);
    let medians: Vec<f64> = times.iter().map(|t| median(t)).collect();
    let (save_ms, write_ms, load_ms, open_ms) = (medians[0], medians[1], medians[2], medians[3]);
    let mut json = format!(
        "{{\"rounds\": {rounds}, \"file_bytes\": {}, \"cacheman_save_ms\": {save_ms:.1}, \
         \"std_write_fsync_ms\": {write_ms:.1}, \"std_fsync_ms\": {:.1}, \
         \"cacheman_load_ms\": {load_ms:.1}, \"cacheman_open_ms\": {open_ms:.1}, \
         \"ratio\": {:.3}, \"ratio_median\": {:.3}, \"ratio_min\": {:.3}, \"ratio_max\": {:.3}",
        bytes.len(),
        median(&fsyncs),
        save_ms / write_ms,
        median(&save_over_write),
        save_over_write
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min),
        save_over_write.iter().copied().fold(0.0, f64::max),
    );
    if with_python {
        json += &format!(
            ", \"cacheman_py_save_ms\": {:.1}, \"cacheman_py_load_ms\": {:.1}",
            medians[4], medians[5]
        );
    }
    println!("{json}}}");
}
