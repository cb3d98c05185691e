//! The outbox of the embedded stores (SQLite: `sqlite/outbox.rs`; in memory): the events
//! their commits recorded, fanned out into deliveries that the webhook worker
//! (`webhooks::outbox`) leases, attempts and settles here.

use std::collections::HashMap;

use async_trait::async_trait;

use super::StoreError;
use crate::clock::Millis;
use crate::webhooks::Event;

/// How many deliveries a worker can take on: at most `per_endpoint` of one endpoint at
/// once, counting the `busy` ones it attempts already, and `total` in all.
#[derive(Clone, Debug)]
pub struct Room {
    pub total: usize,
    pub per_endpoint: usize,
    /// Attempts under way, by endpoint id.
    pub busy: HashMap<String, usize>,
}

impl Room {
    /// `limit` deliveries, of any endpoints.
    pub fn total(limit: usize) -> Self {
        Self {
            total: limit,
            per_endpoint: limit,
            busy: HashMap::new(),
        }
    }

    /// How many more of `endpoint`'s deliveries fit.
    pub fn free(&self, endpoint: &str) -> usize {
        self.per_endpoint
            .saturating_sub(self.busy.get(endpoint).copied().unwrap_or(0))
    }
}

/// A delivery of one event to one endpoint, waiting in the outbox.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: i64,
    pub endpoint_id: String,
    pub event: Event,
    /// Attempts made so far.
    pub attempts: u32,
}

/// The embedded stores' outbox.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Fans recorded events out, one delivery per endpoint that wants its type (events no
    /// endpoint wants are dropped), then answers the deliveries due at `now` that fit in
    /// `room`, oldest first: of each endpoint and key, the oldest one still pending, if its
    /// time has come and no worker holds it. They are leased to the caller until
    /// `lease_until`.
    async fn lease_due(
        &self,
        now: Millis,
        lease_until: Millis,
        room: &Room,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// [`Outbox::lease_due`] with room for `limit`, of any endpoints.
    async fn due_deliveries(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.lease_due(now, lease_until, &Room::total(limit)).await
    }
    /// The delivery succeeded (or its endpoint is gone): it leaves the outbox.
    async fn delivered(&self, id: i64) -> Result<(), StoreError>;
    /// An attempt failed, `attempts` made in all: it is tried again at `next_at`, or, with
    /// none, dead-lettered (kept, no longer tried, and no longer holding up its key).
    async fn failed(
        &self,
        id: i64,
        attempts: u32,
        next_at: Option<Millis>,
        error: &str,
    ) -> Result<(), StoreError>;
}
