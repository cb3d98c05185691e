//! What only the embedded store's SQLite database does (the store contract it shares with
//! the others is `store_contract`): several stores (processes) on one file, sweeping
//! expired records, migrating a JSON data file of an earlier version, online backups.

use std::sync::Arc;

use serde_json::json;
use shared::domain::{
    Client, Lifetimes, NewUser, Session, SessionStatus, SignInToken, SignInTokenStatus, User,
};
use shared::store::sqlite::{legacy, RETENTION_MS};
use shared::store::{SessionFilter, SqliteStore, Store, StoreError, Write};
use testkit::app::*;
use testkit::stores::TempDatabase;

const LIFE: Lifetimes = Lifetimes {
    session_max_ms: 7 * 86_400_000,
    inactivity_ms: 30 * 86_400_000,
    activity_interval_ms: 3_600_000,
};
const DAY_MS: i64 = 86_400_000;

fn client(now: i64, anonymous_for: Option<i64>) -> Client {
    Client {
        id: shared::ids::new_id("client"),
        rotating_token: shared::ids::new_secret(),
        last_active_session_id: None,
        created_at: now,
        updated_at: now,
        expires_at: now + 365 * DAY_MS,
        anonymous_until: anonymous_for.map(|ms| now + ms),
        sign_in: None,
        sign_up: None,
        version: 1,
    }
}

fn user(now: i64) -> User {
    User::create(
        NewUser {
            first_name: Some("Ada".into()),
            ..NewUser::default()
        },
        now,
    )
}

fn ticket(now: i64, hash: &str) -> SignInToken {
    SignInToken {
        id: shared::ids::new_id("sit"),
        user_id: "user_1".into(),
        ticket_hash: hash.into(),
        status: SignInTokenStatus::Pending,
        created_at: now,
        updated_at: now,
        expires_at: now + 60_000,
        version: 1,
        redeemed: None,
    }
}

/// Two stores on one file stand for two processes: each sees what the other committed,
/// and a write based on a stale read loses to the other's, as on DynamoDB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_see_each_other_and_conflict() {
    let db = TempDatabase::new();
    let (a, b) = (db.open(), db.open());
    let u = user(START_MS);
    a.commit(vec![Write::user(u.clone())]).await.unwrap();
    assert_eq!(b.get_user(&u.id).await.unwrap(), Some(u.clone()));

    // Both read version 1; the first to commit version 2 wins, the other conflicts.
    let mut first = u.clone();
    first.version = 2;
    first.first_name = Some("Grace".into());
    let mut second = u.clone();
    second.version = 2;
    second.first_name = Some("Edsger".into());
    b.commit(vec![Write::user(first.clone())]).await.unwrap();
    assert!(matches!(
        a.commit(vec![Write::user(second)]).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(a.get_user(&u.id).await.unwrap(), Some(first));

    // Many concurrent writers on both: each new record lands once, none is lost.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store: Arc<SqliteStore> = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let c = client(START_MS + i, None);
            let s = Session::start(&c.id, "user_1", START_MS + i, LIFE);
            store
                .commit(vec![Write::client(c), Write::NewSession(s.clone())])
                .await
                .map(|_| s.id)
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().unwrap());
    }
    for id in &ids {
        assert!(a.get_session(id).await.unwrap().is_some());
        assert!(b.get_session(id).await.unwrap().is_some());
    }
}

/// Records expired for longer than the retention are deleted, in batches, and nothing
/// else: not a record still live, not one expired within the retention.
#[tokio::test]
async fn the_sweep_deletes_only_records_expired_past_the_retention() {
    let db = TempDatabase::new();
    let store = db.open();
    let now = START_MS + 400 * DAY_MS;
    let long_ago = now - LIFE.session_max_ms - RETENTION_MS - 10_000;
    let recently = now - LIFE.session_max_ms - 1;

    // More old sessions than one batch deletes.
    let old_client = client(long_ago, None);
    let mut writes = vec![Write::client(old_client.clone())];
    for i in 0..1200 {
        writes.push(Write::NewSession(Session::start(
            &old_client.id,
            "user_1",
            long_ago + i,
            LIFE,
        )));
    }
    store.commit(writes).await.unwrap();
    let recent = Session::start(&old_client.id, "user_1", recently, LIFE);
    let live = Session::start(&old_client.id, "user_1", now, LIFE);
    let gone_anonymous = client(now - 2 * RETENTION_MS, Some(1000));
    let kept_anonymous = client(now - 1000, Some(DAY_MS));
    let old_ticket = ticket(now - 2 * RETENTION_MS, &"a".repeat(64));
    let new_ticket = ticket(now, &"b".repeat(64));
    store
        .commit(vec![
            Write::NewSession(recent.clone()),
            Write::NewSession(live.clone()),
            Write::client(gone_anonymous.clone()),
            Write::client(kept_anonymous.clone()),
            Write::sign_in_token(old_ticket.clone()),
            Write::sign_in_token(new_ticket.clone()),
        ])
        .await
        .unwrap();

    // 1,200 sessions, one anonymous client and one ticket.
    assert_eq!(store.sweep_expired(now).await.unwrap(), 1202);
    let state = store.get_client(&old_client.id).await.unwrap().unwrap();
    let left: Vec<&str> = state.sessions.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(left, [recent.id.as_str(), live.id.as_str()]);
    assert!(store
        .get_client(&gone_anonymous.id)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .get_client(&kept_anonymous.id)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .get_sign_in_token(&old_ticket.ticket_hash)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .get_sign_in_token(&new_ticket.ticket_hash)
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.sweep_expired(now).await.unwrap(), 0);
}

/// A JSON data file of an earlier version is refused by name, with the command that
/// migrates it; the migration carries every record over and leaves the JSON file as it was.
#[tokio::test]
async fn a_json_data_file_is_refused_then_migrated_whole() {
    let db = TempDatabase::new();
    let json_file = db.path().with_extension("json");
    let u = user(START_MS);
    let c = client(START_MS, None);
    let s = Session::start(&c.id, &u.id, START_MS, LIFE);
    let t = ticket(START_MS, &"c".repeat(64));
    let keyring = {
        // A keyring as the first start writes it.
        let memory: Arc<dyn Store> = Arc::new(shared::store::MemoryStore::new());
        let app = TestApp::with_store(test_config(&[]), memory.clone()).await;
        drop(app);
        memory.keyring().await.unwrap().unwrap()
    };
    let data = json!({
        "keyring": keyring,
        "users": { &u.id: u },
        "clients": { &c.id: c },
        "sessions": { &s.id: s },
        "sign_in_tokens": { &t.ticket_hash: t },
        "jwt_templates": {},
    });
    let bytes = serde_json::to_vec_pretty(&data).unwrap();
    std::fs::write(&json_file, &bytes).unwrap();

    let refused = SqliteStore::open(&json_file)
        .err()
        .expect("refused")
        .to_string();
    assert!(refused.contains("not a SQLite database"), "{refused}");
    assert!(refused.contains("local-api migrate-data-file"), "{refused}");
    assert_eq!(std::fs::read(&json_file).unwrap(), bytes, "left as it was");

    let migrated = legacy::migrate_json_data_file(&json_file, &db.path()).unwrap();
    assert_eq!(
        migrated.to_string(),
        "1 users, 1 clients, 1 sessions, 1 sign-in tokens, 0 JWT templates, the keyring"
    );
    let store = db.open();
    assert_eq!(store.get_user(&u.id).await.unwrap(), Some(u));
    assert_eq!(store.get_session(&s.id).await.unwrap(), Some(s.clone()));
    let state = store.get_client(&c.id).await.unwrap().unwrap();
    assert_eq!((state.client, state.sessions), (c, vec![s]));
    assert_eq!(
        store.get_sign_in_token(&t.ticket_hash).await.unwrap(),
        Some(t)
    );
    assert_eq!(store.keyring().await.unwrap(), Some(keyring));
    assert_eq!(std::fs::read(&json_file).unwrap(), bytes, "left as it was");

    // Never over an existing database.
    let again = legacy::migrate_json_data_file(&json_file, &db.path())
        .expect_err("refused")
        .to_string();
    assert!(again.contains("exists already"), "{again}");
}

/// An online backup is a whole database, private, taken while the store is open and being
/// written; a store opened on it serves what was committed before the backup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_backup_is_a_whole_private_database() {
    let db = TempDatabase::new();
    let store = db.open();
    let u = user(START_MS);
    store.commit(vec![Write::user(u.clone())]).await.unwrap();
    let backup = db.path().with_extension("backup");
    store.backup_to(&backup).await.unwrap();
    let later = user(START_MS + 1);
    store
        .commit(vec![Write::user(later.clone())])
        .await
        .unwrap();

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let restored = SqliteStore::open(&backup).unwrap();
    assert_eq!(restored.get_user(&u.id).await.unwrap(), Some(u));
    assert_eq!(restored.get_user(&later.id).await.unwrap(), None);
}

/// The backup is never readable by others, not even while it is written: the file is
/// 0600 from the first moment it exists (watched from another thread throughout a backup
/// of a database of some size), and a path that exists is left as it was.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_is_private_from_its_first_byte() {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicBool, Ordering};

    let db = TempDatabase::new();
    let store = db.open();
    for n in 0..20 {
        let users = (0..200).map(|i| Write::user(user(START_MS + n * 200 + i)));
        store.commit(users.collect()).await.unwrap();
    }
    let backup = db.path().with_extension("watched-backup");
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (backup, done) = (backup.clone(), done.clone());
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !done.load(Ordering::Acquire) {
                if let Ok(meta) = std::fs::metadata(&backup) {
                    seen.push((meta.permissions().mode() & 0o777, meta.len()));
                }
            }
            seen
        })
    };
    store.backup_to(&backup).await.unwrap();
    done.store(true, Ordering::Release);
    let seen = watcher.join().unwrap();
    assert!(!seen.is_empty(), "the watcher saw the file");
    assert!(
        seen.iter().all(|(mode, _)| *mode == 0o600),
        "modes seen while written: {:?}",
        seen.iter()
            .map(|(m, _)| format!("{m:o}"))
            .collect::<std::collections::BTreeSet<_>>()
    );
    let size = std::fs::metadata(&backup).unwrap().len();
    assert!(size > 100_000, "a backup of some size ({size} bytes)");

    // An existing path is refused and not touched.
    let existing = db.path().with_extension("existing");
    std::fs::write(&existing, b"not a backup").unwrap();
    let refused = store
        .backup_to(&existing)
        .await
        .expect_err("refused")
        .to_string();
    assert!(refused.contains("exists already"), "{refused}");
    assert_eq!(std::fs::read(&existing).unwrap(), b"not a backup");
}

/// A database written by a newer version (a higher schema number) is refused, not
/// misread.
#[tokio::test]
async fn a_database_of_a_newer_schema_is_refused() {
    let db = TempDatabase::new();
    drop(db.open());
    rusqlite::Connection::open(db.path())
        .and_then(|c| c.pragma_update(None, "user_version", 99))
        .unwrap();
    let refused = SqliteStore::open(&db.path())
        .err()
        .expect("refused")
        .to_string();
    assert!(refused.contains("newer version"), "{refused}");
}

/// A database of schema 1 (`sessions` a rowid table) is upgraded when opened: the same
/// sessions, found by id, client and user, now in a `WITHOUT ROWID` table with its indexes,
/// and written to as before.
#[tokio::test]
async fn a_database_of_schema_1_is_upgraded_when_opened() {
    let db = TempDatabase::new();
    let (c, u) = (client(START_MS, None), user(START_MS));
    let sessions: Vec<Session> = (0..3)
        .map(|i| Session::start(&c.id, &u.id, START_MS + i, LIFE))
        .collect();
    {
        let store = db.open();
        let mut writes = vec![Write::user(u.clone()), Write::client(c.clone())];
        writes.extend(sessions.iter().cloned().map(Write::NewSession));
        store.commit(writes).await.unwrap();
    }
    // Schema 1's sessions table, as version 1 created it, holding the same rows.
    rusqlite::Connection::open(db.path())
        .and_then(|conn| {
            conn.execute_batch(
                "BEGIN;
                 CREATE TABLE sessions_v1 (
                     id TEXT PRIMARY KEY,
                     client_id TEXT NOT NULL,
                     user_id TEXT NOT NULL,
                     created_at INTEGER NOT NULL,
                     expire_at INTEGER NOT NULL,
                     status_write TEXT,
                     data TEXT NOT NULL
                 );
                 INSERT INTO sessions_v1 SELECT * FROM sessions;
                 DROP TABLE sessions;
                 ALTER TABLE sessions_v1 RENAME TO sessions;
                 CREATE INDEX sessions_by_client ON sessions (client_id, created_at, id);
                 CREATE INDEX sessions_by_user ON sessions (user_id, created_at, id);
                 CREATE INDEX sessions_by_expire_at ON sessions (expire_at);
                 PRAGMA user_version = 1;
                 COMMIT;",
            )
        })
        .unwrap();
    let schema = |what: &str| -> String {
        rusqlite::Connection::open(db.path())
            .and_then(|conn| conn.query_row(what, [], |r| r.get::<_, String>(0)))
            .unwrap()
    };
    assert!(!schema("SELECT sql FROM sqlite_master WHERE name = 'sessions'").contains("WITHOUT"));

    let store = db.open();
    assert!(
        schema("SELECT sql FROM sqlite_master WHERE name = 'sessions'").ends_with("WITHOUT ROWID")
    );
    assert_eq!(
        schema(
            "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_master \
             WHERE tbl_name = 'sessions' AND type = 'index' ORDER BY name)"
        ),
        "sessions_by_client sessions_by_expire_at sessions_by_user"
    );
    assert_eq!(
        schema("SELECT CAST(user_version AS TEXT) FROM pragma_user_version"),
        "3"
    );
    for s in &sessions {
        assert_eq!(store.get_session(&s.id).await.unwrap().as_ref(), Some(s));
    }
    let by_client = SessionFilter {
        client_id: Some(c.id.clone()),
        user_id: None,
        ..SessionFilter::default()
    };
    let by_user = SessionFilter {
        client_id: None,
        user_id: Some(u.id.clone()),
        ..SessionFilter::default()
    };
    assert_eq!(store.list_sessions(&by_client).await.unwrap().len(), 3);
    assert_eq!(store.list_sessions(&by_user).await.unwrap().len(), 3);
    assert_eq!(
        store.get_client(&c.id).await.unwrap().unwrap().sessions,
        sessions
    );

    // Written to as before: a status change, then a session that could not be added twice.
    store
        .commit(vec![Write::SessionStatus {
            client_id: c.id.clone(),
            id: sessions[0].id.clone(),
            from: SessionStatus::Active,
            to: SessionStatus::Ended,
            at: START_MS + 10,
            write_id: "write_1".into(),
        }])
        .await
        .unwrap();
    let ended = store.get_session(&sessions[0].id).await.unwrap().unwrap();
    assert_eq!(ended.status, SessionStatus::Ended);
    assert!(matches!(
        store
            .commit(vec![Write::NewSession(sessions[1].clone())])
            .await,
        Err(StoreError::Conflict)
    ));
    // Opened again, it is left as it is.
    drop(store);
    assert_eq!(
        db.open()
            .get_session(&sessions[2].id)
            .await
            .unwrap()
            .as_ref(),
        Some(&sessions[2])
    );
}

/// A database of schema 2 (before identifiers were indexed) gets its users' email
/// addresses and usernames indexed when opened: they sign in by them; of two users who
/// shared an address (nothing prevented it then), the older keeps it.
#[tokio::test]
async fn a_database_of_schema_2_gets_its_identifiers_indexed_when_opened() {
    let db = TempDatabase::new();
    let with = |email: &str, username: Option<&str>, at: i64| {
        User::create(
            NewUser {
                email_addresses: vec![email.into()],
                username: username.map(str::to_string),
                ..NewUser::default()
            },
            at,
        )
    };
    let (older, newer) = (
        with("Ada@Example.com", Some("ada_l"), START_MS),
        with("ada@example.com", None, START_MS + 1),
    );
    {
        let store = db.open();
        // Written as the users of schema 2 were: no identifier records.
        store
            .commit(vec![Write::user(older.clone()), Write::user(newer.clone())])
            .await
            .unwrap();
    }
    rusqlite::Connection::open(db.path())
        .and_then(|conn| conn.execute_batch("DROP TABLE identifiers; PRAGMA user_version = 2;"))
        .unwrap();
    let store = db.open();
    let holder = |key: &'static str| {
        let store = &store;
        async move { store.get_identifier(key).await.unwrap().map(|i| i.user_id) }
    };
    assert_eq!(
        holder("email:ada@example.com").await,
        Some(older.id.clone())
    );
    assert_eq!(holder("username:ada_l").await, Some(older.id.clone()));
}
