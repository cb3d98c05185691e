//! The store: the operations the domain needs, as a trait with three implementations (and
//! [`NoStore`] for a function that needs none).
//!
//! Reads return records with a `version`; every write names the version it read
//! ([`Expect`]) and a batch of writes commits all-or-nothing. That is exactly what
//! DynamoDB gives with conditional writes in one `TransactWriteItems`, what SQLite gives
//! in one immediate transaction, and what the in-memory store gives under one lock. A lost race is [`StoreError::Conflict`]; the
//! caller re-reads and re-applies the domain rule, so the loser gets the same answer it
//! would have got had it come second.

pub mod dynamodb;
pub mod memory;
mod metered;
mod none;
pub mod outbox;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::clock::Millis;
use crate::domain::{
    Client, ClientState, Identifier, JwtTemplate, Session, SessionActivity, SessionStatus,
    SignInToken, User,
};
pub use crate::keyring::{KeyringRecord, PublicKeysRecord};
use crate::webhooks::{Event, WebhookEndpoint};

pub use dynamodb::DynamoDbStore;
pub use memory::MemoryStore;
pub use metered::MeteredStore;
pub use none::NoStore;
pub use outbox::{Delivery, Outbox, Room};
pub use sqlite::SqliteStore;

#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// A write's expectation did not hold: another request changed the record first.
    #[error("write conflict")]
    Conflict,
    /// The store did not answer in time (throttled or down); safe to retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else: corrupt data, I/O failure.
    #[error("store fault: {0}")]
    Fault(String),
}

/// What a write expects to find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The record must not exist yet.
    Absent,
    /// The record must still be at this version.
    Version(u64),
}

impl Expect {
    /// Whether a record stored at `current` (`None`: absent) is what this expects.
    pub fn holds_for(self, current: Option<u64>) -> bool {
        match (current, self) {
            (None, Expect::Absent) => true,
            (Some(v), Expect::Version(want)) => v == want,
            _ => false,
        }
    }

    /// The expectation for writing `new_version` over what was read at `new_version - 1`.
    pub fn for_next(new_version: u64) -> Self {
        if new_version <= 1 {
            Expect::Absent
        } else {
            Expect::Version(new_version - 1)
        }
    }
}

/// One conditional write. Records that are rewritten whole carry their new version; a
/// session is written whole only when it starts, then changed field by field.
#[derive(Clone, Debug)]
pub enum Write {
    User(User, Expect),
    Client(Client, Expect),
    /// A new session (and, on DynamoDB, its id pointer). The id must be free.
    NewSession(Session),
    /// Writes a session whole, stored or not, and forgets its last status write: no
    /// condition. Only the fixtures' seed (`crate::fixtures`) uses it, to put its sessions
    /// back as seeded; requests change a session field by field. The session must keep
    /// the client it was first stored under.
    ReplaceSession(Session),
    /// Moves a session's stored status from `from` to `to`, if it is still `from`. Only
    /// the status is a condition, so activity recorded meanwhile never makes it conflict.
    SessionStatus {
        client_id: String,
        id: String,
        from: SessionStatus,
        to: SessionStatus,
        at: Millis,
        /// Unique to this write. When a store call is retried after its answer was lost
        /// (DynamoDB's SDK retries time-outs), the retry finds its own write in place and
        /// succeeds, instead of reading as a race it lost to itself.
        write_id: String,
    },
    /// Records activity at `at` (`last_active_at`, and `abandon_at` slid to `abandon_at`),
    /// if the session is still signed in, not abandoned at `at`, and no later activity is
    /// recorded. A conflict here means someone else already recorded it or the session
    /// was signed out meanwhile.
    SessionActivity {
        client_id: String,
        id: String,
        at: Millis,
        abandon_at: Millis,
        /// Where it was seen, when the activity came from a device (not the Backend API).
        seen: Option<SessionActivity>,
    },
    /// Points the client at its last active session (touch) and sets its `updated_at`, if
    /// the client exists. No version: it never conflicts with another pointer move or a
    /// token rotation.
    LastActiveSession {
        client_id: String,
        session_id: String,
        at: Millis,
    },
    SignInToken(SignInToken, Expect),
    /// Takes an identifier (an email address, a username) for its user: it must be free.
    /// Written in the commit that gives the user the identifier, so of two users racing
    /// for one, one lands.
    Identifier(Identifier),
    /// Gives up an identifier its user no longer has. The caller read it as held by that
    /// user, whose record the same commit writes conditioned on its version.
    ReleaseIdentifier {
        key: String,
    },
    /// JWT templates are keyed by name, so a name can be taken only once.
    JwtTemplate(JwtTemplate, Expect),
    /// Deletes the template of this name, if it is still at this version.
    DeleteJwtTemplate {
        name: String,
        version: u64,
    },
    /// Deletes the user, if it is still at this version. Its sessions are not touched: the
    /// caller signs them out first (`app::users::delete`).
    DeleteUser {
        id: String,
        version: u64,
    },
    /// Records a webhook event beside the change it reports (the outbox on the embedded
    /// store; an item DynamoDB Streams hands to the delivery function). Its id is new, so
    /// it never conflicts, and a repeated write of it is the same event.
    Event(Event),
    WebhookEndpoint(WebhookEndpoint, Expect),
    /// Deletes the endpoint, if it is still at this version.
    DeleteWebhookEndpoint {
        id: String,
        version: u64,
    },
    /// Spends a one-time credential (a handshake nonce): holds only if `key` was never
    /// spent, or its record expired by `at`. The record is kept until `expires_at` (the
    /// credential's own expiry, after which it is refused anyway) and then swept.
    UseOnce {
        key: String,
        at: Millis,
        expires_at: Millis,
        /// Unique to this write: a store call retried after its answer was lost finds its
        /// own record and succeeds, rather than reading as a second use.
        write_id: String,
    },
}

impl Write {
    /// A write of a record read at `version - 1` (or a new record at version 1).
    pub fn client(c: Client) -> Self {
        let e = Expect::for_next(c.version);
        Write::Client(c, e)
    }
    pub fn user(u: User) -> Self {
        let e = Expect::for_next(u.version);
        Write::User(u, e)
    }
    pub fn sign_in_token(t: SignInToken) -> Self {
        let e = Expect::for_next(t.version);
        Write::SignInToken(t, e)
    }
    pub fn webhook_endpoint(e: WebhookEndpoint) -> Self {
        let x = Expect::for_next(e.version);
        Write::WebhookEndpoint(e, x)
    }
    pub fn jwt_template(t: JwtTemplate) -> Self {
        let e = Expect::for_next(t.version);
        Write::JwtTemplate(t, e)
    }
    /// `read` moved to status `to` at `at`, conditioned on the status it was read with.
    pub fn session_status(read: &Session, to: SessionStatus, at: Millis) -> Self {
        Write::SessionStatus {
            client_id: read.client_id.clone(),
            id: read.id.clone(),
            from: read.status,
            to,
            at,
            write_id: crate::ids::new_id("write"),
        }
    }
    /// Spends the one-time credential `key`, valid until `expires_at`, at `at`.
    pub fn use_once(key: String, at: Millis, expires_at: Millis) -> Self {
        Write::UseOnce {
            key,
            at,
            expires_at,
            write_id: crate::ids::new_id("write"),
        }
    }
    /// Makes `key` spendable again: its record expired since forever. Only the fixtures'
    /// seed writes it (their fixed handshake nonce is played again and again).
    pub fn forget_use(key: String) -> Self {
        Write::UseOnce {
            key,
            at: Millis::MAX,
            expires_at: 0,
            write_id: crate::ids::new_id("write"),
        }
    }
    /// The activity of `next` (from [`Session::with_activity`]).
    pub fn session_activity(next: &Session) -> Self {
        Write::SessionActivity {
            client_id: next.client_id.clone(),
            id: next.id.clone(),
            at: next.last_active_at,
            abandon_at: next.abandon_at,
            seen: next.latest_activity.clone(),
        }
    }
}

/// Which sessions the Backend API lists. Status filtering happens above the store,
/// because a status depends on the clock.
#[derive(Clone, Debug, Default)]
pub struct SessionFilter {
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    /// Only this many, the newest: the store reads no more (a user's sessions across
    /// devices are not bounded otherwise).
    pub newest: Option<usize>,
}

impl SessionFilter {
    pub fn matches(&self, s: &Session) -> bool {
        self.client_id.as_ref().is_none_or(|c| &s.client_id == c)
            && self.user_id.as_ref().is_none_or(|u| &s.user_id == u)
    }

    /// What every store answers for `list_sessions`: the matching sessions, newest first
    /// (ties broken by id, so pages are stable).
    pub fn select(&self, sessions: impl IntoIterator<Item = Session>) -> Vec<Session> {
        let mut out: Vec<Session> = sessions.into_iter().filter(|s| self.matches(s)).collect();
        out.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        if let Some(newest) = self.newest {
            out.truncate(newest);
        }
        out
    }
}

#[async_trait]
pub trait Store: Send + Sync {
    /// The keyring, private material sealed (strongly consistent).
    async fn keyring(&self) -> Result<Option<KeyringRecord>, StoreError>;
    /// The keyring's public half, which the JWKS function reads.
    async fn public_keys(&self) -> Result<Option<PublicKeysRecord>, StoreError>;
    /// Stores `keyring` and its public half together, if the stored keyring is as
    /// `expect` says (`Absent` for the first, else the version it was read at).
    async fn put_keyring(&self, keyring: KeyringRecord, expect: Expect) -> Result<(), StoreError>;

    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError>;
    /// Users by id, to read: unknown ids are left out. Shared rather than copied, since
    /// every client answer reads its users and none changes them (the in-memory store
    /// hands out the records it holds).
    async fn get_users(&self, ids: &[String]) -> Result<Vec<Arc<User>>, StoreError>;
    async fn get_sign_in_token(&self, ticket_hash: &str)
        -> Result<Option<SignInToken>, StoreError>;
    /// Who holds the identifier of this key (`domain::identifier`), if anyone.
    async fn get_identifier(&self, key: &str) -> Result<Option<Identifier>, StoreError>;
    /// A client and all its sessions, oldest first.
    async fn get_client(&self, id: &str) -> Result<Option<ClientState>, StoreError>;
    async fn get_session(&self, id: &str) -> Result<Option<Session>, StoreError>;
    /// Sessions matching `filter`, newest first.
    async fn list_sessions(&self, filter: &SessionFilter) -> Result<Vec<Session>, StoreError>;

    async fn get_jwt_template(&self, name: &str) -> Result<Option<JwtTemplate>, StoreError>;
    /// Every template, oldest first.
    async fn list_jwt_templates(&self) -> Result<Vec<JwtTemplate>, StoreError>;

    /// Every webhook endpoint, oldest first.
    async fn list_webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, StoreError>;

    /// The outbox webhook events wait in, on a store that delivers them itself (the
    /// embedded ones); `None` where something else does (DynamoDB Streams).
    fn outbox(&self) -> Option<&dyn Outbox> {
        None
    }

    /// Applies every write or none: all expectations are checked first.
    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError>;

    /// Makes everything committed durable, before a process exits.
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
