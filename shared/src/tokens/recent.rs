//! The `last_active_token`s this process signed lately, served again while young
//! (`app::minting::last_active_tokens`): a burst of Frontend API answers costs one
//! signature, not one each. Process state, held by `AppState`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::value::RawValue;

use crate::clock::Millis;

/// A reused `last_active_token` is at most a tenth of its lifetime old: with the default
/// 60 s it has at least 54 s left, more than clerk-js's refresh margin.
pub const REUSE_FRACTION: Millis = 10;
/// At most this many sessions have a token kept; when full of young tokens, a sixteenth
/// make room.
const RECENT_TOKENS_CAPACITY: usize = 10_000;
/// Stale tokens are swept once the map reaches this size, and then again at twice what
/// the sweep left (amortised O(1) a token): the map stays near the tokens still young,
/// instead of filling with stale ones up to the capacity and emptying (a saw-tooth of
/// some 13 MB in the soak, figure 12).
const RECENT_TOKENS_SWEEP_FROM: usize = 1024;

/// What a session token signed now would say that can change while a signed one is
/// reused: the key, the factor age in minutes and the status claim; and its `exp`. A
/// reused token must agree on the first three and expire no later than a fresh one may.
pub(crate) struct Fresh {
    pub(crate) now: Millis,
    pub(crate) kid: String,
    pub(crate) fva: i64,
    pub(crate) pending: bool,
    pub(crate) exp: Millis,
    pub(crate) latest_exp: Option<Millis>,
    /// How long a token stays young: its lifetime over [`REUSE_FRACTION`].
    pub(crate) window: Millis,
}

struct Recent {
    origin: Option<String>,
    token: Arc<RawValue>,
    signed_at: Millis,
    exp: Millis,
    kid: String,
    fva: i64,
    pending: bool,
}

/// The `last_active_token`s this process signed recently, by session id. Only ever
/// served for a session the answer's client holds and that may mint at that moment (the
/// caller checks both), so reuse shows no one a token they could not have got fresh.
#[derive(Default)]
pub struct RecentTokens {
    by_session: Mutex<HashMap<String, Vec<Recent>>>,
    /// The map's size at which the next sweep runs (changed under the map's lock).
    sweep_at: AtomicUsize,
}

impl RecentTokens {
    /// How many sessions have a token kept now.
    pub fn len(&self) -> usize {
        self.by_session.lock().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The token kept for the session and origin, if it is young and agrees with `fresh`.
    pub(crate) fn get(
        &self,
        session_id: &str,
        origin: Option<&str>,
        fresh: &Fresh,
    ) -> Option<Arc<RawValue>> {
        let map = self.by_session.lock().ok()?;
        let recent = map
            .get(session_id)?
            .iter()
            .find(|r| r.origin.as_deref() == origin)?;
        let young = (0..=fresh.window).contains(&(fresh.now - recent.signed_at));
        let same =
            recent.kid == fresh.kid && recent.fva == fresh.fva && recent.pending == fresh.pending;
        let within_cap = fresh.latest_exp.is_none_or(|latest| recent.exp <= latest);
        (young && same && within_cap).then(|| recent.token.clone())
    }

    /// Keeps `token`, signed as `fresh` describes, for the session and origin.
    pub(crate) fn put(
        &self,
        session_id: &str,
        origin: Option<&str>,
        fresh: &Fresh,
        token: &Arc<RawValue>,
    ) {
        let Ok(mut map) = self.by_session.lock() else {
            return;
        };
        let sweep_at = self
            .sweep_at
            .load(Ordering::Relaxed)
            .clamp(RECENT_TOKENS_SWEEP_FROM, RECENT_TOKENS_CAPACITY);
        if map.len() >= sweep_at && !map.contains_key(session_id) {
            map.retain(|_, recents| {
                recents.retain(|r| fresh.now - r.signed_at <= fresh.window);
                !recents.is_empty()
            });
            // Still full of young tokens: a sixteenth make room (one pass), so the memory
            // stays level instead of emptying and refilling.
            let mut evict = if map.len() >= RECENT_TOKENS_CAPACITY {
                RECENT_TOKENS_CAPACITY / 16
            } else {
                0
            };
            map.retain(|_, _| {
                if evict == 0 {
                    return true;
                }
                evict -= 1;
                false
            });
            self.sweep_at.store(2 * map.len(), Ordering::Relaxed);
        }
        let recent = Recent {
            origin: origin.map(str::to_string),
            token: token.clone(),
            signed_at: fresh.now,
            exp: fresh.exp,
            kid: fresh.kid.clone(),
            fva: fresh.fva,
            pending: fresh.pending,
        };
        let recents = map.entry(session_id.to_string()).or_default();
        recents.retain(|r| r.origin.as_deref() != origin);
        recents.push(recent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(now: Millis) -> Fresh {
        Fresh {
            now,
            kid: "ins_kid".into(),
            fva: -1,
            pending: false,
            exp: now + 60_000,
            latest_exp: None,
            window: 6_000,
        }
    }

    #[test]
    fn recent_tokens_make_room_a_sixteenth_at_a_time() {
        let recent = RecentTokens::default();
        let token: Arc<RawValue> = Arc::from(RawValue::from_string("\"t\"".into()).unwrap());
        let now = fresh(1_000);
        for i in 0..RECENT_TOKENS_CAPACITY {
            recent.put(&format!("sess_{i}"), None, &now, &token);
        }
        assert_eq!(recent.len(), RECENT_TOKENS_CAPACITY);
        // Full of young tokens: a sixteenth go, not all of them.
        recent.put("sess_new", None, &now, &token);
        assert_eq!(
            recent.len(),
            RECENT_TOKENS_CAPACITY - RECENT_TOKENS_CAPACITY / 16 + 1
        );
        assert!(recent.get("sess_new", None, &now).is_some());
        // Once they are stale, they all go first.
        let later = fresh(1_000 + now.window + 1);
        for i in 0..RECENT_TOKENS_CAPACITY / 16 {
            recent.put(&format!("sess_more_{i}"), None, &later, &token);
        }
        recent.put("sess_last", None, &later, &token);
        assert_eq!(recent.len(), RECENT_TOKENS_CAPACITY / 16 + 1);
    }

    #[test]
    fn stale_recent_tokens_are_swept_long_before_the_capacity() {
        let recent = RecentTokens::default();
        let token: Arc<RawValue> = Arc::from(RawValue::from_string("\"t\"".into()).unwrap());
        // A steady load: a new session every 100 ms, each token young for 6 s.
        for i in 0..30_000 {
            recent.put(&format!("sess_{i}"), None, &fresh(i * 100), &token);
            assert!(
                recent.len() <= RECENT_TOKENS_SWEEP_FROM,
                "{i}: {}",
                recent.len()
            );
        }
    }
}
