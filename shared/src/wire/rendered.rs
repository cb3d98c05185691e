//! Rendered JSON kept for the next answer. Most of a session read's work is rendering
//! objects that did not change since the last answer: the user (the larger half of a
//! session's text) and the session itself. Each entry keeps the records it was rendered
//! from and is served only while the records just read from the store are **equal** to
//! them (and, for a session, its status and factor age as of now, its user's entry and its
//! token are the same): the store is read on every request as before, so a change shows
//! at once, and nothing rests on the records' version discipline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::value::RawValue;

use super::{public_user_data, rendered, session, user, Audience};
use crate::clock::Millis;
use crate::domain::{Session, SessionStatus, User};

/// At most this much rendered text per kind (a user with the largest metadata is ~25 KB, a
/// session of an ordinary user ~3.5 KB). When a new entry would pass it, a sixteenth of
/// the entries make room, taken in the map's own (arbitrary) order: bounded memory that
/// stays level, rather than a cache that empties and refills (a saw-tooth in the process's
/// memory), and no bookkeeping on the read path.
const MAX_BYTES: usize = 8 << 20;

/// A user as the Frontend API shows it in a session: `user` and `public_user_data`.
pub struct ShownUser {
    from: User,
    user: Box<RawValue>,
    public: Box<RawValue>,
}

impl ShownUser {
    fn of(u: &User) -> Self {
        Self {
            from: u.clone(),
            user: rendered(&user(u, Audience::Frontend)),
            public: rendered(&public_user_data(u)),
        }
    }

    pub fn user(&self) -> &RawValue {
        &self.user
    }

    pub fn public_user_data(&self) -> &RawValue {
        &self.public
    }

    fn bytes(&self) -> usize {
        self.user.get().len() + self.public.get().len()
    }
}

/// A Frontend API session rendered (`Client.Session-2`), with what it was rendered from.
pub struct ShownSession {
    from: Session,
    status: SessionStatus,
    factor_age: i64,
    user: Option<Arc<ShownUser>>,
    token: Option<Arc<RawValue>>,
    text: Box<RawValue>,
}

impl ShownSession {
    pub fn id(&self) -> &str {
        &self.from.id
    }

    pub fn text(&self) -> &RawValue {
        &self.text
    }

    fn shows(
        &self,
        s: &Session,
        user: Option<&Arc<ShownUser>>,
        token: Option<&Arc<RawValue>>,
        now: Millis,
    ) -> bool {
        self.status == s.status_at(now)
            && self.factor_age == factor_age(s, now)
            && same(self.user.as_ref(), user)
            && same(self.token.as_ref(), token)
            && self.from == *s
    }

    fn bytes(&self) -> usize {
        self.text.get().len()
    }
}

/// The factor age a session shows, in whole minutes: the only part of it that moves by
/// itself.
pub(super) fn factor_age(s: &Session, now: Millis) -> i64 {
    ((now - s.created_at) / 60_000).max(0)
}

fn same<T: ?Sized>(a: Option<&Arc<T>>, b: Option<&Arc<T>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// One kind of rendered object by id, bounded by [`MAX_BYTES`].
struct Entries<T> {
    by_id: HashMap<String, Arc<T>>,
    bytes: usize,
}

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Self {
            by_id: HashMap::new(),
            bytes: 0,
        }
    }
}

fn cached<T>(entries: &Mutex<Entries<T>>, id: &str, fresh: impl Fn(&T) -> bool) -> Option<Arc<T>> {
    let entries = entries.lock().ok()?;
    entries.by_id.get(id).filter(|e| fresh(e)).cloned()
}

fn keep<T>(entries: &Mutex<Entries<T>>, id: &str, entry: &Arc<T>, bytes: impl Fn(&T) -> usize) {
    let Ok(mut entries) = entries.lock() else {
        return;
    };
    let size = bytes(entry);
    while entries.bytes + size > MAX_BYTES && !entries.by_id.is_empty() {
        // One pass over the map frees a sixteenth of it: amortised O(1) per entry kept.
        let mut evict = entries.by_id.len() / 16 + 1;
        let mut freed = 0;
        entries.by_id.retain(|_, e| {
            if evict == 0 {
                return true;
            }
            evict -= 1;
            freed += bytes(e);
            false
        });
        entries.bytes -= freed;
    }
    entries.bytes += size;
    if let Some(old) = entries.by_id.insert(id.to_string(), Arc::clone(entry)) {
        entries.bytes -= bytes(&old);
    }
}

/// What this process rendered lately: users and sessions, by id.
#[derive(Default)]
pub struct RenderCache {
    users: Mutex<Entries<ShownUser>>,
    sessions: Mutex<Entries<ShownSession>>,
}

impl RenderCache {
    /// (entries, bytes of rendered text) of the users and of the sessions kept now.
    pub fn sizes(&self) -> [(usize, usize); 2] {
        fn size<T>(e: &Mutex<Entries<T>>) -> (usize, usize) {
            e.lock().map_or((0, 0), |e| (e.by_id.len(), e.bytes))
        }
        [size(&self.users), size(&self.sessions)]
    }

    /// `u` as sessions show it: from the cache when rendered from an equal record.
    pub fn user(&self, u: &User) -> Arc<ShownUser> {
        if let Some(hit) = cached(&self.users, &u.id, |e| e.from == *u) {
            return hit;
        }
        let shown = Arc::new(ShownUser::of(u));
        keep(&self.users, &u.id, &shown, ShownUser::bytes);
        shown
    }

    /// `s` as the Frontend API shows it at `now`, its user taken from `users` (the users of
    /// the answer's client, read from the store).
    pub fn session_of(
        &self,
        s: &Session,
        users: &HashMap<String, Arc<User>>,
        token: Option<&Arc<RawValue>>,
        now: Millis,
    ) -> Arc<ShownSession> {
        let user = users.get(&s.user_id).map(|u| self.user(u));
        self.session(s, user, token, now)
    }

    /// `s` as the Frontend API shows it at `now`, with its user and `last_active_token`:
    /// from the cache when rendered from an equal record, with the same user entry and
    /// token, and showing the same status and factor age.
    pub fn session(
        &self,
        s: &Session,
        user: Option<Arc<ShownUser>>,
        token: Option<&Arc<RawValue>>,
        now: Millis,
    ) -> Arc<ShownSession> {
        if let Some(hit) = cached(&self.sessions, &s.id, |e| {
            e.shows(s, user.as_ref(), token, now)
        }) {
            return hit;
        }
        let text = rendered(&session(s, user.as_deref(), now, token.map(|t| &**t)));
        let shown = Arc::new(ShownSession {
            from: s.clone(),
            status: s.status_at(now),
            factor_age: factor_age(s, now),
            user,
            token: token.cloned(),
            text,
        });
        keep(&self.sessions, &s.id, &shown, ShownSession::bytes);
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Lifetimes, NewUser};

    const MIN: Millis = 60_000;
    const LIFETIMES: Lifetimes = Lifetimes {
        session_max_ms: 7 * 24 * 60 * MIN,
        inactivity_ms: 60 * MIN,
        activity_interval_ms: MIN,
    };

    fn ada(now: Millis) -> User {
        let new = NewUser {
            first_name: Some("Ada".into()),
            ..NewUser::default()
        };
        User::create(new, now)
    }

    fn token(jwt: &str) -> Arc<RawValue> {
        super::super::rendered_token(jwt)
    }

    #[test]
    fn an_equal_record_is_served_from_the_cache_and_any_change_renders_again() {
        let cache = RenderCache::default();
        let user = ada(0);
        let first = cache.user(&user);
        assert!(Arc::ptr_eq(&first, &cache.user(&user.clone())));

        // A change the version does not show (a record written outside the usual path)
        // still renders again: entries are compared whole.
        let mut renamed = user.clone();
        renamed.first_name = Some("Grace".into());
        let second = cache.user(&renamed);
        assert!(second.user().get().contains("\"Grace\""));
        assert!(second.public_user_data().get().contains("\"Grace\""));
        assert!(!cache.user(&user).user().get().contains("\"Grace\""));
    }

    #[test]
    fn a_session_renders_again_when_its_record_user_token_status_or_factor_age_moves() {
        let cache = RenderCache::default();
        let user = cache.user(&ada(0));
        let session = Session::start("client_1", "user_1", 0, LIFETIMES);
        let jwt = token("a.b.c");
        let shown = cache.session(&session, Some(user.clone()), Some(&jwt), 1_000);
        let again = cache.session(&session, Some(user.clone()), Some(&jwt), 2_000);
        assert!(Arc::ptr_eq(&shown, &again), "same records, same minute");

        // Another token (even with the same text), another user entry, no token.
        let other = cache.session(&session, Some(user.clone()), Some(&token("a.b.c")), 2_000);
        assert!(!Arc::ptr_eq(&shown, &other));
        let other_user = cache.user(&ada(5));
        let shown = cache.session(&session, Some(other_user), Some(&jwt), 2_000);
        let none = cache.session(&session, Some(user.clone()), None, 2_000);
        assert!(!Arc::ptr_eq(&shown, &none));
        assert!(!none.text().get().contains("a.b.c"));

        // The factor age moves by the minute.
        let later = cache.session(&session, Some(user.clone()), None, 2 * MIN);
        assert!(!Arc::ptr_eq(&none, &later));
        assert!(later
            .text()
            .get()
            .contains("\"factor_verification_age\":[2,-1]"));

        // Abandoned by time alone: the status shown changes with no write.
        let idle = cache.session(&session, Some(user.clone()), None, 61 * MIN);
        assert!(idle.text().get().contains("\"status\":\"abandoned\""));

        // A written change of the record.
        let ended = session.with_status(SessionStatus::Ended, 3 * MIN);
        let shown = cache.session(&ended, Some(user), None, 3 * MIN);
        assert!(shown.text().get().contains("\"status\":\"ended\""));
    }

    #[test]
    fn the_cache_stays_within_its_bound() {
        let cache = RenderCache::default();
        let mut user = ada(0);
        user.public_metadata
            .insert("blob".into(), "x".repeat(64 * 1024).into());
        for i in 0..(2 * MAX_BYTES / (64 * 1024)) {
            user.id = format!("user_{i}");
            cache.user(&user);
        }
        let users = cache.users.lock().unwrap();
        assert!(users.bytes <= MAX_BYTES);
        assert!(users.by_id.len() < 2 * MAX_BYTES / (64 * 1024));
        // Full, it stays nearly full: room is made a sixteenth at a time, not by emptying.
        assert!(
            users.bytes > MAX_BYTES / 16 * 14,
            "{} bytes kept",
            users.bytes
        );
        // What it counts is what it holds.
        let held: usize = users.by_id.values().map(|u| u.bytes()).sum();
        assert_eq!(users.bytes, held);
    }
}
