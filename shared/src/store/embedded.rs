//! The embedded store: everything in memory under one lock, optionally persisted to a
//! JSON data file after every commit (written to a temporary file, then renamed, so the
//! file is always a whole snapshot).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Expect, KeyringRecord, PublicKeysRecord, SessionFilter, Store, StoreError, Write};
use crate::domain::{Client, ClientState, JwtTemplate, Session, SignInToken, User};

#[derive(Clone, Default, Serialize, Deserialize)]
struct Data {
    /// The keyring. (Data files of earlier builds have a `keys` record instead, which is
    /// no longer read: the first start writes a keyring.)
    #[serde(default)]
    keyring: Option<KeyringRecord>,
    users: BTreeMap<String, User>,
    clients: BTreeMap<String, Client>,
    sessions: BTreeMap<String, Session>,
    /// Keyed by ticket hash.
    sign_in_tokens: BTreeMap<String, SignInToken>,
    /// Keyed by name.
    #[serde(default)]
    jwt_templates: BTreeMap<String, JwtTemplate>,
    /// Derived index: a client's session ids, oldest first. Rebuilt on load.
    #[serde(skip)]
    sessions_by_client: HashMap<String, Vec<String>>,
    /// The last status write of each session, by write id, so a repeated write is
    /// recognised as itself (the DynamoDB store keeps it as an item attribute).
    #[serde(skip)]
    status_writes: HashMap<String, String>,
}

impl Data {
    fn rebuild_index(&mut self) {
        let mut sessions: Vec<&Session> = self.sessions.values().collect();
        sessions.sort_by_key(|s| (s.created_at, s.id.clone()));
        self.sessions_by_client.clear();
        for s in sessions {
            self.sessions_by_client
                .entry(s.client_id.clone())
                .or_default()
                .push(s.id.clone());
        }
    }

    /// What DynamoDB's TTL does for the other store: never-signed-in clients past their
    /// lifetime are dropped, here whenever a client is created (`now` is its creation).
    fn forget_anonymous_clients(&mut self, now: i64) {
        let sessions = &self.sessions_by_client;
        self.clients
            .retain(|id, c| !c.anonymous_expired(now) || sessions.contains_key(id));
    }

    fn version_matches(current: Option<u64>, expect: Expect) -> bool {
        match (current, expect) {
            (None, Expect::Absent) => true,
            (Some(v), Expect::Version(want)) => v == want,
            _ => false,
        }
    }

    fn check(&self, write: &Write) -> bool {
        match write {
            Write::User(u, e) => {
                Self::version_matches(self.users.get(&u.id).map(|x| x.version), *e)
            }
            Write::Client(c, e) => {
                Self::version_matches(self.clients.get(&c.id).map(|x| x.version), *e)
            }
            Write::NewSession(s) => !self.sessions.contains_key(&s.id),
            Write::SessionStatus {
                id, from, write_id, ..
            } => {
                self.sessions.get(id).is_some_and(|s| s.status == *from)
                    || self.status_writes.get(id) == Some(write_id)
            }
            Write::SessionActivity { id, at, .. } => self.sessions.get(id).is_some_and(|s| {
                s.status.is_signed_in() && s.last_active_at < *at && s.abandon_at > *at
            }),
            Write::LastActiveSession { client_id, .. } => self.clients.contains_key(client_id),
            Write::SignInToken(t, e) => Self::version_matches(
                self.sign_in_tokens.get(&t.ticket_hash).map(|x| x.version),
                *e,
            ),
            Write::JwtTemplate(t, e) => {
                Self::version_matches(self.jwt_templates.get(&t.name).map(|x| x.version), *e)
            }
            Write::DeleteJwtTemplate { name, version } => Self::version_matches(
                self.jwt_templates.get(name).map(|x| x.version),
                Expect::Version(*version),
            ),
        }
    }

    fn apply(&mut self, write: Write) {
        match write {
            Write::User(u, _) => {
                self.users.insert(u.id.clone(), u);
            }
            Write::Client(c, _) => {
                if !self.clients.contains_key(&c.id) {
                    self.forget_anonymous_clients(c.created_at);
                }
                self.clients.insert(c.id.clone(), c);
            }
            Write::NewSession(s) => {
                self.sessions_by_client
                    .entry(s.client_id.clone())
                    .or_default()
                    .push(s.id.clone());
                self.sessions.insert(s.id.clone(), s);
            }
            Write::SessionStatus {
                id,
                to,
                at,
                write_id,
                ..
            } => {
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.status = to;
                    s.updated_at = at;
                }
                self.status_writes.insert(id, write_id);
            }
            Write::SessionActivity {
                id, at, abandon_at, ..
            } => {
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.last_active_at = at;
                    s.abandon_at = abandon_at;
                    s.updated_at = at;
                }
            }
            Write::LastActiveSession {
                client_id,
                session_id,
                at,
            } => {
                if let Some(c) = self.clients.get_mut(&client_id) {
                    c.last_active_session_id = Some(session_id);
                    c.updated_at = at;
                }
            }
            Write::SignInToken(t, _) => {
                self.sign_in_tokens.insert(t.ticket_hash.clone(), t);
            }
            Write::JwtTemplate(t, _) => {
                self.jwt_templates.insert(t.name.clone(), t);
            }
            Write::DeleteJwtTemplate { name, .. } => {
                self.jwt_templates.remove(&name);
            }
        }
    }
}

pub struct EmbeddedStore {
    data: Mutex<Data>,
    file: Option<PathBuf>,
    /// Held while the store is open: a second process on the same data file (another
    /// server, or `local-api rotate-keys` beside a running server) would overwrite this
    /// one's writes, so it is refused instead.
    _lock: Option<std::fs::File>,
}

impl EmbeddedStore {
    /// A throwaway store that lives in memory only.
    pub fn in_memory() -> Self {
        Self {
            data: Mutex::new(Data::default()),
            file: None,
            _lock: None,
        }
    }

    /// A store persisted to `path`, loading what is there.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let lock = Self::lock_file(path)?;
        let mut data = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice::<Data>(&bytes).map_err(|e| {
                StoreError::Fault(format!("data file {} is not readable: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Data::default(),
            Err(e) => return Err(StoreError::Fault(format!("{}: {e}", path.display()))),
        };
        data.rebuild_index();
        Ok(Self {
            data: Mutex::new(data),
            file: Some(path.to_path_buf()),
            _lock: Some(lock),
        })
    }

    /// Takes the data file's lock (`<file>.lock`), or fails if another process holds it.
    fn lock_file(path: &Path) -> Result<std::fs::File, StoreError> {
        let lock_path = path.with_extension("lock");
        let fault = |e: std::io::Error| StoreError::Fault(format!("{}: {e}", lock_path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fault)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&lock_path).map_err(fault)?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Fault(format!(
                "data file {} is in use by another process (a running local-api?)",
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(fault(e)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Data> {
        // A panic while holding the lock cannot leave a half-applied commit (writes are
        // checked before any is applied), so a poisoned lock is safe to keep using.
        self.data
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn persist(path: &Path, data: &Data) -> Result<(), StoreError> {
        let fault = |e: std::io::Error| StoreError::Fault(format!("{}: {e}", path.display()));
        let bytes = serde_json::to_vec(data).map_err(|e| StoreError::Fault(e.to_string()))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fault)?;
        }
        let tmp = path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            // The file holds the instance's private key.
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(fault)?;
        std::io::Write::write_all(&mut file, &bytes).map_err(fault)?;
        file.sync_all().map_err(fault)?;
        std::fs::rename(&tmp, path).map_err(fault)
    }

    /// Applies writes to the locked data, persisting first when there is a file, so that a
    /// failed write to disk leaves memory unchanged too.
    fn commit_locked(&self, data: &mut Data, writes: Vec<Write>) -> Result<(), StoreError> {
        if !writes.iter().all(|w| data.check(w)) {
            return Err(StoreError::Conflict);
        }
        match &self.file {
            None => writes.into_iter().for_each(|w| data.apply(w)),
            Some(path) => {
                let mut next = data.clone();
                writes.into_iter().for_each(|w| next.apply(w));
                Self::persist(path, &next)?;
                *data = next;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn keyring(&self) -> Result<Option<KeyringRecord>, StoreError> {
        Ok(self.lock().keyring.clone())
    }

    async fn public_keys(&self) -> Result<Option<PublicKeysRecord>, StoreError> {
        Ok(self.lock().keyring.as_ref().map(KeyringRecord::public_view))
    }

    async fn put_keyring(&self, keyring: KeyringRecord, expect: Expect) -> Result<(), StoreError> {
        let mut data = self.lock();
        if !Data::version_matches(data.keyring.as_ref().map(|k| k.version), expect) {
            return Err(StoreError::Conflict);
        }
        match &self.file {
            None => data.keyring = Some(keyring),
            Some(path) => {
                let mut next = data.clone();
                next.keyring = Some(keyring);
                Self::persist(path, &next)?;
                *data = next;
            }
        }
        Ok(())
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        Ok(self.lock().users.get(id).cloned())
    }

    async fn get_users(&self, ids: &[String]) -> Result<Vec<User>, StoreError> {
        let data = self.lock();
        Ok(ids
            .iter()
            .filter_map(|id| data.users.get(id).cloned())
            .collect())
    }

    async fn get_sign_in_token(
        &self,
        ticket_hash: &str,
    ) -> Result<Option<SignInToken>, StoreError> {
        Ok(self.lock().sign_in_tokens.get(ticket_hash).cloned())
    }

    async fn get_client(&self, id: &str) -> Result<Option<ClientState>, StoreError> {
        let data = self.lock();
        let Some(client) = data.clients.get(id) else {
            return Ok(None);
        };
        let sessions = data
            .sessions_by_client
            .get(id)
            .map(|ids| {
                ids.iter()
                    .filter_map(|sid| data.sessions.get(sid).cloned())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(ClientState {
            client: client.clone(),
            sessions,
        }))
    }

    async fn get_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        Ok(self.lock().sessions.get(id).cloned())
    }

    async fn list_sessions(&self, filter: &SessionFilter) -> Result<Vec<Session>, StoreError> {
        Ok(filter.select(self.lock().sessions.values().cloned()))
    }

    async fn get_jwt_template(&self, name: &str) -> Result<Option<JwtTemplate>, StoreError> {
        Ok(self.lock().jwt_templates.get(name).cloned())
    }

    async fn list_jwt_templates(&self) -> Result<Vec<JwtTemplate>, StoreError> {
        let mut all: Vec<JwtTemplate> = self.lock().jwt_templates.values().cloned().collect();
        all.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(all)
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let mut data = self.lock();
        self.commit_locked(&mut data, writes)
    }

    /// Every commit is already on disk; writing the snapshot once more under the lock
    /// waits for any commit in progress and leaves a whole file behind.
    async fn flush(&self) -> Result<(), StoreError> {
        match &self.file {
            Some(path) => Self::persist(path, &self.lock()),
            None => Ok(()),
        }
    }
}
