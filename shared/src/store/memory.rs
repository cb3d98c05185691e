//! The in-memory store: everything in memory under one lock, nothing kept when the
//! process ends (`local-api --in-memory`, and the tests' in-process app).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    Delivery, Expect, KeyringRecord, Outbox, PublicKeysRecord, Room, SessionFilter, Store,
    StoreError, Write,
};
use crate::clock::Millis;
use crate::domain::{Client, ClientState, Identifier, JwtTemplate, Session, SignInToken, User};
use crate::webhooks::{Event, WebhookEndpoint};

#[derive(Default)]
struct Data {
    keyring: Option<KeyringRecord>,
    users: BTreeMap<String, Arc<User>>,
    clients: BTreeMap<String, Client>,
    sessions: BTreeMap<String, Session>,
    /// Keyed by ticket hash.
    sign_in_tokens: BTreeMap<String, SignInToken>,
    /// Keyed by name.
    jwt_templates: BTreeMap<String, JwtTemplate>,
    /// Identifier key → the user holding it.
    identifiers: HashMap<String, String>,
    /// Derived index: a client's session ids, oldest first.
    sessions_by_client: HashMap<String, Vec<String>>,
    /// The last status write of each session, by write id, so a repeated write is
    /// recognised as itself (the DynamoDB store keeps it as an item attribute).
    status_writes: HashMap<String, String>,
    webhook_endpoints: BTreeMap<String, WebhookEndpoint>,
    /// Events recorded and not yet fanned out to deliveries, in order, and their ids (an
    /// event recorded twice is kept once, as DynamoDB's conditional put keeps it; a set,
    /// since thousands may wait between two rounds of the outbox worker).
    events: Vec<Event>,
    event_ids: HashSet<String>,
    /// Pending and dead-lettered deliveries, by a sequence number (their order).
    deliveries: BTreeMap<i64, MemoryDelivery>,
    next_delivery: i64,
    /// Spent one-time credentials: key → (kept until, the write that spent it).
    used_once: HashMap<String, (Millis, String)>,
    /// How many were kept after the last sweep of expired ones.
    used_once_swept_at: usize,
}

struct MemoryDelivery {
    endpoint_id: String,
    event: Event,
    attempts: u32,
    next_at: Millis,
    lease_until: Millis,
    dead: bool,
}

impl Data {
    /// What DynamoDB's TTL does for the other store: never-signed-in clients past their
    /// lifetime are dropped, here whenever a client is created (`now` is its creation).
    fn forget_anonymous_clients(&mut self, now: i64) {
        let sessions = &self.sessions_by_client;
        self.clients
            .retain(|id, c| !c.anonymous_expired(now) || sessions.contains_key(id));
    }

    fn check(&self, write: &Write) -> bool {
        match write {
            Write::User(u, e) => e.holds_for(self.users.get(&u.id).map(|x| x.version)),
            Write::Client(c, e) => e.holds_for(self.clients.get(&c.id).map(|x| x.version)),
            Write::NewSession(s) => !self.sessions.contains_key(&s.id),
            Write::ReplaceSession(_) => true,
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
            Write::SignInToken(t, e) => {
                e.holds_for(self.sign_in_tokens.get(&t.ticket_hash).map(|x| x.version))
            }
            Write::JwtTemplate(t, e) => {
                e.holds_for(self.jwt_templates.get(&t.name).map(|x| x.version))
            }
            Write::Identifier(i) => !self.identifiers.contains_key(&i.key),
            Write::ReleaseIdentifier { key } => self.identifiers.contains_key(key),
            Write::DeleteJwtTemplate { name, version } => {
                Expect::Version(*version).holds_for(self.jwt_templates.get(name).map(|x| x.version))
            }
            Write::DeleteUser { id, version } => {
                Expect::Version(*version).holds_for(self.users.get(id).map(|x| x.version))
            }
            Write::Event(_) => true,
            Write::WebhookEndpoint(e, x) => {
                x.holds_for(self.webhook_endpoints.get(&e.id).map(|w| w.version))
            }
            Write::DeleteWebhookEndpoint { id, version } => Expect::Version(*version)
                .holds_for(self.webhook_endpoints.get(id).map(|w| w.version)),
            Write::UseOnce {
                key, at, write_id, ..
            } => self
                .used_once
                .get(key)
                .is_none_or(|(until, by)| until <= at || by == write_id),
        }
    }

    fn apply(&mut self, write: Write) {
        match write {
            Write::User(u, _) => {
                self.users.insert(u.id.clone(), Arc::new(u));
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
            Write::ReplaceSession(s) => {
                self.status_writes.remove(&s.id);
                if !self.sessions.contains_key(&s.id) {
                    self.sessions_by_client
                        .entry(s.client_id.clone())
                        .or_default()
                        .push(s.id.clone());
                }
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
                id,
                at,
                abandon_at,
                seen,
                ..
            } => {
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.last_active_at = at;
                    s.abandon_at = abandon_at;
                    s.updated_at = at;
                    if seen.is_some() {
                        s.latest_activity = seen;
                    }
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
            Write::Identifier(i) => {
                self.identifiers.insert(i.key, i.user_id);
            }
            Write::ReleaseIdentifier { key } => {
                self.identifiers.remove(&key);
            }
            Write::DeleteJwtTemplate { name, .. } => {
                self.jwt_templates.remove(&name);
            }
            Write::DeleteUser { id, .. } => {
                self.users.remove(&id);
            }
            Write::Event(e) => {
                if self.event_ids.insert(e.id.clone()) {
                    self.events.push(e);
                }
            }
            Write::WebhookEndpoint(e, _) => {
                self.webhook_endpoints.insert(e.id.clone(), e);
            }
            Write::DeleteWebhookEndpoint { id, .. } => {
                self.webhook_endpoints.remove(&id);
            }
            Write::UseOnce {
                key,
                at,
                expires_at,
                write_id,
            } => {
                // Expired records go when the set has doubled since the last sweep, so
                // each spend costs O(1) amortised and the set holds only live ones.
                if self.used_once.len() >= self.used_once_swept_at.max(1024) * 2 {
                    self.used_once.retain(|_, (until, _)| *until > at);
                    self.used_once_swept_at = self.used_once.len();
                }
                self.used_once.insert(key, (expires_at, write_id));
            }
        }
    }

    /// Turns recorded events into deliveries, one per endpoint that wants each.
    fn fan_out(&mut self) {
        self.event_ids.clear();
        for event in std::mem::take(&mut self.events) {
            for endpoint in self.webhook_endpoints.values() {
                if endpoint.wants(event.kind) {
                    self.next_delivery += 1;
                    self.deliveries.insert(
                        self.next_delivery,
                        MemoryDelivery {
                            endpoint_id: endpoint.id.clone(),
                            event: event.clone(),
                            attempts: 0,
                            next_at: event.created_at,
                            lease_until: 0,
                            dead: false,
                        },
                    );
                }
            }
        }
    }
}

pub struct MemoryStore {
    data: Mutex<Data>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self {
            data: Mutex::new(Data::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Data> {
        // A panic while holding the lock cannot leave a half-applied commit (writes are
        // checked before any is applied), so a poisoned lock is safe to keep using.
        self.data
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn keyring(&self) -> Result<Option<KeyringRecord>, StoreError> {
        Ok(self.lock().keyring.clone())
    }

    async fn public_keys(&self) -> Result<Option<PublicKeysRecord>, StoreError> {
        Ok(self.lock().keyring.as_ref().map(KeyringRecord::public_view))
    }

    async fn put_keyring(&self, keyring: KeyringRecord, expect: Expect) -> Result<(), StoreError> {
        let mut data = self.lock();
        if !expect.holds_for(data.keyring.as_ref().map(|k| k.version)) {
            return Err(StoreError::Conflict);
        }
        data.keyring = Some(keyring);
        Ok(())
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        Ok(self.lock().users.get(id).map(|u| User::clone(u)))
    }

    async fn get_users(&self, ids: &[String]) -> Result<Vec<Arc<User>>, StoreError> {
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

    async fn get_identifier(&self, key: &str) -> Result<Option<Identifier>, StoreError> {
        Ok(self.lock().identifiers.get(key).map(|user_id| Identifier {
            key: key.to_string(),
            user_id: user_id.clone(),
        }))
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

    async fn list_webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let mut all: Vec<WebhookEndpoint> =
            self.lock().webhook_endpoints.values().cloned().collect();
        all.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(all)
    }

    fn outbox(&self) -> Option<&dyn Outbox> {
        Some(self)
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let mut data = self.lock();
        if !writes.iter().all(|w| data.check(w)) {
            return Err(StoreError::Conflict);
        }
        writes.into_iter().for_each(|w| data.apply(w));
        Ok(())
    }
}

#[async_trait]
impl Outbox for MemoryStore {
    async fn lease_due(
        &self,
        now: Millis,
        lease_until: Millis,
        room: &Room,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut data = self.lock();
        data.fan_out();
        let mut heads = std::collections::HashSet::new();
        let mut taken: HashMap<String, usize> = HashMap::new();
        let mut due = Vec::new();
        for (id, d) in data.deliveries.iter_mut() {
            if d.dead || !heads.insert((d.endpoint_id.clone(), d.event.key.clone())) {
                continue;
            }
            let of_endpoint = taken.entry(d.endpoint_id.clone()).or_default();
            if due.len() < room.total
                && *of_endpoint < room.free(&d.endpoint_id)
                && d.next_at <= now
                && d.lease_until <= now
            {
                *of_endpoint += 1;
                d.lease_until = lease_until;
                due.push(Delivery {
                    id: *id,
                    endpoint_id: d.endpoint_id.clone(),
                    event: d.event.clone(),
                    attempts: d.attempts,
                });
            }
        }
        Ok(due)
    }

    async fn delivered(&self, id: i64) -> Result<(), StoreError> {
        self.lock().deliveries.remove(&id);
        Ok(())
    }

    async fn failed(
        &self,
        id: i64,
        attempts: u32,
        next_at: Option<Millis>,
        _error: &str,
    ) -> Result<(), StoreError> {
        if let Some(d) = self.lock().deliveries.get_mut(&id) {
            d.attempts = attempts;
            d.lease_until = 0;
            match next_at {
                Some(at) => d.next_at = at,
                None => d.dead = true,
            }
        }
        Ok(())
    }
}
