//! The on-disk log: SQLite in WAL mode with `synchronous=FULL`, so a commit returns only after
//! the WAL is fsync'd. One task owns the connection; callers send it commands, and it runs
//! every command waiting at that moment in **one transaction** (group commit) on tokio's
//! blocking pool, then answers them all: concurrent publishers share an fsync, and nothing is
//! answered before it. (On the blocking pool rather than a thread of its own so that tokio's
//! paused test clock does not jump ahead while the disk works.)
//!
//! Tables: `messages` (one row per published message), `deliveries` (one row per subscription
//! still owing a delivery: its attempts and when it is next due), `dead_letters` (with the
//! reason), `dedup` (client message ids of exactly-once topics, with their expiry). A message row
//! is deleted when no delivery and no dead letter refers to it any more.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

/// A message as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: String,
    pub topic: String,
    pub data: Vec<u8>,
    pub attributes: BTreeMap<String, String>,
    pub published_at_ms: i64,
}

/// A delivery owed to a subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub seq: i64,
    pub attempts: u32,
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
    /// Stores the message; answers its id, or the id of the message stored earlier under the
    /// same client id (and `true`).
    Publish(NewMessage, i64, Reply<(String, bool)>),
    /// Due deliveries of a subscription: `now`, how many, and (when the caller wants the check)
    /// the `published_at` before which a delivery has outlived the retention (it is
    /// dead-lettered first).
    Fetch {
        subscription: String,
        now: i64,
        limit: usize,
        expired_before: Option<i64>,
        reply: Reply<Vec<Due>>,
    },
    /// The earliest `next_at` after `now`.
    NextDue {
        subscription: String,
        now: i64,
        reply: Reply<Option<i64>>,
    },
    Ack {
        subscription: String,
        seq: i64,
        reply: Reply<()>,
    },
    Retry {
        subscription: String,
        seq: i64,
        attempts: u32,
        next_at: i64,
        reply: Reply<()>,
    },
    Dead {
        subscription: String,
        seq: i64,
        attempts: u32,
        reason: String,
        now: i64,
        reply: Reply<()>,
    },
    DeadLetters {
        subscription: String,
        reply: Reply<Vec<DeadLetter>>,
    },
    /// Moves dead letters back (all, or those with these message ids); answers how many.
    Release {
        subscription: String,
        ids: Option<Vec<String>>,
        now: i64,
        reply: Reply<usize>,
    },
    /// Messages stored (not yet collected), for tests and metrics.
    MessageCount(Reply<i64>),
    /// Per subscription key: (deliveries owed, dead letters).
    Depths(Reply<BTreeMap<String, (i64, i64)>>),
}

/// A handle to the store thread. Cloning shares it.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::UnboundedSender<Command>,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL,
  topic TEXT NOT NULL,
  data BLOB NOT NULL,
  attributes TEXT NOT NULL,
  published_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
  subscription TEXT NOT NULL,
  seq INTEGER NOT NULL,
  ordering_key TEXT,
  attempts INTEGER NOT NULL,
  next_at INTEGER NOT NULL,
  PRIMARY KEY (subscription, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (subscription, next_at);
CREATE INDEX IF NOT EXISTS deliveries_key ON deliveries (subscription, ordering_key, seq);
CREATE INDEX IF NOT EXISTS deliveries_seq ON deliveries (seq);
CREATE TABLE IF NOT EXISTS dead_letters (
  subscription TEXT NOT NULL,
  seq INTEGER NOT NULL,
  ordering_key TEXT,
  reason TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  dead_at INTEGER NOT NULL,
  PRIMARY KEY (subscription, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dead_letters_seq ON dead_letters (seq);
CREATE INDEX IF NOT EXISTS messages_published ON messages (published_at);
CREATE TABLE IF NOT EXISTS dedup (
  topic TEXT NOT NULL,
  client_id TEXT NOT NULL,
  id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (topic, client_id)
) WITHOUT ROWID;
";

impl Store {
    /// Opens (or creates) `dir/busbar.db` and starts the store task (inside a tokio runtime).
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Failed(format!("cannot create {}: {e}", dir.display())))?;
        let conn = Connection::open(dir.join("busbar.db")).map_err(|e| StoreError::of(&e))?;
        conn.execute_batch(SCHEMA).map_err(|e| StoreError::of(&e))?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(conn, rx));
        Ok(Store { tx })
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(make(reply)).map_err(|_| StoreError::Closed)?;
        answer.await.unwrap_or(Err(StoreError::Closed))
    }

    pub async fn publish(
        &self,
        message: NewMessage,
        now: i64,
    ) -> Result<(String, bool), StoreError> {
        self.ask(|r| Command::Publish(message, now, r)).await
    }

    pub async fn fetch(
        &self,
        subscription: &str,
        now: i64,
        limit: usize,
        expired_before: Option<i64>,
    ) -> Result<Vec<Due>, StoreError> {
        let subscription = subscription.to_string();
        self.ask(|reply| Command::Fetch { subscription, now, limit, expired_before, reply }).await
    }

    pub async fn next_due(&self, subscription: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let subscription = subscription.to_string();
        self.ask(|reply| Command::NextDue { subscription, now, reply }).await
    }

    /// Queues the outcome of a delivery without waiting for it to be durable: commands run in
    /// the order they are sent, so a later fetch already sees it, and a crash before its commit
    /// only means the delivery happens again (at least once).
    pub fn settle(&self, subscription: &str, seq: i64, settlement: Settlement) {
        let (reply, _) = oneshot::channel();
        let subscription = subscription.to_string();
        let command = match settlement {
            Settlement::Ack => Command::Ack { subscription, seq, reply },
            Settlement::Retry { attempts, next_at } => {
                Command::Retry { subscription, seq, attempts, next_at, reply }
            }
            Settlement::Dead { attempts, reason, now } => {
                Command::Dead { subscription, seq, attempts, reason, now, reply }
            }
        };
        let _ = self.tx.send(command);
    }

    pub async fn dead_letters(&self, subscription: &str) -> Result<Vec<DeadLetter>, StoreError> {
        let subscription = subscription.to_string();
        self.ask(|reply| Command::DeadLetters { subscription, reply }).await
    }

    pub async fn release(
        &self,
        subscription: &str,
        ids: Option<Vec<String>>,
        now: i64,
    ) -> Result<usize, StoreError> {
        let subscription = subscription.to_string();
        self.ask(|reply| Command::Release { subscription, ids, now, reply }).await
    }

    pub async fn message_count(&self) -> Result<i64, StoreError> {
        self.ask(Command::MessageCount).await
    }

    /// Per subscription key: how many deliveries it is owed and how many dead letters it has.
    pub async fn depths(&self) -> Result<BTreeMap<String, (i64, i64)>, StoreError> {
        self.ask(Command::Depths).await
    }
}

/// The store task: waits for a command, takes every other command already queued, and runs
/// them all in one transaction on the blocking pool: commit (fsync), then answers.
async fn run(conn: Connection, mut rx: mpsc::UnboundedReceiver<Command>) {
    let conn = Arc::new(Mutex::new(conn));
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        let conn = conn.clone();
        let ran = tokio::task::spawn_blocking(move || match conn.lock() {
            Ok(mut conn) => run_batch(&mut conn, batch),
            Err(_) => {
                let error = StoreError::Failed("the store connection was poisoned".into());
                for c in batch {
                    fail(c, &error);
                }
            }
        })
        .await;
        if ran.is_err() {
            return;
        }
    }
}

fn run_batch(conn: &mut Connection, batch: Vec<Command>) {
    let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            let error = StoreError::of(&e);
            for c in batch {
                fail(c, &error);
            }
            return;
        }
    };
    for command in batch {
        answers.push(execute(&tx, command));
    }
    let committed = tx.commit().map_err(|e| StoreError::of(&e)).err();
    for answer in answers {
        answer(committed.clone());
    }
}

/// Answers a command once the batch's commit is known (`Some(error)`: nothing was stored).
type Answer = Box<dyn FnOnce(Option<StoreError>) + Send>;

/// Answers a command that could not run.
fn fail(command: Command, error: &StoreError) {
    let e = error.clone();
    match command {
        Command::Publish(_, _, r) => drop(r.send(Err(e))),
        Command::Fetch { reply, .. } => drop(reply.send(Err(e))),
        Command::NextDue { reply, .. } => drop(reply.send(Err(e))),
        Command::Ack { reply, .. } | Command::Retry { reply, .. } | Command::Dead { reply, .. } => {
            drop(reply.send(Err(e)));
        }
        Command::DeadLetters { reply, .. } => drop(reply.send(Err(e))),
        Command::Release { reply, .. } => drop(reply.send(Err(e))),
        Command::MessageCount(reply) => drop(reply.send(Err(e))),
        Command::Depths(reply) => drop(reply.send(Err(e))),
    }
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
        Command::Publish(m, now, reply) => answer(reply, publish(tx, m, now)),
        Command::Fetch { subscription, now, limit, expired_before, reply } => {
            answer(reply, fetch(tx, &subscription, now, limit, expired_before))
        }
        Command::NextDue { subscription, now, reply } => answer(
            reply,
            tx.query_row(
                "SELECT MIN(next_at) FROM deliveries WHERE subscription = ?1 AND next_at > ?2",
                params![subscription, now],
                |r| r.get::<_, Option<i64>>(0),
            ),
        ),
        Command::Ack { subscription, seq, reply } => answer(reply, ack(tx, &subscription, seq)),
        Command::Retry { subscription, seq, attempts, next_at, reply } => answer(
            reply,
            tx.execute(
                "UPDATE deliveries SET attempts = ?3, next_at = ?4 WHERE subscription = ?1 AND seq = ?2",
                params![subscription, seq, attempts, next_at],
            )
            .map(|_| ()),
        ),
        Command::Dead { subscription, seq, attempts, reason, now, reply } => {
            answer(reply, dead(tx, &subscription, seq, attempts, &reason, now))
        }
        Command::DeadLetters { subscription, reply } => answer(reply, dead_letters(tx, &subscription)),
        Command::Release { subscription, ids, now, reply } => answer(reply, release(tx, &subscription, ids.as_deref(), now)),
        Command::Depths(reply) => answer(reply, depths(tx)),
        Command::MessageCount(reply) => {
            answer(reply, tx.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0)))
        }
    }
}

fn publish(
    tx: &rusqlite::Transaction,
    m: NewMessage,
    now: i64,
) -> Result<(String, bool), rusqlite::Error> {
    if let Some((client_id, _)) = &m.dedup {
        let earlier: Option<String> = tx
            .query_row(
                "SELECT id FROM dedup WHERE topic = ?1 AND client_id = ?2 AND expires_at > ?3",
                params![m.topic, client_id, now],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = earlier {
            return Ok((id, true));
        }
    }
    let attributes = serde_json::to_string(&m.attributes).unwrap_or_else(|_| "{}".into());
    tx.execute(
        "INSERT INTO messages (id, topic, data, attributes, published_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![m.id, m.topic, m.data, attributes, now],
    )?;
    let seq = tx.last_insert_rowid();
    let mut insert = tx.prepare_cached(
        "INSERT INTO deliveries (subscription, seq, ordering_key, attempts, next_at) VALUES (?1, ?2, ?3, 0, ?4)",
    )?;
    for sub in &m.subscriptions {
        insert.execute(params![sub, seq, m.ordering_key, now])?;
    }
    if let Some((client_id, until)) = &m.dedup {
        tx.execute(
            "INSERT OR REPLACE INTO dedup (topic, client_id, id, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![m.topic, client_id, m.id, until],
        )?;
        tx.execute("DELETE FROM dedup WHERE expires_at <= ?1", params![now])?;
    }
    if m.subscriptions.is_empty() {
        // Nobody will ever receive it: nothing to keep.
        tx.execute("DELETE FROM messages WHERE seq = ?1", params![seq])?;
    }
    Ok((m.id, false))
}

fn message_of(row: &rusqlite::Row, at: usize) -> Result<StoredMessage, rusqlite::Error> {
    let attributes: String = row.get(at + 3)?;
    Ok(StoredMessage {
        id: row.get(at)?,
        topic: row.get(at + 1)?,
        data: row.get(at + 2)?,
        attributes: serde_json::from_str(&attributes).unwrap_or_default(),
        published_at_ms: row.get(at + 4)?,
    })
}

fn fetch(
    tx: &rusqlite::Transaction,
    sub: &str,
    now: i64,
    limit: usize,
    expired_before: Option<i64>,
) -> Result<Vec<Due>, rusqlite::Error> {
    // Deliveries that outlived the retention are dead letters, not deliveries.
    if let Some(expired_before) = expired_before {
        expire(tx, sub, now, expired_before)?;
    }
    let mut q = tx.prepare_cached(
        "SELECT d.seq, d.attempts, d.ordering_key, m.id, m.topic, m.data, m.attributes, m.published_at
         FROM deliveries d JOIN messages m ON m.seq = d.seq
         WHERE d.subscription = ?1 AND d.next_at <= ?2
           AND (d.ordering_key IS NULL OR d.seq = (
             SELECT MIN(e.seq) FROM deliveries e WHERE e.subscription = ?1 AND e.ordering_key = d.ordering_key))
         ORDER BY d.seq LIMIT ?3",
    )?;
    let rows = q.query_map(params![sub, now, limit as i64], |r| {
        Ok(Due {
            seq: r.get(0)?,
            attempts: r.get(1)?,
            ordering_key: r.get(2)?,
            message: message_of(r, 3)?,
        })
    })?;
    rows.collect()
}

/// Dead-letters the subscription's deliveries of messages published before `expired_before`.
fn expire(
    tx: &rusqlite::Transaction,
    sub: &str,
    now: i64,
    expired_before: i64,
) -> Result<(), rusqlite::Error> {
    let expired: Vec<(i64, u32)> = {
        let mut q = tx.prepare_cached(
            "SELECT d.seq, d.attempts FROM messages m JOIN deliveries d ON d.seq = m.seq
             WHERE m.published_at < ?2 AND d.subscription = ?1",
        )?;
        q.query_map(params![sub, expired_before], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    for (seq, attempts) in expired {
        dead(tx, sub, seq, attempts, "retention expired before the message was acknowledged", now)?;
    }
    Ok(())
}

fn depths(tx: &rusqlite::Transaction) -> Result<BTreeMap<String, (i64, i64)>, rusqlite::Error> {
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (table, dead) in [("deliveries", false), ("dead_letters", true)] {
        let mut q = tx.prepare_cached(&format!(
            "SELECT subscription, COUNT(*) FROM {table} GROUP BY subscription"
        ))?;
        let rows = q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (sub, n) = row?;
            let entry = out.entry(sub).or_default();
            if dead {
                entry.1 = n;
            } else {
                entry.0 = n;
            }
        }
    }
    Ok(out)
}

/// Deletes the message once nothing refers to it.
fn collect(tx: &rusqlite::Transaction, seq: i64) -> Result<(), rusqlite::Error> {
    tx.execute(
        "DELETE FROM messages WHERE seq = ?1
           AND NOT EXISTS (SELECT 1 FROM deliveries WHERE seq = ?1)
           AND NOT EXISTS (SELECT 1 FROM dead_letters WHERE seq = ?1)",
        params![seq],
    )?;
    Ok(())
}

fn ack(tx: &rusqlite::Transaction, sub: &str, seq: i64) -> Result<(), rusqlite::Error> {
    tx.execute("DELETE FROM deliveries WHERE subscription = ?1 AND seq = ?2", params![sub, seq])?;
    collect(tx, seq)
}

fn dead(
    tx: &rusqlite::Transaction,
    sub: &str,
    seq: i64,
    attempts: u32,
    reason: &str,
    now: i64,
) -> Result<(), rusqlite::Error> {
    let moved = tx.execute(
        "INSERT OR REPLACE INTO dead_letters (subscription, seq, ordering_key, reason, attempts, dead_at)
         SELECT subscription, seq, ordering_key, ?3, ?4, ?5 FROM deliveries WHERE subscription = ?1 AND seq = ?2",
        params![sub, seq, reason, attempts, now],
    )?;
    if moved > 0 {
        tx.execute(
            "DELETE FROM deliveries WHERE subscription = ?1 AND seq = ?2",
            params![sub, seq],
        )?;
    }
    Ok(())
}

fn dead_letters(tx: &rusqlite::Transaction, sub: &str) -> Result<Vec<DeadLetter>, rusqlite::Error> {
    let mut q = tx.prepare_cached(
        "SELECT d.seq, d.reason, d.attempts, d.dead_at, m.id, m.topic, m.data, m.attributes, m.published_at
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
) -> Result<usize, rusqlite::Error> {
    let letters = dead_letters(tx, sub)?;
    let mut released = 0;
    for letter in letters {
        if ids.is_some_and(|ids| !ids.contains(&letter.message.id)) {
            continue;
        }
        tx.execute(
            "INSERT OR REPLACE INTO deliveries (subscription, seq, ordering_key, attempts, next_at)
             SELECT subscription, seq, ordering_key, 0, ?3 FROM dead_letters WHERE subscription = ?1 AND seq = ?2",
            params![sub, letter.seq, now],
        )?;
        tx.execute(
            "DELETE FROM dead_letters WHERE subscription = ?1 AND seq = ?2",
            params![sub, letter.seq],
        )?;
        released += 1;
    }
    Ok(released)
}
