//! A save streamed to its file: postcard rows are encoded as the shards are copied and written
//! to the temporary file a few hundred kilobytes at a time, between holds of the shard locks.
//! The payload never sits in memory whole: a million 100-byte values need no 108 MB buffer,
//! nor the page faults of filling a fresh one (half the time such a save took). Once a payload
//! outgrows one piece, a writer thread writes the pieces while the copy goes on.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;

use serde::Serialize;

use super::codec::{Layout, PostcardRows};
use super::files::{Fault, SaveLock, Step, TempFile, check};
use super::format::HEADER_LEN;
use super::{Encoder, Rows};
use crate::Error;
use crate::shards::RowMeta;
use crate::shards::{Mark, Sink};

/// Bytes gathered before they are written: writes stay few, and the buffer stays in the CPU's
/// cache between them.
const WRITE_AT: usize = 256 * 1024;

/// Pieces waiting for the writer thread: beyond this the copy waits for the disk, so memory
/// stays bounded whatever the disk's speed.
const QUEUED_PIECES: usize = 2;

/// Bytes the writer thread writes between two requests that the kernel start writing them to
/// the disk ([`start_writeback`]).
const WRITEBACK_EVERY: u64 = 1024 * 1024;

/// File size below which the writer thread leaves all the writing to the disk to the save's
/// fsync. The fsync of a smaller file is short (7 MB: about 3 ms here), and writing it early
/// only moves the disk's work into the copy: back-to-back saves of a 7 MB cache then left
/// inserts about 0.82x of their rate instead of 0.86x (`autosync_ratio`, means of 16 and 13
/// runs), since the save no longer waits idle at its end.
const WRITEBACK_FROM: u64 = 32 * 1024 * 1024;

/// A piece of payload and where it goes.
struct Piece {
    offset: u64,
    /// Cut the file at `offset` first (a rewind went back into what was written).
    cut: bool,
    bytes: Vec<u8>,
}

fn write_piece(file: &mut File, piece: &Piece, fault: Option<&Fault>) -> io::Result<()> {
    if piece.cut {
        file.set_len(piece.offset)?;
    }
    // The header goes in front at the end; until then the file starts with a hole.
    file.seek(SeekFrom::Start(piece.offset))?;
    check(fault, Step::Write(piece.offset))?;
    file.write_all(&piece.bytes)
}

/// Asks the kernel to start writing `len` bytes at `offset` of `file` to the disk, without
/// waiting: the save's fsync then finds most of the file on the disk already, instead of all
/// of it in memory (as RocksDB's `bytes_per_sync` does). A hint; its errors come back at the
/// fsync. Linux only (elsewhere the fsync does all the writing).
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // Into whatever offset type the C library declares for this target.
    let (Ok(offset), Ok(len)) = (offset.try_into(), len.try_into()) else {
        return;
    };
    // SAFETY: the descriptor is open for as long as `file` is borrowed, and the call only
    // reads its arguments.
    unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

/// The thread writing a stream's pieces, through its own handle on the temporary file.
struct Writer {
    /// `None` once finished.
    pieces: Option<SyncSender<Piece>>,
    /// Written pieces' buffers, to encode into again.
    spares: Receiver<Vec<u8>>,
    /// Returns the CRC-32 of the pieces it wrote.
    thread: Option<JoinHandle<io::Result<u32>>>,
}

impl Writer {
    fn start(file: &File, fault: Option<Arc<Fault>>) -> io::Result<Writer> {
        let mut file = file.try_clone()?;
        let (pieces, incoming) = std::sync::mpsc::sync_channel::<Piece>(QUEUED_PIECES);
        let (give_back, spares) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("cacheman-save".into())
            .spawn(move || {
                // Where the bytes not yet handed to the disk start.
                let mut unsent = None;
                // Summed here, off the copy's thread (5 ms of a 104 MB save). After a cut it
                // covers bytes no longer in the file, and the encoder sums the file instead.
                let mut crc = crc32fast::Hasher::new();
                for piece in incoming {
                    write_piece(&mut file, &piece, fault.as_deref())?;
                    crc.update(&piece.bytes);
                    let end = piece.offset + piece.bytes.len() as u64;
                    let start = *unsent.get_or_insert(piece.offset);
                    if piece.cut || end < start {
                        // Cut back: what was before the cut is handed over or gone.
                        unsent = Some(piece.offset);
                    } else if end >= WRITEBACK_FROM && end - start >= WRITEBACK_EVERY {
                        start_writeback(&file, start, end - start);
                        unsent = Some(end);
                    }
                    // The encoder may be gone already; then nobody wants the buffer.
                    let _ = give_back.send(piece.bytes);
                }
                Ok(crc.finalize())
            })?;
        Ok(Writer {
            pieces: Some(pieces),
            spares,
            thread: Some(thread),
        })
    }

    /// Sends a piece; `false` when the thread stopped (at a write error, which
    /// [`Writer::finish`] returns).
    fn send(&self, piece: Piece) -> bool {
        self.pieces.as_ref().is_some_and(|p| p.send(piece).is_ok())
    }

    /// Waits for every piece sent to be written; the CRC-32 of what was written, or the first
    /// write error.
    fn finish(&mut self) -> io::Result<u32> {
        drop(self.pieces.take());
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(written)) => written,
            Some(Err(_)) => Err(io::Error::other("the save's writer thread panicked")),
            None => Err(io::Error::other(
                "the save's writer thread was already finished",
            )),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // An abandoned stream: its writes end before the temporary file is removed.
        let _ = self.finish();
    }
}

/// A payload written to a temporary file, waiting for its header and the rename.
pub(crate) struct Streamed {
    temp: TempFile,
    /// The save lock, from before the snapshot to the rename; `None` when the caller holds it.
    lock: Option<SaveLock>,
    pub rows: u64,
    pub payload_len: u64,
    pub payload_crc: u32,
}

impl Streamed {
    /// The save lock this stream took, for the caller to hold until the file is in place.
    pub(crate) fn take_lock(&mut self) -> Option<SaveLock> {
        self.lock.take()
    }

    /// The payload, read back (for a merge with what another process saved).
    pub(crate) fn read_payload(&mut self) -> io::Result<Vec<u8>> {
        let file = self.temp.file();
        file.seek(SeekFrom::Start(HEADER_LEN as u64))?;
        let mut payload = Vec::new();
        file.take(self.payload_len).read_to_end(&mut payload)?;
        Ok(payload)
    }

    /// Writes `header` in front of the payload and puts the file at `target`.
    pub(crate) fn commit(
        mut self,
        header: &[u8],
        target: &Path,
        fault: Option<&Fault>,
    ) -> io::Result<()> {
        check(fault, Step::Write(0))?;
        let file = self.temp.file();
        file.seek(SeekFrom::Start(0))?;
        file.write_all(header)?;
        self.temp.commit(target, fault)
    }
}

/// Encodes a snapshot's rows straight into a temporary file (see the module's documentation).
pub(crate) struct StreamEncoder<K, V> {
    rows: PostcardRows<K, V>,
    /// Started by the first piece written before the end; `None` for payloads of one piece.
    /// Declared before `temp`, so dropped (and its thread joined) before the file is removed.
    writer: Option<Writer>,
    temp: TempFile,
    /// A writer thread could not be started: pieces are written here.
    threadless: bool,
    lock: Option<SaveLock>,
    /// Payload bytes in the file; the encoder holds what comes after.
    written: u64,
    /// A rewind went back into what was written: the file is cut there before the next write.
    cut: bool,
    /// The CRC-32 of the pieces written here (the writer thread sums those it writes).
    crc: crc32fast::Hasher,
    /// The running CRC-32 no longer covers the file's payload (it was cut): recomputed at the
    /// end.
    crc_stale: bool,
    fault: Option<Arc<Fault>>,
    /// The cache and its file, for errors.
    cache: String,
    path: PathBuf,
}

impl<K, V> StreamEncoder<K, V>
where
    K: Serialize + 'static,
    V: Serialize + 'static,
{
    /// An encoder writing into `temp`, the temporary file of cache `cache` at `path`. `lock` is
    /// the save lock when the encoder is to hold it until the rename.
    pub(crate) fn new(
        cache: &str,
        path: &Path,
        layout: Layout,
        temp: TempFile,
        lock: Option<SaveLock>,
        fault: Option<Arc<Fault>>,
    ) -> Self {
        StreamEncoder {
            // Room for one write's worth and the rows of one hold past it.
            rows: PostcardRows::new(cache, layout, WRITE_AT + WRITE_AT / 4),
            temp,
            writer: None,
            threadless: false,
            lock,
            written: 0,
            cut: false,
            crc: crc32fast::Hasher::new(),
            crc_stale: false,
            fault,
            cache: cache.to_owned(),
            path: path.to_owned(),
        }
    }

    /// Writes out what is held, and returns the payload's file.
    pub(crate) fn finish_streamed(mut self) -> Result<Streamed, Error> {
        self.write_out(true).map_err(|e| self.io_error(e))?;
        // A payload goes to the file all from the writer thread or all from here.
        let written_crc = match self.writer.take() {
            Some(mut writer) => writer.finish().map_err(|e| self.io_error(e))?,
            None => self.crc.clone().finalize(),
        };
        let payload_crc = match self.crc_stale {
            false => written_crc,
            true => self.crc_of_file().map_err(|e| self.io_error(e))?,
        };
        Ok(Streamed {
            rows: self.rows.rows(),
            payload_len: self.written,
            payload_crc,
            temp: self.temp,
            lock: self.lock,
        })
    }

    /// Sends the held bytes to the file, cut first where a rewind went back to: to the writer
    /// thread (started by the first piece that is not the `last`), or written here.
    fn write_out(&mut self, last: bool) -> io::Result<()> {
        if self.rows.bytes().is_empty() && !self.cut {
            return Ok(());
        }
        let offset = HEADER_LEN as u64 + self.written;
        self.written += self.rows.bytes().len() as u64;
        let cut = std::mem::take(&mut self.cut);
        if self.writer.is_none() && !last && !self.threadless {
            // Without a thread (a limit on threads, say) the save still works, just slower.
            match Writer::start(self.temp.file(), self.fault.clone()) {
                Ok(writer) => self.writer = Some(writer),
                Err(_) => self.threadless = true,
            }
        }
        let Some(writer) = &self.writer else {
            let piece = Piece {
                offset,
                cut,
                bytes: self.rows.take_bytes(Vec::new()),
            };
            write_piece(self.temp.file(), &piece, self.fault.as_deref())?;
            self.crc.update(&piece.bytes);
            self.rows.take_bytes(piece.bytes);
            return Ok(());
        };
        let spare = match writer.spares.try_recv() {
            Ok(spare) => spare,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                Vec::with_capacity(WRITE_AT + WRITE_AT / 4)
            }
        };
        let bytes = self.rows.take_bytes(spare);
        if !writer.send(Piece { offset, cut, bytes }) {
            // The thread stopped at a write error: that error is the save's.
            let mut writer = self.writer.take().expect("matched above");
            return Err(writer
                .finish()
                .err()
                .unwrap_or_else(|| io::Error::other("the save's writer thread stopped")));
        }
        Ok(())
    }

    /// The checksum of the payload as the file holds it.
    fn crc_of_file(&mut self) -> io::Result<u32> {
        let mut crc = crc32fast::Hasher::new();
        let file = self.temp.file();
        file.seek(SeekFrom::Start(HEADER_LEN as u64))?;
        let mut payload = file.take(self.written);
        let mut buffer = vec![0; WRITE_AT];
        loop {
            match payload.read(&mut buffer)? {
                0 => return Ok(crc.finalize()),
                n => crc.update(&buffer[..n]),
            }
        }
    }

    fn io_error(&self, source: io::Error) -> Error {
        Error::Io {
            cache: self.cache.clone(),
            action: "write the cache file",
            path: self.path.clone(),
            source,
        }
    }
}

impl<K, V> Sink<K, V> for StreamEncoder<K, V>
where
    K: Serialize + 'static,
    V: Serialize + 'static,
{
    type Error = Error;

    fn mark(&self) -> Mark {
        Mark {
            items: self.rows.rows() as usize,
            bytes: self.written + self.rows.bytes().len() as u64,
        }
    }

    fn rewind(&mut self, mark: Mark) {
        match mark.bytes.checked_sub(self.written) {
            Some(held) => self.rows.truncate(mark.items as u64, held as usize),
            None => {
                // Back into the file: cut it at the next write (no I/O under the shard's lock).
                self.rows.truncate(mark.items as u64, 0);
                self.written = mark.bytes;
                self.cut = true;
                self.crc_stale = true;
            }
        }
    }

    #[inline]
    fn put(&mut self, key: &K, value: &V, meta: RowMeta) -> Result<(), Error> {
        self.rows.put(key, value, meta)
    }

    fn unlocked(&mut self) -> Result<(), Error> {
        if self.rows.bytes().len() < WRITE_AT {
            return Ok(());
        }
        self.write_out(false).map_err(|e| self.io_error(e))
    }
}

impl<K, V> Encoder<K, V> for StreamEncoder<K, V>
where
    K: Serialize + Send + 'static,
    V: Serialize + Send + 'static,
{
    fn finish(self: Box<Self>) -> Result<Rows<K, V>, Error> {
        self.finish_streamed().map(Rows::Encoded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec::decode_postcard_rows;
    use crate::store::files::cache_path;

    fn encoder(dir: &Path, fault: Option<Arc<Fault>>) -> StreamEncoder<u64, Vec<u8>> {
        let path = cache_path(dir, "c");
        let temp = TempFile::beside(&path).unwrap();
        StreamEncoder::new("c", &path, Layout::current(false, false), temp, None, fault)
    }

    fn value(k: u64) -> Vec<u8> {
        vec![k as u8; 100]
    }

    /// Puts keys `keys`, letting the encoder write out after each, as the shard copy does.
    fn put_all(encoder: &mut StreamEncoder<u64, Vec<u8>>, keys: std::ops::Range<u64>) {
        for k in keys {
            Sink::put(encoder, &k, &value(k), RowMeta::default()).unwrap();
            encoder.unlocked().unwrap();
        }
    }

    /// Checks the streamed payload against its checksum and decodes it.
    fn rows_of(streamed: &mut Streamed) -> Vec<u64> {
        let on_disk = streamed.temp.file().metadata().unwrap().len();
        assert_eq!(on_disk, HEADER_LEN as u64 + streamed.payload_len);
        let payload = streamed.read_payload().unwrap();
        assert_eq!(payload.len() as u64, streamed.payload_len);
        assert_eq!(crc32fast::hash(&payload), streamed.payload_crc);
        let rows: Vec<(u64, Vec<u8>, RowMeta)> =
            decode_postcard_rows(&payload, Some(streamed.rows), Layout::current(false, false))
                .unwrap();
        assert!(rows.iter().all(|(k, v, _)| *v == value(*k)));
        rows.into_iter().map(|(k, _, _)| k).collect()
    }

    fn files_in(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn rows_larger_than_a_write_are_streamed_in_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let mut encoder = encoder(dir.path(), None);
        // About 10 writes' worth.
        let n = (10 * WRITE_AT / 102) as u64;
        put_all(&mut encoder, 0..n);
        assert!(encoder.written > 0, "nothing was written before the end");
        assert!(encoder.writer.is_some(), "no writer thread");
        assert!(encoder.rows.bytes().len() < WRITE_AT + 102);
        let mut streamed = encoder.finish_streamed().unwrap();
        assert_eq!(rows_of(&mut streamed), (0..n).collect::<Vec<_>>());
    }

    #[test]
    fn a_file_past_the_writeback_size_is_streamed_whole() {
        // Past `WRITEBACK_FROM`, with a rewind into what was already written on the way.
        let dir = tempfile::tempdir().unwrap();
        let mut encoder = encoder(dir.path(), None);
        let big = |k: u64| vec![k as u8; 4096];
        let rows = WRITEBACK_FROM / 4096 + 300;
        let put = |encoder: &mut StreamEncoder<u64, Vec<u8>>, keys: std::ops::Range<u64>| {
            for k in keys {
                Sink::put(encoder, &k, &big(k), RowMeta::default()).unwrap();
                encoder.unlocked().unwrap();
            }
        };
        put(&mut encoder, 0..rows - 100);
        let mark = encoder.mark();
        put(&mut encoder, rows..rows + 2_000);
        encoder.rewind(mark);
        put(&mut encoder, rows - 100..rows);
        let mut streamed = encoder.finish_streamed().unwrap();
        let on_disk = streamed.temp.file().metadata().unwrap().len();
        assert_eq!(on_disk, HEADER_LEN as u64 + streamed.payload_len);
        assert!(streamed.payload_len > WRITEBACK_FROM);
        let payload = streamed.read_payload().unwrap();
        assert_eq!(crc32fast::hash(&payload), streamed.payload_crc);
        let back: Vec<(u64, Vec<u8>, RowMeta)> =
            decode_postcard_rows(&payload, Some(streamed.rows), Layout::current(false, false))
                .unwrap();
        assert_eq!(back.len() as u64, rows);
        assert!(
            back.iter()
                .enumerate()
                .all(|(i, (k, v, _))| *k == i as u64 && *v == big(*k))
        );
    }

    #[test]
    fn a_rewind_into_what_was_written_cuts_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for written_before_mark in [false, true] {
            let mut encoder = encoder(dir.path(), None);
            let before = if written_before_mark { 5_000 } else { 10 };
            put_all(&mut encoder, 0..before);
            let mark = encoder.mark();
            // Enough to be written out past the mark, then forgotten.
            put_all(&mut encoder, 1_000_000..1_005_000);
            assert!(encoder.written > mark.bytes);
            encoder.rewind(mark);
            put_all(&mut encoder, 2_000_000..2_000_010);
            let mut streamed = encoder.finish_streamed().unwrap();
            let want: Vec<u64> = (0..before).chain(2_000_000..2_000_010).collect();
            assert_eq!(rows_of(&mut streamed), want);
        }
    }

    #[test]
    fn a_rewind_within_what_is_held_writes_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let mut encoder = encoder(dir.path(), None);
        put_all(&mut encoder, 0..3);
        let mark = encoder.mark();
        put_all(&mut encoder, 10..12);
        encoder.rewind(mark);
        put_all(&mut encoder, 20..21);
        assert!(!encoder.crc_stale);
        let mut streamed = encoder.finish_streamed().unwrap();
        assert_eq!(rows_of(&mut streamed), vec![0, 1, 2, 20]);
    }

    #[test]
    fn a_failed_or_abandoned_stream_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let disk_full: Arc<Fault> = Arc::new(|_| Err(io::Error::from_raw_os_error(28)));
        let mut failing = encoder(dir.path(), Some(disk_full));
        Sink::put(&mut failing, &1, &value(1), RowMeta::default()).unwrap();
        let err = failing.finish_streamed().err().unwrap();
        let text = err.to_string();
        assert!(text.contains("cache `c`"), "{text}");
        assert!(text.contains("c.cache"), "{text}");
        assert_eq!(files_in(dir.path()), 0);

        // A write error on the writer thread, half-way through.
        let late: Arc<Fault> = Arc::new(|step| match step {
            Step::Write(offset) if offset > 3 * WRITE_AT as u64 => {
                Err(io::Error::from_raw_os_error(28))
            }
            _ => Ok(()),
        });
        let mut failing = encoder(dir.path(), Some(late));
        let mut failed = None;
        for k in 0..(20 * WRITE_AT / 102) as u64 {
            Sink::put(&mut failing, &k, &value(k), RowMeta::default()).unwrap();
            if let Err(err) = failing.unlocked() {
                failed = Some(err);
                break;
            }
        }
        let err = match failed {
            Some(err) => {
                assert!(failing.writer.is_none(), "the stopped writer was kept");
                drop(failing);
                err
            }
            None => failing.finish_streamed().err().unwrap(),
        };
        assert!(err.to_string().contains("No space left"), "{err}");
        assert_eq!(files_in(dir.path()), 0);

        let mut abandoned = encoder(dir.path(), None);
        put_all(&mut abandoned, 0..5_000);
        drop(abandoned);
        assert_eq!(files_in(dir.path()), 0);

        let mut encoder = encoder(dir.path(), None);
        put_all(&mut encoder, 0..5_000);
        drop(encoder.finish_streamed().unwrap());
        assert_eq!(files_in(dir.path()), 0);
    }

    #[test]
    fn a_commit_puts_the_header_in_front() {
        let dir = tempfile::tempdir().unwrap();
        let mut encoder = encoder(dir.path(), None);
        put_all(&mut encoder, 0..5_000);
        let streamed = encoder.finish_streamed().unwrap();
        let header = [7u8; HEADER_LEN];
        let (len, crc) = (streamed.payload_len, streamed.payload_crc);
        let target = cache_path(dir.path(), "c");
        streamed.commit(&header, &target, None).unwrap();
        let file = std::fs::read(&target).unwrap();
        assert_eq!(&file[..HEADER_LEN], &header);
        assert_eq!(file.len() as u64, HEADER_LEN as u64 + len);
        assert_eq!(crc32fast::hash(&file[HEADER_LEN..]), crc);
        assert_eq!(files_in(dir.path()), 1);
    }
}
