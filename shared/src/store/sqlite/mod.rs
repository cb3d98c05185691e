//! The embedded store on SQLite: one database file, for a local install or a small
//! production one on a single machine.
//!
//! - **Safe for several processes.** Commits run in `BEGIN IMMEDIATE` transactions:
//!   SQLite's write lock serialises writers across processes (a busy one waits up to
//!   [`BUSY_TIMEOUT`]), and every write's expectation is checked inside it, so two
//!   `local-api` processes on one file conflict exactly as two Lambda functions do on
//!   DynamoDB.
//! - **Group commit.** Commits that arrive while the write connection is busy wait
//!   together, and the next holder of the connection commits them all in one transaction,
//!   each in a savepoint of its own (a conflict undoes that commit alone): one fsync for
//!   many, so concurrent writers do not queue behind each other's fsyncs.
//! - **Readers never wait for writers.** The database is in WAL mode; reads run on a small
//!   pool of read connections, the writes on one write connection per process.
//! - **Off the async workers.** Every call runs on tokio's blocking pool.
//! - **Durable.** `synchronous = FULL`: a commit is on disk when it returns.
//! - **Housekeeping off the request path.** A thread of each serving process
//!   ([`SqliteStore::start_maintenance`]) moves the WAL's pages into the database every
//!   second (a passive checkpoint, which waits for no one), and deletes expired records in
//!   small batches, as DynamoDB's TTL does. A commit then never pays for a checkpoint.
//!
//! Records are stored as the same JSON documents as on DynamoDB, beside the columns that
//! the store looks them up, orders them or sweeps them by.

pub mod legacy;
mod outbox;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Expect, KeyringRecord, PublicKeysRecord, SessionFilter, Store, StoreError, Write};
use crate::clock::{Clock, Millis, SystemClock};
use crate::domain::{Client, ClientState, Identifier, JwtTemplate, Session, SignInToken, User};

/// How long a writer waits for another process's write lock before the call fails as
/// unavailable (a 503), rather than queueing without end.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an expired record is kept before the sweeper deletes it (as on DynamoDB).
pub const RETENTION_MS: Millis = 24 * 3600 * 1000;
/// Records deleted per sweeping transaction: each holds the write lock for about a
/// millisecond, so requests are never held up behind a long sweep.
const SWEEP_BATCH: usize = 500;
/// Read connections per core. More reads at once than this only take turns on the CPU,
/// and each connection maps and warms the file on its own.
const READERS_PER_CORE: usize = 2;
/// How often the maintenance thread checkpoints the WAL.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// Per connection: 2 GB of the file mapped (SQLite's default ceiling), so that reading a
/// page the OS has cached is a memory access, not a `pread`; and 2 MB of page cache
/// (SQLite's default), which bounds the page caches at 10 MB on two cores. Pages read
/// through the map take no room in it, so more did not help: in the soak (figure 12) all
/// of SQLite's allocations together stayed under 6 MB.
const CONNECTION_PRAGMAS: &str = "PRAGMA synchronous = FULL; PRAGMA cache_size = -2000; \
     PRAGMA mmap_size = 2147418112; PRAGMA wal_autocheckpoint = 10000;";
/// The schema this build writes (`PRAGMA user_version`). 2: `sessions` is `WITHOUT ROWID`;
/// 3: `identifiers`. An older database is upgraded when opened ([`create_or_upgrade`]).
const SCHEMA_VERSION: i64 = 3;
/// What every SQLite database file starts with.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Each table holds whole JSON records beside the columns the store looks them up by.
/// `sessions` is `WITHOUT ROWID`: a session is read by its id on most requests, and
/// clustered on it that is one B-tree descent instead of two (the key's index, then the
/// rowid table), which at a million sessions reads fewer pages the caches do not hold
/// (docs/benchmarks.md, figure 9). The other tables stay rowid tables: only the session
/// read was measured both ways.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS keyring (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS clients (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    retain_until INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS clients_by_retain_until ON clients (retain_until);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expire_at INTEGER NOT NULL,
    -- The id of the last status write, so a retried write recognises itself.
    status_write TEXT,
    data TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_by_client ON sessions (client_id, created_at, id);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id, created_at, id);
CREATE INDEX IF NOT EXISTS sessions_by_expire_at ON sessions (expire_at);
CREATE TABLE IF NOT EXISTS sign_in_tokens (
    ticket_hash TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sign_in_tokens_by_expires_at ON sign_in_tokens (expires_at);
-- Who holds each email address and username (`domain::identifier`).
CREATE TABLE IF NOT EXISTS identifiers (
    key TEXT PRIMARY KEY,
    user_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
-- Events recorded by commits, not yet fanned out to deliveries.
CREATE TABLE IF NOT EXISTS webhook_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    data TEXT NOT NULL
);
-- One row per event and endpoint, delivered in `seq` order per `group_key` (endpoint
-- and key). A dead-lettered row has `dead_until` set, and is swept after it.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id TEXT NOT NULL,
    group_key TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    lease_until INTEGER NOT NULL DEFAULT 0,
    dead_until INTEGER,
    last_error TEXT,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_group ON webhook_deliveries (group_key, seq)
    WHERE dead_until IS NULL;
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_dead_until ON webhook_deliveries (dead_until);
-- Spent one-time credentials (handshake nonces), kept until they expire.
CREATE TABLE IF NOT EXISTS used_once (
    key TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    write_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS used_once_by_expires_at ON used_once (expires_at);
CREATE TABLE IF NOT EXISTS jwt_templates (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL
);
";

/// Schema 1 → 2, before [`SCHEMA`]: the rowid `sessions` table and its indexes step aside
/// (the indexes' names are SCHEMA's), for SCHEMA to create the new ones.
const SESSIONS_V1_ASIDE: &str = "
DROP INDEX sessions_by_client;
DROP INDEX sessions_by_user;
DROP INDEX sessions_by_expire_at;
ALTER TABLE sessions RENAME TO sessions_v1;
";
/// Schema 1 → 2, after [`SCHEMA`]: the sessions move into the new table.
const SESSIONS_V1_MOVE: &str = "
INSERT INTO sessions (id, client_id, user_id, created_at, expire_at, status_write, data)
    SELECT id, client_id, user_id, created_at, expire_at, status_write, data FROM sessions_v1;
DROP TABLE sessions_v1;
";

pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// The one write connection of this process (SQLite allows one writer at a time).
    writer: Mutex<Connection>,
    readers: Readers,
    /// Commits waiting for the write connection (group commit).
    queued: Mutex<Vec<QueuedCommit>>,
}

/// A commit waiting for the write connection, and where its outcome goes.
struct QueuedCommit {
    writes: Vec<Write>,
    done: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

/// The read connections: opened when first needed, at most `max`, kept for reuse; a read
/// waits for a free one.
struct Readers {
    /// The idle connections, and how many are open in all.
    idle: Mutex<(Vec<Connection>, usize)>,
    freed: Condvar,
    max: usize,
}

impl Readers {
    fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            idle: Mutex::new((Vec::new(), 0)),
            freed: Condvar::new(),
            max: (cores * READERS_PER_CORE).max(4),
        }
    }

    fn take(&self, path: &Path) -> Result<Connection, StoreError> {
        let mut idle = lock(&self.idle);
        loop {
            if let Some(conn) = idle.0.pop() {
                return Ok(conn);
            }
            if idle.1 < self.max {
                idle.1 += 1;
                drop(idle);
                return connect(path).inspect_err(|_| {
                    lock(&self.idle).1 -= 1;
                    self.freed.notify_one();
                });
            }
            idle = self
                .freed
                .wait(idle)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    fn put(&self, conn: Connection) {
        lock(&self.idle).0.push(conn);
        self.freed.notify_one();
    }
}

impl SqliteStore {
    /// Opens the database at `path`, creating it (mode 0600: it holds the keyring) and its
    /// tables when missing. A JSON data file of an earlier version is refused with the
    /// command that migrates it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let fault = |e: std::io::Error| StoreError::Fault(format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fault)?;
        }
        if !is_sqlite_or_empty(path).map_err(fault)? {
            return Err(StoreError::Fault(format!(
                "{} is not a SQLite database. If it is the JSON data file of an earlier \
                 version, migrate it with `local-api migrate-data-file {}` (it writes the \
                 SQLite database beside it) and point --data-file at the new file",
                path.display(),
                path.display()
            )));
        }
        create_private(path).map_err(fault)?;
        let mut writer = connect(path)?;
        let tx = writer
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Fault(format!(
                "{} was written by a newer version of the service (schema {version}, this \
                 build reads {SCHEMA_VERSION})",
                path.display()
            )));
        }
        create_or_upgrade(&tx, version)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
        let upgraded = version != 0 && version < SCHEMA_VERSION;
        if upgraded {
            // An upgrade rewrote whole tables through the WAL; empty it now, or the file
            // keeps that size. Best effort: a reader of another process may hold it.
            let _ = writer.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                readers: Readers::new(),
                queued: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Starts the thread that checkpoints the WAL every second and deletes expired records
    /// every `sweep_every`, for as long as the store is open. It sweeps on the system clock,
    /// as DynamoDB's TTL does. (Without it, as in tests, commits checkpoint the WAL
    /// themselves once it reaches 10,000 pages.)
    pub fn start_maintenance(&self, sweep_every: Duration) {
        let inner: Weak<Inner> = Arc::downgrade(&self.inner);
        let path = self.inner.path.clone();
        let spawned = std::thread::Builder::new()
            .name("sqlite-maintenance".into())
            .spawn(move || {
                // A connection of its own: a checkpoint never holds up this process's writer.
                let conn = match connect(&path) {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "no maintenance: expired records are kept");
                        return;
                    }
                };
                let mut swept_at = std::time::Instant::now();
                loop {
                    std::thread::sleep(CHECKPOINT_EVERY);
                    let Some(inner) = inner.upgrade() else {
                        return;
                    };
                    // Passive: copies what no reader still needs, and waits for no lock.
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "checkpoint failed");
                    }
                    if swept_at.elapsed() >= sweep_every {
                        swept_at = std::time::Instant::now();
                        match inner.sweep(SystemClock.now_ms()) {
                            Ok(0) => {}
                            Ok(n) => tracing::info!(deleted = n, "swept expired records"),
                            Err(e) => tracing::warn!(error = %e, "sweeping expired records failed"),
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no maintenance thread: expired records are kept");
        }
    }

    /// Deletes the records that expired more than [`RETENTION_MS`] before `now`, in
    /// batches; returns how many. (What the sweeper does; public for tests and tools.)
    pub async fn sweep_expired(&self, now: Millis) -> Result<usize, StoreError> {
        let inner = self.inner.clone();
        blocking(move || inner.sweep(now)).await
    }

    /// Writes a consistent copy of the database to `dest` while it is in use (SQLite's
    /// `VACUUM INTO`: a snapshot as of one transaction, compacted). `dest` must not exist.
    /// The file is created empty with mode 0600 (exclusively) before SQLite writes a page
    /// into it, so the copy of the keyring is never readable by others, not even while
    /// it is written; `VACUUM INTO` fills an existing empty file and keeps its mode.
    pub async fn backup_to(&self, dest: &Path) -> Result<(), StoreError> {
        let dest = dest.to_path_buf();
        let dest_str = dest
            .to_str()
            .ok_or_else(|| StoreError::Fault("backup path is not UTF-8".into()))?
            .to_string();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&dest) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Fault(format!(
                    "{} exists already",
                    dest.display()
                )))
            }
            Err(e) => return Err(StoreError::Fault(format!("{}: {e}", dest.display()))),
        }
        let written = self
            .read(move |conn| {
                conn.execute("VACUUM INTO ?1", params![dest_str])
                    .map_err(sql)?;
                Ok(())
            })
            .await;
        if written.is_err() {
            // No half-written copy left behind to be mistaken for a backup.
            let _ = std::fs::remove_file(&dest);
        }
        written
    }

    /// Runs `f` on a read connection, on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        blocking(move || {
            let conn = inner.readers.take(&inner.path)?;
            let out = f(&conn);
            inner.readers.put(conn);
            out
        })
        .await
    }

    /// Runs `f` on this process's write connection, on the blocking pool.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        blocking(move || f(&mut lock(&inner.writer))).await
    }
}

impl Inner {
    /// Takes the write connection and commits every queued commit in one transaction. A
    /// caller whose commit a previous holder took finds the queue empty and returns; its
    /// outcome was sent already.
    fn commit_queued(&self) {
        let mut conn = lock(&self.writer);
        let queued = std::mem::take(&mut *lock(&self.queued));
        if queued.is_empty() {
            return;
        }
        let (batches, outcomes): (Vec<_>, Vec<_>) =
            queued.into_iter().map(|q| (q.writes, q.done)).unzip();
        let results = commit_group(&mut conn, batches);
        for (done, result) in outcomes.into_iter().zip(results) {
            // The caller may have gone (its request was dropped): the outcome stands.
            let _ = done.send(result);
        }
    }

    fn sweep(&self, now: Millis) -> Result<usize, StoreError> {
        let cutoff = now - RETENTION_MS;
        let mut total = 0;
        for (table, key, column) in [
            ("sessions", "id", "expire_at"),
            ("clients", "id", "retain_until"),
            ("sign_in_tokens", "ticket_hash", "expires_at"),
            ("webhook_deliveries", "seq", "dead_until"),
            ("used_once", "key", "expires_at"),
        ] {
            let statement = format!(
                "DELETE FROM {table} WHERE {key} IN \
                 (SELECT {key} FROM {table} WHERE {column} < ?1 LIMIT {SWEEP_BATCH})"
            );
            loop {
                // The write lock is taken and released per batch, so requests interleave.
                let deleted = {
                    let mut conn = lock(&self.writer);
                    let tx = conn
                        .transaction_with_behavior(TransactionBehavior::Immediate)
                        .map_err(sql)?;
                    let deleted = tx.execute(&statement, params![cutoff]).map_err(sql)?;
                    tx.commit().map_err(sql)?;
                    deleted
                };
                total += deleted;
                if deleted < SWEEP_BATCH {
                    break;
                }
            }
        }
        Ok(total)
    }
}

/// Commits `writes` all-or-nothing in one immediate transaction: every expectation is
/// checked first, against what is committed (by any process) when the lock is taken.
pub(crate) fn commit_writes(conn: &mut Connection, writes: Vec<Write>) -> Result<(), StoreError> {
    commit_group(conn, vec![writes])
        .pop()
        .unwrap_or(Err(StoreError::Fault("no outcome".into())))
}

/// Commits each batch of writes all-or-nothing, in order, in one immediate transaction:
/// each batch in a savepoint of its own, checked against what is committed (by any
/// process) and what the batches before it wrote, exactly as if they had been committed
/// one after another; a batch that conflicts or fails is undone alone. When the
/// transaction itself cannot commit, every batch fails and nothing is written.
fn commit_group(conn: &mut Connection, batches: Vec<Vec<Write>>) -> Vec<Result<(), StoreError>> {
    let count = batches.len();
    let failed_all = |e: StoreError| (0..count).map(|_| Err(e.clone())).collect();
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return failed_all(sql(e)),
    };
    let results: Vec<Result<(), StoreError>> = batches
        .into_iter()
        .map(|writes| commit_in_savepoint(&mut tx, writes))
        .collect();
    if !results.iter().any(Result::is_ok) {
        return results; // Nothing to keep: the transaction rolls back when dropped.
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => failed_all(sql(e)),
    }
}

fn commit_in_savepoint(
    tx: &mut rusqlite::Transaction<'_>,
    writes: Vec<Write>,
) -> Result<(), StoreError> {
    // Dropped without `commit`, a savepoint rolls back what it holds.
    let savepoint = tx.savepoint().map_err(sql)?;
    for write in &writes {
        if !check(&savepoint, write)? {
            return Err(StoreError::Conflict);
        }
    }
    for write in writes {
        apply(&savepoint, write)?;
    }
    savepoint.commit().map_err(sql)
}

/// Stores the keyring if the stored one is as `expect` says.
pub(crate) fn put_keyring_on(
    conn: &mut Connection,
    keyring: &KeyringRecord,
    expect: Expect,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    let current = version_of(&tx, "SELECT version FROM keyring WHERE id = 1", [])?;
    if !expect.holds_for(current) {
        return Err(StoreError::Conflict);
    }
    tx.execute(
        "INSERT INTO keyring (id, version, data) VALUES (1, ?1, ?2) \
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, data = excluded.data",
        params![keyring.version as i64, to_json(keyring)?],
    )
    .map_err(sql)?;
    tx.commit().map_err(sql)
}

fn check(tx: &Connection, write: &Write) -> Result<bool, StoreError> {
    Ok(match write {
        Write::User(u, e) => e.holds_for(version_of(
            tx,
            "SELECT version FROM users WHERE id = ?1",
            params![&u.id],
        )?),
        Write::Client(c, e) => e.holds_for(version_of(
            tx,
            "SELECT version FROM clients WHERE id = ?1",
            params![&c.id],
        )?),
        Write::NewSession(s) => {
            version_of(tx, "SELECT 1 FROM sessions WHERE id = ?1", params![&s.id])?.is_none()
        }
        Write::ReplaceSession(_) => true,
        Write::SessionStatus {
            id, from, write_id, ..
        } => match session_row(tx, id)? {
            Some((s, last_write)) => s.status == *from || last_write.as_ref() == Some(write_id),
            None => false,
        },
        Write::SessionActivity { id, at, .. } => session_row(tx, id)?.is_some_and(|(s, _)| {
            s.status.is_signed_in() && s.last_active_at < *at && s.abandon_at > *at
        }),
        Write::LastActiveSession { client_id, .. } => version_of(
            tx,
            "SELECT 1 FROM clients WHERE id = ?1",
            params![client_id],
        )?
        .is_some(),
        Write::SignInToken(t, e) => e.holds_for(version_of(
            tx,
            "SELECT version FROM sign_in_tokens WHERE ticket_hash = ?1",
            params![&t.ticket_hash],
        )?),
        Write::JwtTemplate(t, e) => e.holds_for(version_of(
            tx,
            "SELECT version FROM jwt_templates WHERE name = ?1",
            params![&t.name],
        )?),
        Write::DeleteUser { id, version } => Expect::Version(*version).holds_for(version_of(
            tx,
            "SELECT version FROM users WHERE id = ?1",
            params![id],
        )?),
        Write::Identifier(i) => version_of(
            tx,
            "SELECT 1 FROM identifiers WHERE key = ?1",
            params![&i.key],
        )?
        .is_none(),
        Write::ReleaseIdentifier { key } => {
            version_of(tx, "SELECT 1 FROM identifiers WHERE key = ?1", params![key])?.is_some()
        }
        Write::DeleteJwtTemplate { name, version } => {
            Expect::Version(*version).holds_for(version_of(
                tx,
                "SELECT version FROM jwt_templates WHERE name = ?1",
                params![name],
            )?)
        }
        Write::Event(_) => true,
        Write::WebhookEndpoint(e, x) => x.holds_for(version_of(
            tx,
            "SELECT version FROM webhook_endpoints WHERE id = ?1",
            params![&e.id],
        )?),
        Write::DeleteWebhookEndpoint { id, version } => {
            Expect::Version(*version).holds_for(version_of(
                tx,
                "SELECT version FROM webhook_endpoints WHERE id = ?1",
                params![id],
            )?)
        }
        Write::UseOnce {
            key, at, write_id, ..
        } => version_of(
            tx,
            "SELECT 1 FROM used_once WHERE key = ?1 AND expires_at > ?2 AND write_id <> ?3",
            params![key, at, write_id],
        )?
        .is_none(),
    })
}

fn apply(tx: &Connection, write: Write) -> Result<(), StoreError> {
    match write {
        Write::User(u, _) => put_user(tx, &u),
        Write::Client(c, _) => put_client(tx, &c),
        Write::NewSession(s) => put_session(tx, &s, None),
        Write::ReplaceSession(s) => replace_session(tx, &s),
        Write::SessionStatus {
            id,
            to,
            at,
            write_id,
            ..
        } => {
            if let Some((mut s, _)) = session_row(tx, &id)? {
                s.status = to;
                s.updated_at = at;
                put_session(tx, &s, Some(&write_id))?;
            }
            Ok(())
        }
        Write::SessionActivity {
            id,
            at,
            abandon_at,
            seen,
            ..
        } => {
            if let Some((mut s, last_write)) = session_row(tx, &id)? {
                s.last_active_at = at;
                s.abandon_at = abandon_at;
                s.updated_at = at;
                if seen.is_some() {
                    s.latest_activity = seen;
                }
                put_session(tx, &s, last_write.as_deref())?;
            }
            Ok(())
        }
        Write::LastActiveSession {
            client_id,
            session_id,
            at,
        } => {
            let client: Option<Client> = record(
                tx,
                "SELECT data FROM clients WHERE id = ?1",
                params![client_id],
            )?;
            if let Some(mut c) = client {
                c.last_active_session_id = Some(session_id);
                c.updated_at = at;
                put_client(tx, &c)?;
            }
            Ok(())
        }
        Write::SignInToken(t, _) => put_sign_in_token(tx, &t),
        Write::JwtTemplate(t, _) => {
            tx.prepare_cached(
                "INSERT INTO jwt_templates (name, version, created_at, id, data) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO UPDATE SET \
                 version = excluded.version, created_at = excluded.created_at, \
                 id = excluded.id, data = excluded.data",
            )
            .and_then(|mut st| {
                st.execute(params![
                    t.name,
                    t.version as i64,
                    t.created_at,
                    t.id,
                    to_json_sql(&t)?
                ])
            })
            .map_err(sql)?;
            Ok(())
        }
        Write::DeleteJwtTemplate { name, .. } => {
            tx.execute("DELETE FROM jwt_templates WHERE name = ?1", params![name])
                .map_err(sql)?;
            Ok(())
        }
        Write::DeleteUser { id, .. } => {
            tx.execute("DELETE FROM users WHERE id = ?1", params![id])
                .map_err(sql)?;
            Ok(())
        }
        Write::Identifier(i) => {
            tx.prepare_cached("INSERT INTO identifiers (key, user_id) VALUES (?1, ?2)")
                .and_then(|mut st| st.execute(params![i.key, i.user_id]))
                .map_err(sql)?;
            Ok(())
        }
        Write::ReleaseIdentifier { key } => {
            tx.prepare_cached("DELETE FROM identifiers WHERE key = ?1")
                .and_then(|mut st| st.execute(params![key]))
                .map_err(sql)?;
            Ok(())
        }
        Write::Event(e) => outbox::record_event(tx, &e),
        Write::WebhookEndpoint(e, _) => outbox::put_endpoint(tx, &e),
        Write::DeleteWebhookEndpoint { id, .. } => {
            tx.execute("DELETE FROM webhook_endpoints WHERE id = ?1", params![id])
                .map_err(sql)?;
            Ok(())
        }
        Write::UseOnce {
            key,
            expires_at,
            write_id,
            ..
        } => {
            tx.prepare_cached(
                "INSERT INTO used_once (key, expires_at, write_id) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at, \
                 write_id = excluded.write_id",
            )
            .and_then(|mut st| st.execute(params![key, expires_at, write_id]))
            .map_err(sql)?;
            Ok(())
        }
    }
}

pub(crate) fn put_user(tx: &Connection, u: &User) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO users (id, version, data) VALUES (?1, ?2, ?3) \
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, data = excluded.data",
    )
    .and_then(|mut st| st.execute(params![u.id, u.version as i64, to_json_sql(u)?]))
    .map_err(sql)?;
    Ok(())
}

pub(crate) fn put_client(tx: &Connection, c: &Client) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO clients (id, version, retain_until, data) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, \
         retain_until = excluded.retain_until, data = excluded.data",
    )
    .and_then(|mut st| {
        st.execute(params![
            c.id,
            c.version as i64,
            c.retain_until(),
            to_json_sql(c)?
        ])
    })
    .map_err(sql)?;
    Ok(())
}

pub(crate) fn put_session(
    tx: &Connection,
    s: &Session,
    status_write: Option<&str>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO sessions \
         (id, client_id, user_id, created_at, expire_at, status_write, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO UPDATE SET \
         status_write = excluded.status_write, data = excluded.data",
    )
    .and_then(|mut st| {
        st.execute(params![
            s.id,
            s.client_id,
            s.user_id,
            s.created_at,
            s.expire_at,
            status_write,
            to_json_sql(s)?
        ])
    })
    .map_err(sql)?;
    Ok(())
}

/// A session written whole, its looked-up columns too (which `put_session` leaves as
/// first written, since requests never change them).
fn replace_session(tx: &Connection, s: &Session) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO sessions \
         (id, client_id, user_id, created_at, expire_at, status_write, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6) ON CONFLICT (id) DO UPDATE SET \
         client_id = excluded.client_id, user_id = excluded.user_id, \
         created_at = excluded.created_at, expire_at = excluded.expire_at, \
         status_write = NULL, data = excluded.data",
        params![
            s.id,
            s.client_id,
            s.user_id,
            s.created_at,
            s.expire_at,
            to_json(s)?
        ],
    )
    .map_err(sql)?;
    Ok(())
}

pub(crate) fn put_sign_in_token(tx: &Connection, t: &SignInToken) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO sign_in_tokens (ticket_hash, version, expires_at, data) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (ticket_hash) DO UPDATE SET \
         version = excluded.version, expires_at = excluded.expires_at, data = excluded.data",
    )
    .and_then(|mut st| {
        st.execute(params![
            t.ticket_hash,
            t.version as i64,
            t.expires_at,
            to_json_sql(t)?
        ])
    })
    .map_err(sql)?;
    Ok(())
}

fn session_row(tx: &Connection, id: &str) -> Result<Option<(Session, Option<String>)>, StoreError> {
    let row = tx
        .prepare_cached("SELECT data, status_write FROM sessions WHERE id = ?1")
        .and_then(|mut st| {
            st.query_row(params![id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })
            .optional()
        })
        .map_err(sql)?;
    row.map(|(data, last_write)| Ok((from_json(&data)?, last_write)))
        .transpose()
}

/// The version (or any number) the query selects, if a row matches.
fn version_of(
    tx: &Connection,
    query: &str,
    params: impl rusqlite::Params,
) -> Result<Option<u64>, StoreError> {
    let version: Option<i64> = tx
        .prepare_cached(query)
        .and_then(|mut st| st.query_row(params, |r| r.get(0)).optional())
        .map_err(sql)?;
    Ok(version.map(|v| v as u64))
}

/// Creates what is missing of [`SCHEMA`] in a database of schema `version` (0 when new),
/// upgrading an earlier schema's tables in place, inside the caller's transaction: all of it
/// or, if anything fails, none.
fn create_or_upgrade(tx: &Connection, version: i64) -> Result<(), StoreError> {
    let sessions_v1 = version == 1;
    if sessions_v1 {
        tracing::info!(
            from = version,
            to = SCHEMA_VERSION,
            "upgrading the database: the sessions table is rebuilt"
        );
        tx.execute_batch(SESSIONS_V1_ASIDE).map_err(sql)?;
    }
    tx.execute_batch(SCHEMA).map_err(sql)?;
    if sessions_v1 {
        tx.execute_batch(SESSIONS_V1_MOVE).map_err(sql)?;
    }
    if version != 0 && version < 3 {
        index_identifiers(tx)?;
    }
    Ok(())
}

/// Schema 2 → 3: the identifiers of the users stored before the index existed. Should two
/// users share one (nothing prevented it then), the older user keeps it, and the other is
/// named in the log (no address is: identifiers are personal data).
fn index_identifiers(tx: &Connection) -> Result<(), StoreError> {
    let mut users: Vec<User> = records(tx, "SELECT data FROM users", [])?;
    users.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    for user in &users {
        for key in user.identifier_keys() {
            let added = tx
                .execute(
                    "INSERT OR IGNORE INTO identifiers (key, user_id) VALUES (?1, ?2)",
                    params![key, user.id],
                )
                .map_err(sql)?;
            if added == 0 {
                tracing::warn!(
                    user_id = %user.id,
                    "an email address or username of this user is another user's too: \
                     the older user keeps it for sign-in"
                );
            }
        }
    }
    Ok(())
}

/// One record by its query, parsed.
fn record<T: DeserializeOwned>(
    conn: &Connection,
    query: &str,
    params: impl rusqlite::Params,
) -> Result<Option<T>, StoreError> {
    let data: Option<String> = conn
        .prepare_cached(query)
        .and_then(|mut st| st.query_row(params, |r| r.get(0)).optional())
        .map_err(sql)?;
    data.as_deref().map(from_json).transpose()
}

/// Every record of a query, parsed, in the query's order.
fn records<T: DeserializeOwned>(
    conn: &Connection,
    query: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<T>, StoreError> {
    let mut st = conn.prepare_cached(query).map_err(sql)?;
    let rows = st
        .query_map(params, |r| r.get::<_, String>(0))
        .map_err(sql)?;
    rows.map(|data| from_json(&data.map_err(sql)?)).collect()
}

fn to_json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Fault(e.to_string()))
}

fn to_json_sql<T: Serialize>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))
}

fn from_json<T: DeserializeOwned>(data: &str) -> Result<T, StoreError> {
    serde_json::from_str(data).map_err(|e| StoreError::Fault(format!("unreadable record: {e}")))
}

/// Sorts a SQLite failure: a lock held too long by another process is a temporary
/// unavailability (503, safe to retry); anything else is a fault.
fn sql(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(format!("database busy: {e}"))
        }
        _ => StoreError::Fault(format!("sqlite: {e}")),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a connection leaves no half-written commit (an unfinished
    // transaction rolls back when dropped), so a poisoned lock is safe to keep using.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs blocking SQLite work on tokio's blocking pool, off the async workers.
async fn blocking<T, F>(f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Fault(format!("store task failed: {e}")))?
}

/// A connection with the settings every connection needs (they are per connection).
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
    // WAL persists in the file once set; asking again is cheap and covers a new file.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(sql)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Fault(format!(
            "{}: WAL mode unavailable (journal mode {mode}); is the file on a network share?",
            path.display()
        )));
    }
    conn.execute_batch(CONNECTION_PRAGMAS).map_err(sql)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Whether `path` is missing, empty or a SQLite database (anything else is refused).
fn is_sqlite_or_empty(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e),
    };
    let mut head = [0u8; 16];
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..])? {
            0 => break,
            n => read += n,
        }
    }
    Ok(read == 0 || &head == SQLITE_MAGIC)
}

/// Creates an empty database file only its owner can read (SQLite gives the WAL and
/// shared-memory files the same mode), unless it exists.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn keyring(&self) -> Result<Option<KeyringRecord>, StoreError> {
        self.read(|conn| record(conn, "SELECT data FROM keyring WHERE id = 1", []))
            .await
    }

    async fn public_keys(&self) -> Result<Option<PublicKeysRecord>, StoreError> {
        Ok(self
            .keyring()
            .await?
            .as_ref()
            .map(KeyringRecord::public_view))
    }

    async fn put_keyring(&self, keyring: KeyringRecord, expect: Expect) -> Result<(), StoreError> {
        self.write(move |conn| put_keyring_on(conn, &keyring, expect))
            .await
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| record(conn, "SELECT data FROM users WHERE id = ?1", params![id]))
            .await
    }

    async fn get_users(&self, ids: &[String]) -> Result<Vec<Arc<User>>, StoreError> {
        let ids = ids.to_vec();
        self.read(move |conn| {
            let mut users = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(u) = record(conn, "SELECT data FROM users WHERE id = ?1", params![id])?
                {
                    users.push(Arc::new(u));
                }
            }
            Ok(users)
        })
        .await
    }

    async fn get_identifier(&self, key: &str) -> Result<Option<Identifier>, StoreError> {
        let key = key.to_string();
        self.read(move |conn| {
            let user_id: Option<String> = conn
                .prepare_cached("SELECT user_id FROM identifiers WHERE key = ?1")
                .and_then(|mut st| st.query_row(params![key], |r| r.get(0)).optional())
                .map_err(sql)?;
            Ok(user_id.map(|user_id| Identifier { key, user_id }))
        })
        .await
    }

    async fn get_sign_in_token(
        &self,
        ticket_hash: &str,
    ) -> Result<Option<SignInToken>, StoreError> {
        let hash = ticket_hash.to_string();
        self.read(move |conn| {
            record(
                conn,
                "SELECT data FROM sign_in_tokens WHERE ticket_hash = ?1",
                params![hash],
            )
        })
        .await
    }

    async fn get_client(&self, id: &str) -> Result<Option<ClientState>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| {
            // One read transaction: the client and its sessions as of one commit.
            let tx = conn.unchecked_transaction().map_err(sql)?;
            let Some(client) = record(&tx, "SELECT data FROM clients WHERE id = ?1", params![id])?
            else {
                return Ok(None);
            };
            let sessions = records(
                &tx,
                "SELECT data FROM sessions WHERE client_id = ?1 ORDER BY created_at, id",
                params![id],
            )?;
            tx.finish().map_err(sql)?;
            Ok(Some(ClientState { client, sessions }))
        })
        .await
    }

    async fn get_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| record(conn, "SELECT data FROM sessions WHERE id = ?1", params![id]))
            .await
    }

    async fn list_sessions(&self, filter: &SessionFilter) -> Result<Vec<Session>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| {
            let found: Vec<Session> = match (&filter.client_id, &filter.user_id) {
                (Some(client_id), _) => records(
                    conn,
                    "SELECT data FROM sessions WHERE client_id = ?1",
                    params![client_id],
                )?,
                // Newest first along the index, read no further than asked.
                (None, Some(user_id)) => records(
                    conn,
                    "SELECT data FROM sessions WHERE user_id = ?1 \
                     ORDER BY created_at DESC, id DESC LIMIT ?2",
                    params![user_id, filter.newest.map_or(-1, |n| n as i64)],
                )?,
                (None, None) => records(conn, "SELECT data FROM sessions", [])?,
            };
            Ok(filter.select(found))
        })
        .await
    }

    async fn get_jwt_template(&self, name: &str) -> Result<Option<JwtTemplate>, StoreError> {
        let name = name.to_string();
        self.read(move |conn| {
            record(
                conn,
                "SELECT data FROM jwt_templates WHERE name = ?1",
                params![name],
            )
        })
        .await
    }

    async fn list_jwt_templates(&self) -> Result<Vec<JwtTemplate>, StoreError> {
        self.read(|conn| {
            records(
                conn,
                "SELECT data FROM jwt_templates ORDER BY created_at, id",
                [],
            )
        })
        .await
    }

    async fn list_webhook_endpoints(
        &self,
    ) -> Result<Vec<crate::webhooks::WebhookEndpoint>, StoreError> {
        self.read(|conn| {
            records(
                conn,
                "SELECT data FROM webhook_endpoints ORDER BY created_at, id",
                [],
            )
        })
        .await
    }

    fn outbox(&self) -> Option<&dyn crate::store::Outbox> {
        Some(self)
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let (done, outcome) = tokio::sync::oneshot::channel();
        lock(&self.inner.queued).push(QueuedCommit { writes, done });
        let inner = self.inner.clone();
        blocking(move || {
            inner.commit_queued();
            Ok(())
        })
        .await?;
        outcome
            .await
            .unwrap_or_else(|_| Err(StoreError::Fault("commit lost".into())))
    }
}
