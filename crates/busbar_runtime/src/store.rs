//! The on-disk log: SQLite in WAL mode with `synchronous=FULL`, so a commit returns only after
//! the WAL is fsync'd. One task owns the connection; callers send it commands, and it runs
//! every command waiting at that moment in **one transaction** (group commit) on tokio's
//! blocking pool, then answers them all: concurrent publishers share an fsync, and nothing is
//! answered before it. (On the blocking pool rather than a thread of its own so that tokio's
//! paused test clock does not jump ahead while the disk works.)
//!
//! The store is written, hardly read: the schedule of deliveries lives in memory
//! (the `queue` module), loaded from here once when the broker opens. Tables: `messages` (one row
//! per published message, with its ordering key), `deliveries` (one row per subscription still
//! owed a delivery: its failed attempts and when it is next due, keyed by (seq, subscription)
//! so a message's rows sit together), `dead_letters` (with the reason), `dedup` (client message
//! ids of exactly-once topics, with their expiry). A message row is deleted when no delivery and
//! no dead letter refers to it any more.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::datadir;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

/// A message as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: String,
    pub topic: String,
    pub data: Vec<u8>,
    /// The media type of `data`, as published (`application/json` for JSON).
    pub content_type: String,
    pub attributes: BTreeMap<String, String>,
    pub published_at_ms: i64,
}

/// What became of a published message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stored {
    /// Stored under this seq.
    New(i64),
    /// An exactly-once topic had a message with the same client id: this is its id.
    Duplicate(String),
    /// No subscription takes it: nothing to keep.
    Unwanted,
}

/// A delivery owed, as stored (read once, when the broker opens).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Owed {
    pub subscription: String,
    pub id: String,
    pub seq: i64,
    pub attempts: u32,
    pub next_at: i64,
    pub ordering_key: Option<String>,
    pub published_at: i64,
}

/// A dead letter moved back for delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Released {
    pub seq: i64,
    pub ordering_key: Option<String>,
    pub message: StoredMessage,
}

/// A dead-lettered message of a subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub seq: i64,
    pub reason: String,
    pub attempts: u32,
    pub dead_at_ms: i64,
    pub message: StoredMessage,
}

/// One message to store: the subscriptions it fans out to are decided by the caller.
#[derive(Debug)]
pub struct NewMessage {
    pub id: String,
    pub topic: String,
    pub data: Vec<u8>,
    pub content_type: String,
    pub attributes: BTreeMap<String, String>,
    pub ordering_key: Option<String>,
    /// The key (`topic/subscription`) of each subscription whose filter accepts it.
    pub subscriptions: Vec<String>,
    /// For exactly-once topics: the client's id, remembered until `dedup_until_ms`.
    pub dedup: Option<(String, i64)>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Failed(String),
    #[error("the disk is full")]
    Full,
    #[error("the store is closed")]
    Closed,
    /// Another broker holds the data directory.
    #[error("{dir} is in use by {}: one broker per data directory (stop it, or pass another --data)", match .pid { Some(pid) => format!("busbar (pid {pid})"), None => "another busbar".to_string() })]
    Locked { dir: String, pid: Option<u32> },
    /// The database is damaged: the text says what to do.
    #[error("{0}")]
    Damaged(String),
    /// A file of the store was deleted or replaced while it ran: nothing more is accepted.
    #[error("{0}")]
    Lost(String),
}

impl StoreError {
    fn of(e: &rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::Full,
            _ => StoreError::Failed(e.to_string()),
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// What became of a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    Ack,
    Retry { attempts: u32, next_at: i64 },
    Dead { attempts: u32, reason: String, now: i64 },
}

/// What the store thread does.
enum Command {
    /// Closes the database and releases the data directory; every later command fails.
    Close(Reply<()>),
    /// Stores the message; answers what became of it.
    Publish(NewMessage, i64, Reply<Stored>),
    /// The stored messages with these seqs (those still stored).
    Bodies(Vec<i64>, Reply<Vec<(i64, StoredMessage)>>),
    Ack {
        subscription: String,
        seq: i64,
        done: Arc<Unflushed>,
    },
    Retry {
        subscription: String,
        seq: i64,
        attempts: u32,
        next_at: i64,
        done: Arc<Unflushed>,
    },
    Dead {
        subscription: String,
        seq: i64,
        attempts: u32,
        reason: String,
        now: i64,
        done: Arc<Unflushed>,
    },
    DeadLetters {
        subscription: String,
        reply: Reply<Vec<DeadLetter>>,
    },
    /// Moves dead letters back (all, or those with these message ids).
    Release {
        subscription: String,
        ids: Option<Vec<String>>,
        now: i64,
        reply: Reply<Vec<Released>>,
    },
    /// Messages stored (not yet collected), for tests and metrics.
    MessageCount(Reply<i64>),
    /// Dead letters per subscription key.
    DeadCounts(Reply<BTreeMap<String, i64>>),
}

/// A handle to the store thread. Cloning shares it.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::UnboundedSender<Command>,
    reserve: Arc<DiskReserve>,
    /// Set when a file of the store is no longer the one on disk: why publishes are refused.
    broken: Arc<std::sync::OnceLock<String>>,
}

/// The free space a publish must leave on the data directory's filesystem: below it, publishes
/// are refused as if the disk were full (HTTP 507) while settlements go on, so a broker that
/// fills its disk drains instead of failing every transaction.
#[derive(Debug)]
pub(crate) struct DiskReserve {
    dir: std::path::PathBuf,
    bytes: std::sync::atomic::AtomicU64,
}

/// The default reserve: 64 MiB.
pub const DEFAULT_DISK_RESERVE: u64 = 64 << 20;

impl DiskReserve {
    /// Whether a publish now would eat into the reserve. A filesystem that cannot say counts
    /// as having room (SQLite's own disk-full error still answers 507).
    fn exhausted(&self) -> bool {
        let want = self.bytes.load(std::sync::atomic::Ordering::Relaxed);
        if want == 0 {
            return false;
        }
        rustix::fs::statvfs(&self.dir)
            .map(|s| s.f_bavail.saturating_mul(s.f_frsize) < want)
            .unwrap_or(false)
    }
}

/// A subscription's settlements queued to the store and not yet committed.
#[derive(Debug, Default)]
pub(crate) struct Unflushed {
    count: std::sync::atomic::AtomicUsize,
    /// Woken at each commit of one.
    pub committed: tokio::sync::Notify,
}

impl Unflushed {
    pub fn get(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::Acquire)
    }

    fn finished(&self) {
        self.count.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        self.committed.notify_one();
    }
}

/// The format of the data directory (`PRAGMA user_version`). Format 2 (before messages had a
/// content type) is upgraded in place.
const FORMAT: i64 = 3;

pub(crate) const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  topic TEXT NOT NULL,
  data BLOB NOT NULL,
  content_type TEXT NOT NULL,
  attributes TEXT NOT NULL,
  ordering_key TEXT,
  published_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
  seq INTEGER NOT NULL,
  subscription TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_at INTEGER NOT NULL,
  PRIMARY KEY (seq, subscription)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
  subscription TEXT NOT NULL,
  seq INTEGER NOT NULL,
  reason TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  dead_at INTEGER NOT NULL,
  PRIMARY KEY (subscription, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dead_letters_seq ON dead_letters (seq);
CREATE TABLE IF NOT EXISTS dedup (
  topic TEXT NOT NULL,
  client_id TEXT NOT NULL,
  id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (topic, client_id)
) WITHOUT ROWID;
";

impl Store {
    /// Opens (or creates) `dir/busbar.db` under the directory's lock, checks it, reads every
    /// delivery still owed, and starts the store task (inside a tokio runtime).
    pub(crate) fn open(dir: &Path) -> Result<(Store, Vec<Owed>), StoreError> {
        let lock = datadir::lock(dir)?;
        let path = datadir::database(dir, |fresh| {
            let conn = Connection::open(fresh).map_err(|e| StoreError::of(&e))?;
            conn.execute_batch(SCHEMA).map_err(|e| StoreError::of(&e))?;
            conn.pragma_update(None, "user_version", FORMAT).map_err(|e| StoreError::of(&e))?;
            conn.close().map_err(|(_, e)| StoreError::of(&e))
        })?;
        let conn = Connection::open(&path).map_err(|e| StoreError::of(&e))?;
        check_integrity(&conn, &path)?;
        check_format(&conn, &path)?;
        conn.execute_batch(SCHEMA).map_err(|e| StoreError::of(&e))?;
        conn.set_prepared_statement_cache_capacity(64);
        let owed = owed(&conn).map_err(|e| StoreError::of(&e))?;
        // The WAL exists now (the reads above opened it): every file is the owner's only.
        for suffix in ["", "-wal", "-shm"] {
            datadir::make_private(Path::new(&format!("{}{suffix}", path.display())))?;
        }
        let identity = datadir::Identity::of(&path);
        let (tx, rx) = mpsc::unbounded_channel();
        let reserve =
            Arc::new(DiskReserve { dir: dir.to_path_buf(), bytes: DEFAULT_DISK_RESERVE.into() });
        let broken = Arc::new(std::sync::OnceLock::new());
        let files = Files { _lock: lock, identity, broken: broken.clone() };
        tokio::spawn(run(conn, rx, reserve.clone(), files));
        Ok((Store { tx, reserve, broken }, owed))
    }

    /// Why the store refuses publishes, once a file of it was deleted or replaced.
    pub fn broken(&self) -> Option<&str> {
        self.broken.get().map(String::as_str)
    }

    /// Closes the database and releases the data directory, once every command sent before
    /// has run; every command after fails with [`StoreError::Closed`].
    pub async fn close(&self) -> Result<(), StoreError> {
        match self.ask(Command::Close).await {
            Err(StoreError::Closed) => Ok(()),
            other => other,
        }
    }

    /// Sets the free space publishes must leave (0: none).
    pub fn set_disk_reserve(&self, bytes: u64) {
        self.reserve.bytes.store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(make(reply)).map_err(|_| StoreError::Closed)?;
        answer.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Stores a message; answers once it is durable.
    pub(crate) async fn publish(
        &self,
        message: NewMessage,
        now: i64,
    ) -> Result<Stored, StoreError> {
        self.ask(|r| Command::Publish(message, now, r)).await
    }

    /// The stored messages with these seqs (a body not kept in memory).
    pub(crate) async fn bodies(
        &self,
        seqs: Vec<i64>,
    ) -> Result<Vec<(i64, StoredMessage)>, StoreError> {
        self.ask(|r| Command::Bodies(seqs, r)).await
    }

    /// Queues the outcome of a delivery without waiting for it to be durable: commands run in
    /// the order they are sent, so a later fetch already sees it, and a crash before its commit
    /// only means the delivery happens again (at least once).
    ///
    /// `done` counts the subscription's settlements queued and not yet committed: the
    /// dispatcher holds back new deliveries while too many are, so a crash redelivers no more
    /// than that.
    pub(crate) fn settle(
        &self,
        subscription: &str,
        seq: i64,
        settlement: Settlement,
        done: &Arc<Unflushed>,
    ) {
        done.count.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let subscription = subscription.to_string();
        let done = done.clone();
        let command = match settlement {
            Settlement::Ack => Command::Ack { subscription, seq, done },
            Settlement::Retry { attempts, next_at } => {
                Command::Retry { subscription, seq, attempts, next_at, done }
            }
            Settlement::Dead { attempts, reason, now } => {
                Command::Dead { subscription, seq, attempts, reason, now, done }
            }
        };
        if let Err(unsent) = self.tx.send(command) {
            fail(unsent.0, &StoreError::Closed);
        }
    }

    pub async fn dead_letters(&self, subscription: &str) -> Result<Vec<DeadLetter>, StoreError> {
        let subscription = subscription.to_string();
        self.ask(|reply| Command::DeadLetters { subscription, reply }).await
    }

    pub(crate) async fn release(
        &self,
        subscription: &str,
        ids: Option<Vec<String>>,
        now: i64,
    ) -> Result<Vec<Released>, StoreError> {
        let subscription = subscription.to_string();
        self.ask(|reply| Command::Release { subscription, ids, now, reply }).await
    }

    pub async fn message_count(&self) -> Result<i64, StoreError> {
        self.ask(Command::MessageCount).await
    }

    /// Per subscription key: how many dead letters it has.
    pub async fn dead_counts(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        self.ask(Command::DeadCounts).await
    }
}

/// `PRAGMA quick_check`: a database with a damaged page or index is refused at open, with what
/// to do, rather than served as a broker missing part of what it held.
fn check_integrity(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let damaged = |what: String| {
        StoreError::Damaged(format!(
            "{} is damaged ({what}): busbar will not serve part of what it held. Move the data directory away and start afresh, or try to save what is readable with `sqlite3 {} .recover`",
            path.display(),
            path.display()
        ))
    };
    let mut q = conn.prepare("PRAGMA quick_check(5)").map_err(|e| damaged(e.to_string()))?;
    let rows: Vec<String> = q
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| damaged(e.to_string()))?;
    if rows.len() == 1 && rows.first().is_some_and(|r| r == "ok") {
        return Ok(());
    }
    Err(damaged(rows.join("; ")))
}

/// The data directory's format is this busbar's (or format 2, upgraded in place), or refused.
fn check_format(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let format: i64 =
        conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| StoreError::of(&e))?;
    if format == 2 {
        let upgrade =
            "ALTER TABLE messages ADD COLUMN content_type TEXT NOT NULL DEFAULT 'application/json'";
        conn.execute_batch(&format!("BEGIN; {upgrade}; PRAGMA user_version = {FORMAT}; COMMIT;"))
            .map_err(|e| StoreError::of(&e))?;
        return Ok(());
    }
    if format != FORMAT {
        return Err(StoreError::Failed(format!(
            "{} holds broker data in format {format}, and this busbar reads format {FORMAT}: move the data directory away (or delete it) to start afresh",
            path.display()
        )));
    }
    Ok(())
}

/// What the store task keeps besides its connection: the directory's lock (held as long as the
/// connection is open), the identity of its files, and where it says that they changed.
struct Files {
    _lock: datadir::Lock,
    identity: datadir::Identity,
    broken: Arc<std::sync::OnceLock<String>>,
}

/// The store task: waits for a command, takes every other command already queued, and runs
/// them all in one transaction on the blocking pool: commit (fsync), then answers.
async fn run(
    conn: Connection,
    mut rx: mpsc::UnboundedReceiver<Command>,
    reserve: Arc<DiskReserve>,
    files: Files,
) {
    let files = Arc::new(files);
    let mut conn = Some(Arc::new(Mutex::new(conn)));
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        let Some(open) = conn.clone() else {
            for c in batch {
                fail(c, &StoreError::Closed);
            }
            continue;
        };
        let reserve = reserve.clone();
        let f = files.clone();
        let ran = tokio::task::spawn_blocking(move || match open.lock() {
            Ok(mut conn) => run_batch(&mut conn, batch, &reserve, &f),
            Err(_) => {
                let error = StoreError::Failed("the store connection was poisoned".into());
                for c in batch {
                    fail(c, &error);
                }
                Vec::new()
            }
        })
        .await;
        let Ok(closes) = ran else { return };
        if !closes.is_empty() {
            // The connection closes (a checkpoint, the WAL removed) before the lock goes.
            if let Some(c) = conn.take().and_then(Arc::into_inner) {
                let _ = c.into_inner().map(Connection::close);
            }
            // The lock goes before the answer: whoever awaited the close may open the
            // directory at once.
            drop(files);
            for reply in closes {
                let _ = reply.send(Ok(()));
            }
            // Later commands fail with `Closed`.
            while let Some(c) = rx.recv().await {
                fail(c, &StoreError::Closed);
            }
            return;
        }
    }
}

/// Runs a batch; answers every command but the closes, which it returns.
fn run_batch(
    conn: &mut Connection,
    batch: Vec<Command>,
    reserve: &DiskReserve,
    files: &Files,
) -> Vec<Reply<()>> {
    let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
    let mut closes = Vec::new();
    let batch: Vec<Command> = batch
        .into_iter()
        .filter_map(|c| match c {
            Command::Close(reply) => {
                closes.push(reply);
                None
            }
            c => Some(c),
        })
        .collect();
    // Publishes are refused while a file of the store is gone, and while the disk is at its
    // reserve; the rest (settlements free space) runs.
    let publishes = batch.iter().any(|c| matches!(c, Command::Publish(..)));
    let refusal = match files.broken.get() {
        Some(why) if publishes => Some(StoreError::Lost(why.clone())),
        _ if publishes && reserve.exhausted() => Some(StoreError::Full),
        _ => None,
    };
    let (batch, refused): (Vec<Command>, Vec<Command>) = match &refusal {
        Some(_) => batch.into_iter().partition(|c| !matches!(c, Command::Publish(..))),
        None => (batch, Vec::new()),
    };
    if let Some(error) = &refusal {
        for c in refused {
            fail(c, error);
        }
    }
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            let error = StoreError::of(&e);
            for c in batch {
                fail(c, &error);
            }
            return closes;
        }
    };
    let publishes = batch.iter().any(|c| matches!(c, Command::Publish(..)));
    for command in batch {
        answers.push(execute(&tx, command));
    }
    // A commit into a file that is no longer on disk is not durable: the batch is rolled back
    // and refused rather than answered 204 (and checked again after the commit, for a file
    // gone in between).
    let mut committed = match files.identity.check() {
        Err(changed) if files.broken.get().is_none() => {
            let _ = tx.rollback();
            let why = rescue(conn, &changed, files.identity.database());
            let _ = files.broken.set(why.clone());
            Some(StoreError::Lost(why))
        }
        _ => tx.commit().map_err(|e| StoreError::of(&e)).err(),
    };
    if committed.is_none()
        && files.broken.get().is_none()
        && let Err(changed) = files.identity.check()
    {
        let why = rescue(conn, &changed, files.identity.database());
        let _ = files.broken.set(why.clone());
        if publishes {
            committed = Some(StoreError::Lost(why));
        }
    }
    for answer in answers {
        answer(committed.clone());
    }
    closes
}

/// Saves what the store holds after one of its files was deleted or replaced (SQLite still has
/// the old ones open): a deleted WAL is checkpointed into the database, a deleted database is
/// copied out with `VACUUM INTO`. Answers why publishes stop, and where the data is.
fn rescue(conn: &Connection, changed: &datadir::Changed, database: &Path) -> String {
    let stop = "publishes are refused from now on (503); stop busbar dev and start it again";
    if changed.wal {
        let saved = conn
            .query_row("PRAGMA wal_checkpoint(FULL)", [], |r| r.get::<_, i64>(0))
            .map(|busy| busy == 0)
            .unwrap_or(false);
        if saved {
            return format!(
                "{} while the broker ran; what it held was checkpointed into {}, but {stop}",
                changed.what,
                database.display()
            );
        }
        return format!(
            "{} while the broker ran, and what it held could not be checkpointed; {stop}",
            changed.what
        );
    }
    let copy = PathBuf::from(format!("{}.rescued-{}", database.display(), std::process::id()));
    let copied = conn.execute("VACUUM INTO ?1", params![copy.to_string_lossy()]).is_ok();
    if copied {
        let _ = datadir::make_private(&copy);
        format!(
            "{} while the broker ran; what it held was copied to {} (move it to {} after stopping to keep it), and {stop}",
            changed.what,
            copy.display(),
            database.display()
        )
    } else {
        format!(
            "{} while the broker ran, and what it held could not be copied out; {stop}",
            changed.what
        )
    }
}

/// Answers a command once the batch's commit is known (`Some(error)`: nothing was stored).
type Answer = Box<dyn FnOnce(Option<StoreError>) + Send>;

/// Answers a command that could not run.
fn fail(command: Command, error: &StoreError) {
    let e = error.clone();
    match command {
        Command::Close(r) => drop(r.send(Err(e))),
        Command::Publish(_, _, r) => drop(r.send(Err(e))),
        Command::Bodies(_, r) => drop(r.send(Err(e))),
        // Not committed: it will be delivered again after a restart (at least once).
        Command::Ack { done, .. } | Command::Retry { done, .. } | Command::Dead { done, .. } => {
            done.finished();
        }
        Command::DeadLetters { reply, .. } => drop(reply.send(Err(e))),
        Command::Release { reply, .. } => drop(reply.send(Err(e))),
        Command::MessageCount(reply) => drop(reply.send(Err(e))),
        Command::DeadCounts(reply) => drop(reply.send(Err(e))),
    }
}

/// A settlement ran (its error, if any, means a delivery again after a restart): once the batch
/// is committed (or failed), it no longer counts as unflushed.
fn settled(done: Arc<Unflushed>, _ran: Result<(), rusqlite::Error>) -> Answer {
    Box::new(move |_| done.finished())
}

/// Runs one command inside the batch's transaction; the returned closure answers it.
fn execute(tx: &rusqlite::Transaction, command: Command) -> Answer {
    fn answer<T: Send + 'static>(reply: Reply<T>, result: Result<T, rusqlite::Error>) -> Answer {
        let result = result.map_err(|e| StoreError::of(&e));
        Box::new(move |commit: Option<StoreError>| {
            let _ = reply.send(match commit {
                Some(e) => Err(e),
                None => result,
            });
        })
    }
    match command {
        Command::Publish(m, now, reply) => answer(reply, atomically(tx, || publish(tx, &m, now))),
        Command::Bodies(seqs, reply) => answer(reply, bodies(tx, &seqs)),
        // Settlements go without a savepoint: half of one is harmless (an acknowledged message
        // not collected, or a dead letter still owed a delivery), and two more statements per
        // delivery cost a tenth of the throughput.
        Command::Ack { subscription, seq, done } => settled(done, ack(tx, &subscription, seq)),
        Command::Retry { subscription, seq, attempts, next_at, done } => {
            settled(done, retry(tx, &subscription, seq, attempts, next_at))
        }
        Command::Dead { subscription, seq, attempts, reason, now, done } => {
            settled(done, dead(tx, &subscription, seq, attempts, &reason, now))
        }
        Command::DeadLetters { subscription, reply } => {
            answer(reply, dead_letters(tx, &subscription))
        }
        Command::Release { subscription, ids, now, reply } => {
            answer(reply, atomically(tx, || release(tx, &subscription, ids.as_deref(), now)))
        }
        Command::DeadCounts(reply) => answer(reply, dead_counts(tx)),
        Command::MessageCount(reply) => {
            answer(reply, query_row(tx, "SELECT COUNT(*) FROM messages", [], |r| r.get(0)))
        }
        Command::Close(reply) => answer(reply, Ok(())),
    }
}

/// Runs a command's statements all or none (a savepoint inside the batch's transaction): a
/// publish that fails halfway leaves no message without deliveries, and no client id
/// remembered for a message that was not stored (a retry would be taken for a duplicate).
fn atomically<T>(
    tx: &rusqlite::Transaction,
    f: impl FnOnce() -> Result<T, rusqlite::Error>,
) -> Result<T, rusqlite::Error> {
    exec(tx, "SAVEPOINT command", [])?;
    match f() {
        Ok(v) => {
            exec(tx, "RELEASE command", [])?;
            Ok(v)
        }
        Err(e) => {
            let _ = exec(tx, "ROLLBACK TO command", []);
            let _ = exec(tx, "RELEASE command", []);
            Err(e)
        }
    }
}

/// Runs a statement from the connection's cache: parsing SQL is most of the work otherwise.
fn exec(
    tx: &rusqlite::Transaction,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<usize, rusqlite::Error> {
    tx.prepare_cached(sql)?.execute(params)
}

fn query_row<T>(
    tx: &rusqlite::Transaction,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> Result<T, rusqlite::Error>,
) -> Result<T, rusqlite::Error> {
    tx.prepare_cached(sql)?.query_row(params, f)
}

fn publish(
    tx: &rusqlite::Transaction,
    m: &NewMessage,
    now: i64,
) -> Result<Stored, rusqlite::Error> {
    if let Some((client_id, _)) = &m.dedup {
        let earlier: Option<String> = query_row(
            tx,
            "SELECT id FROM dedup WHERE topic = ?1 AND client_id = ?2 AND expires_at > ?3",
            params![m.topic, client_id, now],
            |r| r.get(0),
        )
        .optional()?;
        if let Some(id) = earlier {
            return Ok(Stored::Duplicate(id));
        }
        exec(
            tx,
            "INSERT OR REPLACE INTO dedup (topic, client_id, id, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![m.topic, client_id, m.id, m.dedup.as_ref().map(|d| d.1)],
        )?;
        exec(tx, "DELETE FROM dedup WHERE expires_at <= ?1", params![now])?;
    }
    if m.subscriptions.is_empty() {
        // Nobody will ever receive it: nothing to keep.
        return Ok(Stored::Unwanted);
    }
    let attributes = serde_json::to_string(&m.attributes).unwrap_or_else(|_| "{}".into());
    exec(
        tx,
        "INSERT INTO messages (id, topic, data, content_type, attributes, ordering_key, published_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![m.id, m.topic, m.data, m.content_type, attributes, m.ordering_key, now],
    )?;
    let seq = tx.last_insert_rowid();
    let mut insert = tx.prepare_cached(
        "INSERT INTO deliveries (seq, subscription, attempts, next_at) VALUES (?1, ?2, 0, ?3)",
    )?;
    for sub in &m.subscriptions {
        insert.execute(params![seq, sub, now])?;
    }
    Ok(Stored::New(seq))
}

fn message_of(row: &rusqlite::Row, at: usize) -> Result<StoredMessage, rusqlite::Error> {
    let attributes: String = row.get(at + 4)?;
    Ok(StoredMessage {
        id: row.get(at)?,
        topic: row.get(at + 1)?,
        data: row.get(at + 2)?,
        content_type: row.get(at + 3)?,
        attributes: serde_json::from_str(&attributes).unwrap_or_default(),
        published_at_ms: row.get(at + 5)?,
    })
}

/// Every delivery owed, in publish order.
fn owed(conn: &Connection) -> Result<Vec<Owed>, rusqlite::Error> {
    let mut q = conn.prepare(
        "SELECT d.subscription, d.seq, d.attempts, d.next_at, m.ordering_key, m.published_at, m.id
         FROM deliveries d JOIN messages m ON m.seq = d.seq ORDER BY d.seq",
    )?;
    let rows = q.query_map([], |r| {
        Ok(Owed {
            subscription: r.get(0)?,
            seq: r.get(1)?,
            attempts: r.get(2)?,
            next_at: r.get(3)?,
            ordering_key: r.get(4)?,
            published_at: r.get(5)?,
            id: r.get(6)?,
        })
    })?;
    rows.collect()
}

fn bodies(
    tx: &rusqlite::Transaction,
    seqs: &[i64],
) -> Result<Vec<(i64, StoredMessage)>, rusqlite::Error> {
    let mut q = tx.prepare_cached(
        "SELECT id, topic, data, content_type, attributes, published_at FROM messages WHERE seq = ?1",
    )?;
    let mut out = Vec::with_capacity(seqs.len());
    for seq in seqs {
        if let Some(m) = q.query_row(params![seq], |r| message_of(r, 0)).optional()? {
            out.push((*seq, m));
        }
    }
    Ok(out)
}

fn dead_counts(tx: &rusqlite::Transaction) -> Result<BTreeMap<String, i64>, rusqlite::Error> {
    let mut q =
        tx.prepare_cached("SELECT subscription, COUNT(*) FROM dead_letters GROUP BY subscription")?;
    let rows = q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    rows.collect()
}

/// Deletes the message once nothing refers to it.
fn collect(tx: &rusqlite::Transaction, seq: i64) -> Result<(), rusqlite::Error> {
    exec(
        tx,
        "DELETE FROM messages WHERE seq = ?1
           AND NOT EXISTS (SELECT 1 FROM deliveries WHERE seq = ?1)
           AND NOT EXISTS (SELECT 1 FROM dead_letters WHERE seq = ?1)",
        params![seq],
    )?;
    Ok(())
}

fn ack(tx: &rusqlite::Transaction, sub: &str, seq: i64) -> Result<(), rusqlite::Error> {
    exec(tx, "DELETE FROM deliveries WHERE seq = ?2 AND subscription = ?1", params![sub, seq])?;
    collect(tx, seq)
}

fn retry(
    tx: &rusqlite::Transaction,
    sub: &str,
    seq: i64,
    attempts: u32,
    next_at: i64,
) -> Result<(), rusqlite::Error> {
    exec(
        tx,
        "UPDATE deliveries SET attempts = ?3, next_at = ?4 WHERE seq = ?2 AND subscription = ?1",
        params![sub, seq, attempts, next_at],
    )?;
    Ok(())
}

fn dead(
    tx: &rusqlite::Transaction,
    sub: &str,
    seq: i64,
    attempts: u32,
    reason: &str,
    now: i64,
) -> Result<(), rusqlite::Error> {
    let moved = exec(
        tx,
        "INSERT OR REPLACE INTO dead_letters (subscription, seq, reason, attempts, dead_at)
         SELECT subscription, seq, ?3, ?4, ?5 FROM deliveries WHERE seq = ?2 AND subscription = ?1",
        params![sub, seq, reason, attempts, now],
    )?;
    if moved > 0 {
        exec(tx, "DELETE FROM deliveries WHERE seq = ?2 AND subscription = ?1", params![sub, seq])?;
    }
    Ok(())
}

fn dead_letters(tx: &rusqlite::Transaction, sub: &str) -> Result<Vec<DeadLetter>, rusqlite::Error> {
    let mut q = tx.prepare_cached(
        "SELECT d.seq, d.reason, d.attempts, d.dead_at, m.id, m.topic, m.data, m.content_type, m.attributes, m.published_at
         FROM dead_letters d JOIN messages m ON m.seq = d.seq WHERE d.subscription = ?1 ORDER BY d.seq",
    )?;
    let rows = q.query_map(params![sub], |r| {
        Ok(DeadLetter {
            seq: r.get(0)?,
            reason: r.get(1)?,
            attempts: r.get(2)?,
            dead_at_ms: r.get(3)?,
            message: message_of(r, 4)?,
        })
    })?;
    rows.collect()
}

fn release(
    tx: &rusqlite::Transaction,
    sub: &str,
    ids: Option<&[String]>,
    now: i64,
) -> Result<Vec<Released>, rusqlite::Error> {
    let letters = dead_letters(tx, sub)?;
    let mut released = Vec::new();
    for letter in letters {
        if ids.is_some_and(|ids| !ids.contains(&letter.message.id)) {
            continue;
        }
        exec(
            tx,
            "INSERT OR REPLACE INTO deliveries (seq, subscription, attempts, next_at) VALUES (?1, ?2, 0, ?3)",
            params![letter.seq, sub, now],
        )?;
        exec(
            tx,
            "DELETE FROM dead_letters WHERE subscription = ?1 AND seq = ?2",
            params![sub, letter.seq],
        )?;
        let ordering_key: Option<String> = query_row(
            tx,
            "SELECT ordering_key FROM messages WHERE seq = ?1",
            params![letter.seq],
            |r| r.get(0),
        )?;
        released.push(Released { seq: letter.seq, ordering_key, message: letter.message });
    }
    Ok(released)
}
