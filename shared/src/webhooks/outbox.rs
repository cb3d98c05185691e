//! Delivery from the embedded store: its outbox holds the events recorded by commits; a
//! worker of the serving process fans each out to the endpoints that want it and delivers,
//! retrying on the configured schedule. Several processes on one SQLite file share the
//! work: a delivery is leased to one worker at a time.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Event, Sender};
use crate::clock::Millis;
use crate::state::AppState;
use crate::store::StoreError;

/// How often the worker looks for due deliveries.
pub const POLL_EVERY: Duration = Duration::from_millis(200);
/// How long a delivery is leased to the worker attempting it: longer than an attempt's
/// time-out, so two workers never deliver it at once.
const LEASE_MS: Millis = 60_000;
/// Deliveries attempted at once (each of a different endpoint and key).
const BATCH: usize = 32;

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
    /// endpoint wants are dropped), then answers the deliveries due at `now`: of each
    /// endpoint and key, the oldest one still pending, if its time has come and no worker
    /// holds it. They are leased to the caller until `lease_until`.
    async fn due_deliveries(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
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

/// Delivers from the outbox until the process ends. Does nothing on a store without one.
pub async fn run(state: Arc<AppState>) {
    if state.store.outbox().is_none() || !state.config.webhooks.enabled {
        return;
    }
    let sender = match Sender::new(state.config.webhooks.allow_loopback) {
        Ok(s) => s,
        Err(err) => {
            tracing::error!(error = %err, "webhooks: no HTTP client, nothing will be delivered");
            return;
        }
    };
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(err) = deliver_due(&state, &sender).await {
            tracing::warn!(error = %err, "webhooks: outbox not read");
        }
    }
}

/// One round: every due delivery attempted once, at the same time.
pub async fn deliver_due(state: &Arc<AppState>, sender: &Sender) -> Result<usize, StoreError> {
    let Some(outbox) = state.store.outbox() else {
        return Ok(0);
    };
    let now = state.now();
    let due = outbox.due_deliveries(now, now + LEASE_MS, BATCH).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let endpoints = state.store.list_webhook_endpoints().await?;
    let mut attempts = tokio::task::JoinSet::new();
    let count = due.len();
    for delivery in due {
        let endpoint = endpoints
            .iter()
            .find(|e| e.id == delivery.endpoint_id)
            .cloned();
        let (state, sender) = (Arc::clone(state), sender.clone());
        attempts.spawn(async move {
            let Some(outbox) = state.store.outbox() else {
                return;
            };
            let Some(endpoint) = endpoint else {
                // Deleted meanwhile: nothing to deliver to.
                let _ = outbox.delivered(delivery.id).await;
                return;
            };
            let now = state.now();
            let result = sender
                .deliver(&state.sealer, &endpoint, &delivery.event, now)
                .await;
            let made = delivery.attempts + 1;
            crate::metrics::webhook_attempt(result.is_ok());
            let recorded = match &result {
                Ok(()) => outbox.delivered(delivery.id).await,
                Err(error) => {
                    let pause = state.config.webhooks.retry_schedule.pause_after(made);
                    let next_at = pause.map(|p| state.now() + p.as_millis() as Millis);
                    if next_at.is_none() {
                        crate::metrics::webhook_dead_lettered();
                        tracing::error!(
                            endpoint = %endpoint.id, event = %delivery.event.id,
                            attempts = made, error = %error,
                            "webhooks: delivery dead-lettered"
                        );
                    } else {
                        tracing::info!(
                            endpoint = %endpoint.id, event = %delivery.event.id,
                            attempts = made, error = %error,
                            "webhooks: delivery failed, will retry"
                        );
                    }
                    outbox.failed(delivery.id, made, next_at, error).await
                }
            };
            if let Err(err) = recorded {
                // The lease runs out and the delivery is attempted again: at least once.
                tracing::warn!(error = %err, "webhooks: delivery outcome not recorded");
            }
        });
    }
    while attempts.join_next().await.is_some() {}
    Ok(count)
}
