//! Delivery from the embedded store: its outbox (`store::Outbox`) holds the events recorded
//! by commits; a worker of the serving process fans each out to the endpoints that want it
//! and delivers, retrying on the configured schedule. Several processes on one SQLite file
//! share the work: a delivery is leased to one worker at a time.
//!
//! Endpoints are isolated from each other: the worker never waits for attempts it has
//! started before leasing more, and each endpoint has its own room ([`PER_ENDPOINT`]
//! attempts at once), so a receiver that never answers holds up only its own deliveries.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::{Sender, WebhookEndpoint};
use crate::clock::Millis;
use crate::state::AppState;
use crate::store::{Delivery, Room, StoreError};

/// How often the worker looks for due deliveries (and at once whenever an attempt ends,
/// so one session's next event follows without waiting for the tick).
pub const POLL_EVERY: Duration = Duration::from_millis(200);
/// How long a delivery is leased to the worker attempting it: longer than an attempt's
/// time-out, so two workers never deliver it at once.
const LEASE_MS: Millis = 60_000;
/// Attempts one endpoint may have under way at once (each of a different key). Bounds
/// the connections a dead receiver holds for its 15 s; other endpoints have their own.
pub const PER_ENDPOINT: usize = 16;

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
    let mut worker = Worker::new(state, sender);
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let wake = Arc::clone(&worker.wake);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = wake.notified() => {}
        }
        if let Err(err) = worker.start_due().await {
            tracing::warn!(error = %err, "webhooks: outbox not read");
        }
    }
}

/// One round, waited for: every due delivery attempted once (the tests' worker).
pub async fn deliver_due(state: &Arc<AppState>, sender: &Sender) -> Result<usize, StoreError> {
    let mut worker = Worker::new(Arc::clone(state), sender.clone());
    let started = worker.start_due().await?;
    worker.finish().await;
    Ok(started)
}

/// The attempts a worker has under way: per endpoint (its room) and per endpoint and key
/// (so one key is never attempted twice at once, even if its lease ran out meanwhile).
#[derive(Default)]
struct InFlight {
    by_endpoint: HashMap<String, usize>,
    groups: HashSet<(String, String)>,
}

/// One attempt's place in [`InFlight`], given back when the attempt ends however it
/// ends (also when its task is aborted), waking the worker.
struct Claim {
    in_flight: Arc<Mutex<InFlight>>,
    wake: Arc<Notify>,
    group: (String, String),
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        in_flight.groups.remove(&self.group);
        if let Some(n) = in_flight.by_endpoint.get_mut(&self.group.0) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                in_flight.by_endpoint.remove(&self.group.0);
            }
        }
        drop(in_flight);
        self.wake.notify_one();
    }
}

/// The embedded store's delivery worker. Its attempts run beside it; dropping it aborts
/// them (their leases run out and they are attempted again: at least once).
pub struct Worker {
    state: Arc<AppState>,
    sender: Sender,
    in_flight: Arc<Mutex<InFlight>>,
    wake: Arc<Notify>,
    attempts: JoinSet<()>,
}

impl Worker {
    pub fn new(state: Arc<AppState>, sender: Sender) -> Self {
        Self {
            state,
            sender,
            in_flight: Arc::default(),
            wake: Arc::default(),
            attempts: JoinSet::new(),
        }
    }

    /// Leases the due deliveries that fit each endpoint's room and starts attempting
    /// them, without waiting for any attempt: answers how many it started.
    pub async fn start_due(&mut self) -> Result<usize, StoreError> {
        while self.attempts.try_join_next().is_some() {}
        let Some(outbox) = self.state.store.outbox() else {
            return Ok(0);
        };
        let room = Room {
            total: usize::MAX,
            per_endpoint: PER_ENDPOINT,
            busy: self.lock().by_endpoint.clone(),
        };
        let now = self.state.now();
        let due = outbox.lease_due(now, now + LEASE_MS, &room).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let endpoints = self.state.store.list_webhook_endpoints().await?;
        let mut started = 0;
        for delivery in due {
            let group = (delivery.endpoint_id.clone(), delivery.event.key.clone());
            {
                let mut in_flight = self.lock();
                if !in_flight.groups.insert(group.clone()) {
                    // Still being attempted here (its lease ran out meanwhile): that
                    // attempt records the outcome; this lease just runs out.
                    continue;
                }
                *in_flight
                    .by_endpoint
                    .entry(delivery.endpoint_id.clone())
                    .or_default() += 1;
            }
            let claim = Claim {
                in_flight: Arc::clone(&self.in_flight),
                wake: Arc::clone(&self.wake),
                group,
            };
            let endpoint = endpoints
                .iter()
                .find(|e| e.id == delivery.endpoint_id)
                .cloned();
            let (state, sender) = (Arc::clone(&self.state), self.sender.clone());
            self.attempts.spawn(async move {
                attempt(&state, &sender, endpoint, delivery).await;
                drop(claim);
            });
            started += 1;
        }
        Ok(started)
    }

    /// Waits for every attempt started so far to end.
    pub async fn finish(&mut self) {
        while self.attempts.join_next().await.is_some() {}
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One attempt of `delivery`, and its outcome recorded.
async fn attempt(
    state: &AppState,
    sender: &Sender,
    endpoint: Option<WebhookEndpoint>,
    delivery: Delivery,
) {
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
}
