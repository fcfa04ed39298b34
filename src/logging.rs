//! Logging: the access log (one line per response) and the event log (start-up, errors), both
//! written to stdout and appended to the log file, in time order.
//!
//! Workers never write to a file or the terminal themselves: each collects its access lines in a
//! buffer during a loop tick and hands the batch to one writer thread, so a slow disk never
//! stalls the event loop (the hand-off blocks only if the writer is 1024 batches behind). Event
//! lines (the `log` macros, via [`WholeLines`]) go to the same thread, without ever waiting.
//!
//! A worker's batch reaches the writer up to `BATCH_AGE` after its first line was stamped, so the
//! writer holds every line for `HOLD` (from its stamp) and writes what is due in stamp order:
//! lines from different workers and event lines come out in time order, and the only cost is
//! that lines reach the file `HOLD` later, on the writer thread, never on a worker.
//!
//! The writer appends to the file, then offers the same bytes to a second thread that copies them
//! to stdout ([`Echo`]); when stdout falls behind (a pipe nobody reads, a paused terminal) lines
//! are left out of stdout, counted and reported, but never out of the file, and nothing waits.
//!
//! The log file is one open `File` behind a mutex. [`LogWriter::reopen`] (SIGUSR1) writes what is
//! held, then swaps in a newly opened file at the same path, so after logrotate renames the old
//! one every later line lands in the new file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::clock::Clock;
use crate::http::{put_decimal, put_ip};

mod format;
pub use format::{format_combined, format_json, AccessDetails, LogFormat};

/// Batches the writer thread may fall behind by before workers wait for it.
const QUEUE_BATCHES: usize = 1024;
/// A worker hands its batch over once it grows past this...
const BATCH_BYTES: usize = 32 * 1024;
/// ...or once its oldest line is this old. Handing over every loop tick instead would wake the
/// writer thread thousands of times a second under load; under load the 32 KiB come first.
const BATCH_AGE: Duration = Duration::from_millis(25);
/// How long the writer holds a line (from its stamp) before writing it, so that lines stamped
/// earlier but handed over later (a worker's batch, up to `BATCH_AGE` old) go before it. Leaves
/// a worker 75 ms of slack beyond `BATCH_AGE` (a busy loop pass, a loaded machine).
const HOLD: Duration = Duration::from_millis(100);
/// How often the writer looks for lines that are due while it holds some.
const HOLD_TICK: Duration = Duration::from_millis(20);
/// Length of the stamp every line starts with: `2026-11-23T19:04:10.123Z`.
const STAMP_LEN: usize = 24;
/// Batches stdout may fall behind by before lines are left out of it.
const ECHO_QUEUE_BATCHES: usize = 64;
/// How long stopping waits for stdout to take the last lines.
const ECHO_FINISH_WAIT: Duration = Duration::from_secs(2);

/// What the writer thread receives.
enum Msg {
    /// A worker's batch of access lines, in stamp order.
    Access(Vec<u8>),
    /// One event line (possibly several lines of text: one message).
    Event(Vec<u8>),
    /// Write everything held now, then say so on the channel.
    Flush(SyncSender<()>),
    /// Write everything held and stop.
    Stop,
}

/// The writer thread and the way to reach it.
pub struct LogWriter {
    tx: Option<SyncSender<Msg>>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
    /// The open log file, swapped by `reopen`.
    file: Arc<Mutex<File>>,
    echo: Option<Echo>,
    /// Access lines go to stdout too (`log_stdout`); event lines always do when `echo` is on.
    access_to_stdout: Arc<AtomicBool>,
}

impl LogWriter {
    /// Opens (creating, appending) the log file, starts the writer thread and installs the
    /// event logger (`log` macros). `echo` also writes every line to stdout.
    pub fn start(path: &Path, echo: bool) -> Result<LogWriter, String> {
        let file = Arc::new(Mutex::new(open_log(path)?));
        let echo = if echo { Some(Echo::start()?) } else { None };
        let (tx, rx) = sync_channel(QUEUE_BATCHES);
        let event_lines = {
            let (tx, file, echo) = (tx.clone(), file.clone(), echo.clone());
            WholeLines::boxed(move |line| match tx.try_send(Msg::Event(line)) {
                Ok(()) => Ok(()),
                // The writer is far behind, or stopped: write the line at once, out of order
                // rather than lost or waited for (the writer itself logs through here too).
                Err(
                    TrySendError::Full(Msg::Event(line))
                    | TrySendError::Disconnected(Msg::Event(line)),
                ) => {
                    let written = file
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .write_all(&line);
                    if let Some(echo) = &echo {
                        echo.offer(line);
                    }
                    written
                }
                Err(_) => Ok(()),
            })
        };
        let dispatch = fern::Dispatch::new()
            .format(|out, message, record| {
                let mut clock = Clock::new();
                out.finish(format_args!(
                    "{} [{}] {}",
                    clock.log_stamp(),
                    record.level(),
                    message
                ))
            })
            .level(log::LevelFilter::Info)
            .chain(event_lines);
        // A second proxy in one process (tests, the demo) keeps the first logger; that is fine.
        let _ = dispatch.apply();

        let access_to_stdout = Arc::new(AtomicBool::new(true));
        let out = Output {
            file: file.clone(),
            echo: echo.clone(),
            access_to_stdout: access_to_stdout.clone(),
            stdout_behind: false,
            file_lost: None,
        };
        let thread = std::thread::Builder::new()
            .name("pibl-log".into())
            .spawn(move || write_in_order(rx, out))
            .map_err(|e| format!("cannot start the log writer thread: {e}"))?;
        Ok(LogWriter {
            tx: Some(tx),
            thread: Some(thread),
            path: path.to_path_buf(),
            file,
            echo,
            access_to_stdout,
        })
    }

    /// Whether access lines are also written to stdout (`log_stdout`, at start and on reload).
    /// The file gets every line either way.
    pub fn set_access_stdout(&self, on: bool) {
        self.access_to_stdout.store(on, Ordering::Relaxed);
    }

    /// Writes the lines held so far (bounded wait), then opens the log file's path again and
    /// writes every later line there (SIGUSR1, after logrotate moved the file away). On failure
    /// the old file stays in use.
    pub fn reopen(&self) -> Result<(), String> {
        self.flush_held(Duration::from_secs(1));
        let new = open_log(&self.path)?;
        *self.file.lock().unwrap_or_else(PoisonError::into_inner) = new;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A worker's handle for access lines.
    pub fn access_log(&self, enabled: bool) -> AccessLog {
        AccessLog {
            buf: Vec::new(),
            tx: self.tx.clone(),
            due: None,
            enabled,
        }
    }

    /// Waits until every line handed over so far is in the file, and (for a bounded time) on
    /// stdout.
    pub fn finish(mut self) {
        log::logger().flush();
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Msg::Stop);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.drain_stdout(ECHO_FINISH_WAIT);
    }

    /// Writes the lines held so far, then waits, at most `wait` for each, until stdout has them.
    pub fn drain_stdout(&self, wait: Duration) {
        self.flush_held(wait);
        if let Some(echo) = &self.echo {
            echo.drain(wait);
        }
    }

    /// Has the writer write what it holds now, without waiting for their time; waits at most
    /// `wait` for it.
    fn flush_held(&self, wait: Duration) {
        let Some(tx) = &self.tx else {
            return;
        };
        let (done_tx, done_rx) = sync_channel(1);
        if tx.try_send(Msg::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv_timeout(wait);
        }
    }
}

/// The stdout side of the log: a thread that copies what it is offered to stdout, and a way to
/// offer it that never waits.
#[derive(Clone)]
struct Echo {
    tx: SyncSender<EchoItem>,
    /// Lines left out of stdout since the last report.
    dropped: Arc<AtomicU64>,
}

enum EchoItem {
    Lines(Vec<u8>),
    /// Everything offered before this is written: say so on the channel.
    Drained(SyncSender<()>),
}

impl Echo {
    fn start() -> Result<Echo, String> {
        let (tx, rx) = sync_channel::<EchoItem>(ECHO_QUEUE_BATCHES);
        std::thread::Builder::new()
            .name("pibl-stdout".into())
            .spawn(move || {
                let stdout = std::io::stdout();
                while let Ok(item) = rx.recv() {
                    match item {
                        EchoItem::Lines(lines) => {
                            let mut out = stdout.lock();
                            let _ = out.write_all(&lines);
                            let _ = out.flush();
                        }
                        EchoItem::Drained(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
            .map_err(|e| format!("cannot start the stdout thread: {e}"))?;
        Ok(Echo {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Hands `lines` to the stdout thread, or leaves them out (and counts them) when stdout is
    /// `ECHO_QUEUE_BATCHES` behind. True when they were taken.
    fn offer(&self, lines: Vec<u8>) -> bool {
        match self.tx.try_send(EchoItem::Lines(lines)) {
            Err(TrySendError::Full(EchoItem::Lines(lines))) => {
                self.dropped
                    .fetch_add(line_count(&lines), Ordering::Relaxed);
                false
            }
            _ => true,
        }
    }

    /// Waits, at most `wait`, until stdout has taken everything offered so far.
    fn drain(&self, wait: Duration) {
        let (done_tx, done_rx) = sync_channel(1);
        if self.tx.try_send(EchoItem::Drained(done_tx)).is_ok() {
            let _ = done_rx.recv_timeout(wait);
        }
    }
}

/// Lines in a batch (a line without its newline counts too).
fn line_count(batch: &[u8]) -> u64 {
    (batch.iter().filter(|&&b| b == b'\n').count() as u64).max(1)
}

fn open_log(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open log file {}: {e}", path.display()))
}

/// The writer thread: takes lines as they come, holds them until they are due, writes them in
/// stamp order.
fn write_in_order(rx: Receiver<Msg>, mut out: Output) {
    let mut held = Held::default();
    // Due lines are looked for once per HOLD_TICK, not once per batch: under load batches come
    // hundreds of times a second.
    let mut next_release = Instant::now();
    loop {
        let msg = if held.is_empty() {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(HOLD_TICK)
        };
        match msg {
            Ok(Msg::Access(batch)) => held.add_access(batch),
            Ok(Msg::Event(line)) => held.add_event(line),
            Ok(Msg::Flush(done)) => {
                held.release(None, &mut out);
                let _ = done.send(());
            }
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if !held.is_empty() && Instant::now() >= next_release {
            next_release = Instant::now() + HOLD_TICK;
            let mut clock = Clock::new();
            clock.wall = SystemTime::now()
                .checked_sub(HOLD)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let due = Due {
                stamp: clock.log_stamp().as_bytes(),
                arrived: Instant::now().checked_sub(HOLD),
            };
            held.release(Some(due), &mut out);
        }
    }
    held.release(None, &mut out);
}

/// Which held lines to write now.
struct Due<'a> {
    /// Lines stamped at or before this (now minus `HOLD`)...
    stamp: &'a [u8],
    /// ...or that arrived before this (a stamp in the future, after the wall clock went back).
    arrived: Option<Instant>,
}

/// Lines the writer holds until they are due: the batches as they came, each already in stamp
/// order (a worker stamps its lines as it goes), merged when they are written. Every line is
/// copied once, into the bytes handed to the file, and a batch is dropped as soon as its last
/// line is out.
#[derive(Default)]
struct Held {
    /// In arrival order, so that lines with the same stamp keep the order they came in.
    batches: Vec<HeldBatch>,
}

/// One worker batch (or one event message, which may span several lines), and how far into it
/// the writer has got.
struct HeldBatch {
    bytes: Vec<u8>,
    /// Offset of the first line not written yet.
    next: usize,
    access: bool,
    arrived: Instant,
}

impl HeldBatch {
    fn stamp(&self) -> &[u8] {
        let rest = &self.bytes[self.next..];
        &rest[..rest.len().min(STAMP_LEN)]
    }

    /// End of the next line (an event message is written whole).
    fn line_end(&self) -> usize {
        if !self.access {
            return self.bytes.len();
        }
        memchr::memchr(b'\n', &self.bytes[self.next..])
            .map_or(self.bytes.len(), |i| self.next + i + 1)
    }

    fn is_due(&self, due: &Option<Due<'_>>) -> bool {
        match due {
            None => true,
            Some(d) => self.stamp() <= d.stamp || d.arrived.is_some_and(|a| self.arrived <= a),
        }
    }
}

impl Held {
    fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    fn add_access(&mut self, batch: Vec<u8>) {
        self.add(batch, true);
    }

    fn add_event(&mut self, line: Vec<u8>) {
        self.add(line, false);
    }

    fn add(&mut self, bytes: Vec<u8>, access: bool) {
        if !bytes.is_empty() {
            self.batches.push(HeldBatch {
                bytes,
                next: 0,
                access,
                arrived: Instant::now(),
            });
        }
    }

    /// The batch whose next line goes first: the earliest stamp, the earliest arrival on a tie.
    /// Among the others, the earliest stamp is returned too (`None`: there is no other): lines
    /// of the chosen batch up to it can follow one another without looking again.
    fn first(&self) -> Option<(usize, Option<[u8; STAMP_LEN]>)> {
        let mut best: Option<usize> = None;
        let mut second: Option<usize> = None;
        for (i, b) in self.batches.iter().enumerate() {
            match best {
                Some(j) if b.stamp() >= self.batches[j].stamp() => {
                    if second.is_none_or(|k| b.stamp() < self.batches[k].stamp()) {
                        second = Some(i);
                    }
                }
                _ => {
                    second = best;
                    best = Some(i);
                }
            }
        }
        let bound = second.map(|k| {
            let mut stamp = [b'9'; STAMP_LEN];
            let s = self.batches[k].stamp();
            stamp[..s.len()].copy_from_slice(s);
            stamp
        });
        best.map(|i| (i, bound))
    }

    /// Writes the lines that are due (all of them with `None`) in stamp order; lines with the
    /// same stamp keep the order they arrived in (a worker's lines stay in its order).
    fn release(&mut self, due: Option<Due<'_>>, out: &mut Output) {
        let access_echo = out.access_to_stdout.load(Ordering::Relaxed);
        let mut file_bytes = Vec::new();
        let mut echo_bytes = Vec::new();
        while let Some((mut i, mut bound)) = self.first() {
            if !self.batches[i].is_due(&due) {
                // Nothing is due by its stamp; a batch may still be due by its arrival (a
                // stamp in the future, after the wall clock went back): oldest first.
                match self.batches.iter().position(|b| b.is_due(&due)) {
                    Some(j) => (i, bound) = (j, Some([0; STAMP_LEN])),
                    None => break,
                }
            }
            let b = &mut self.batches[i];
            loop {
                let end = b.line_end();
                let line = &b.bytes[b.next..end];
                // An access line of another format than pibl's carries a sort key: cut off.
                let line = if b.access {
                    format::line_without_key(line)
                } else {
                    line
                };
                file_bytes.extend_from_slice(line);
                // With every line going to stdout, stdout gets the file's bytes, not a copy.
                if !access_echo && !b.access {
                    echo_bytes.extend_from_slice(line);
                }
                b.next = end;
                let more = b.next < b.bytes.len()
                    && bound.is_none_or(|s| b.stamp() <= &s[..])
                    && b.is_due(&due);
                if !more || file_bytes.len() >= BATCH_BYTES {
                    break;
                }
            }
            if b.next >= b.bytes.len() {
                self.batches.remove(i);
            }
            // Handed on in pieces of about a worker's batch: stdout's queue is bounded in
            // pieces, and so stays bounded in bytes.
            if file_bytes.len() >= BATCH_BYTES {
                out.write(
                    std::mem::take(&mut file_bytes),
                    access_echo,
                    std::mem::take(&mut echo_bytes),
                );
            }
        }
        if !file_bytes.is_empty() {
            out.write(file_bytes, access_echo, echo_bytes);
        }
    }
}

/// Where the writer's lines go, and what it reports about them.
struct Output {
    file: Arc<Mutex<File>>,
    echo: Option<Echo>,
    access_to_stdout: Arc<AtomicBool>,
    /// Whether stdout is behind: reported once when it falls behind, once when it catches up.
    stdout_behind: bool,
    /// Lines the file did not take since it failed (a full disk): reported when it works again.
    /// Never a retry loop or a pause: the workers' queue must keep moving.
    file_lost: Option<u64>,
}

impl Output {
    /// Appends `lines` to the file, then offers them (`all_to_stdout`) or `echo_only` to stdout.
    fn write(&mut self, lines: Vec<u8>, all_to_stdout: bool, echo_only: Vec<u8>) {
        let written = self
            .file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write_all(&lines);
        match (written, &mut self.file_lost) {
            (Err(e), None) => {
                eprintln!("pibl: cannot write the log file: {e}; lines are lost from it until it can be written again");
                self.file_lost = Some(line_count(&lines));
            }
            (Err(_), Some(lost)) => *lost += line_count(&lines),
            (Ok(()), Some(lost)) => {
                let lost = *lost;
                self.file_lost = None;
                log::warn!(
                    "the log file can be written again; {} could not be written to it",
                    crate::text::counted(lost as usize, "line", "lines")
                );
            }
            (Ok(()), None) => {}
        }
        let Some(echo) = &self.echo else {
            return;
        };
        let to_stdout = if all_to_stdout { lines } else { echo_only };
        if to_stdout.is_empty() {
            return;
        }
        let taken = echo.offer(to_stdout);
        if !taken && !self.stdout_behind {
            self.stdout_behind = true;
            log::warn!(
                "stdout is not keeping up (is anything reading it?): log lines are left out of \
                 stdout until it does; the log file has them all"
            );
        } else if taken && self.stdout_behind {
            self.stdout_behind = false;
            let dropped = echo.dropped.swap(0, Ordering::Relaxed);
            log::warn!(
                "stdout caught up; {} left out of it",
                crate::text::counted(dropped as usize, "log line was", "log lines were")
            );
        }
    }
}

/// The event log's output. fern writes a line in pieces and then flushes; the whole line goes to
/// `sink` at the flush, as one message (so it never interleaves with other lines).
struct WholeLines<F> {
    line: Vec<u8>,
    sink: F,
}

impl<F: FnMut(Vec<u8>) -> std::io::Result<()>> WholeLines<F> {
    fn boxed(sink: F) -> Box<dyn Write + Send>
    where
        F: Send + 'static,
    {
        Box::new(WholeLines {
            line: Vec::new(),
            sink,
        })
    }
}

impl<F: FnMut(Vec<u8>) -> std::io::Result<()>> Write for WholeLines<F> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.line.is_empty() {
            return Ok(());
        }
        (self.sink)(std::mem::take(&mut self.line))
    }
}

/// One finished request, as logged.
#[derive(Debug)]
pub struct AccessEntry<'a> {
    pub client: SocketAddr,
    pub method: &'a str,
    pub target: &'a str,
    pub version: &'a str,
    pub status: u16,
    /// Bytes written to the client for this request (head and body).
    pub bytes: u64,
    /// The backend that answered, if one did.
    pub backend: Option<&'a str>,
    pub duration: Duration,
    /// What the cache did (HIT, MISS, REVALIDATED, BYPASS), when it is on.
    pub cache: Option<&'a str>,
}

/// A worker's access-log buffer.
pub struct AccessLog {
    buf: Vec<u8>,
    tx: Option<SyncSender<Msg>>,
    /// When the current batch must be handed over: its first line's time plus [`BATCH_AGE`]
    /// (kept as the deadline, so the per-tick check is one comparison).
    due: Option<Instant>,
    /// `access_log on`; a reload may switch it.
    enabled: bool,
}

impl AccessLog {
    /// A log that drops every line (access_log off).
    pub fn disabled() -> AccessLog {
        AccessLog {
            buf: Vec::new(),
            tx: None,
            due: None,
            enabled: false,
        }
    }

    /// Appends one line: `stamp client "METHOD target VERSION" status bytes backend duration cache`.
    pub fn record(&mut self, stamp: &str, e: &AccessEntry<'_>) {
        if !self.begin_line() {
            return;
        }
        format_line(&mut self.buf, stamp, e);
        if self.buf.len() >= BATCH_BYTES {
            self.flush();
        }
    }

    /// Appends one line in the format `d` names (pibl's is [`Self::record`]'s line).
    pub fn record_with(&mut self, stamp: &str, e: &AccessEntry<'_>, d: &AccessDetails<'_>) {
        if d.format == LogFormat::Pibl {
            return self.record(stamp, e);
        }
        if !self.begin_line() {
            return;
        }
        format::put_sort_key(&mut self.buf, stamp);
        if d.format == LogFormat::Json {
            format_json(&mut self.buf, stamp, e, d);
        } else {
            format_combined(&mut self.buf, stamp, e, d);
        }
        if self.buf.len() >= BATCH_BYTES {
            self.flush();
        }
    }

    /// Whether a line is to be written; the first line of a batch sets when it is due.
    #[inline]
    fn begin_line(&mut self) -> bool {
        if !self.enabled || self.tx.is_none() {
            return false;
        }
        if self.due.is_none() {
            self.due = Some(Instant::now() + BATCH_AGE);
        }
        true
    }

    /// Switches access lines on or off (`access_log`, after a reload).
    pub fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
    }

    /// Hands the batch over if its oldest line has waited long enough; call once per loop tick.
    pub fn flush_if_due(&mut self, now: Instant) {
        if self.due.is_some_and(|due| now >= due) {
            self.flush();
        }
    }

    /// When the current batch must be handed over, so the event loop can wake up for it.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Hands the lines collected so far to the writer thread.
    pub fn flush(&mut self) {
        self.due = None;
        if self.buf.is_empty() {
            return;
        }
        if let Some(tx) = &self.tx {
            let batch = std::mem::take(&mut self.buf);
            if tx.send(Msg::Access(batch)).is_err() {
                self.tx = None;
            }
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Formats one access-log line into `out`. Quotes and control bytes in the target are escaped so
/// a line can always be split on its fields.
pub fn format_line(out: &mut Vec<u8>, stamp: &str, e: &AccessEntry<'_>) {
    // Written field by field rather than with `write!`: one line per request, and the
    // formatting machinery cost more than the rest of a cache hit's user-space work.
    out.extend_from_slice(stamp.as_bytes());
    out.push(b' ');
    if !e.client.is_ipv6() {
        put_ip(out, e.client.ip());
        out.push(b':');
        put_decimal(out, u64::from(e.client.port()));
    } else if e.client == crate::net::UNIX_CLIENT {
        // A unix-socket client: no address, no port.
        out.extend_from_slice(b"unix:");
    } else {
        out.push(b'[');
        put_ip(out, e.client.ip());
        out.extend_from_slice(b"]:");
        put_decimal(out, u64::from(e.client.port()));
    }
    out.extend_from_slice(b" \"");
    out.extend_from_slice(e.method.as_bytes());
    out.push(b' ');
    for &b in e.target.as_bytes() {
        match b {
            b'"' | b'\\' => {
                out.push(b'\\');
                out.push(b);
            }
            0x20..=0x7e => out.push(b),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'x',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 15)],
                ]);
            }
        }
    }
    out.push(b' ');
    out.extend_from_slice(e.version.as_bytes());
    out.extend_from_slice(b"\" ");
    put_decimal(out, u64::from(e.status));
    out.push(b' ');
    put_decimal(out, e.bytes);
    out.push(b' ');
    out.extend_from_slice(e.backend.unwrap_or("-").as_bytes());
    out.push(b' ');
    format::put_millis(out, e.duration);
    out.extend_from_slice(b"ms ");
    out.extend_from_slice(e.cache.unwrap_or("-").as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests;
