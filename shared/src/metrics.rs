//! The service's metrics, every name, label and unit in one place (the catalogue in
//! docs/operations.md follows this file). Code records through the `metrics` facade; the
//! process installs where they go: CloudWatch Embedded Metric Format lines on Lambda
//! (`functions`), Prometheus text at `/metrics` on the local server (`local`). With no
//! recorder installed (tests, tools) recording does nothing.
//!
//! The metrics of the usual path (a 2xx answer, a store call) are registered once, when
//! the state is built, and recorded through the handles: a session read then pays a few
//! atomic adds, not a registry lookup per metric. The rest are recorded on paths that sign,
//! write or fail, where a lookup is noise. Few label sets are registered ahead (one per
//! endpoint, one per store operation), because the EMF recorder walks all of them each
//! time a function writes its lines.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use metrics::{counter, describe_counter, describe_histogram, Counter, Histogram, Unit};

use crate::endpoint::Endpoint;
use crate::store::StoreError;

/// Answers, by `endpoint` (an [`Endpoint`] name, or `none` when no route matched) and
/// status `class` (`2xx` … `5xx`).
pub const HTTP_RESPONSES: &str = "http_responses_total";
/// ClerkErrors answers, by `endpoint` and ClerkErrors `code`.
pub const CLERK_ERRORS: &str = "clerk_errors_total";
/// Completed sign-ins, by `strategy` (`ticket`).
pub const SIGN_INS: &str = "sign_ins_total";
/// Tokens signed, by `kind`: `session` and `template` (minted on request: the token
/// refreshes), `last_active_token` (signed for a Frontend API answer; reuse is not counted).
pub const TOKENS_MINTED: &str = "tokens_minted_total";
/// Session status changes, by `action`: `sign_in`, `end`, `remove`, `revoke`.
pub const SESSION_TRANSITIONS: &str = "session_transitions_total";
/// Store calls, by `operation`.
pub const STORE_CALLS: &str = "store_calls_total";
/// Store calls that failed, by `operation` and `outcome`: `conflict` (a conditional write
/// lost a race), `unavailable` (throttled or timed out), `fault`.
pub const STORE_ERRORS: &str = "store_errors_total";
/// Store call latency in seconds, by `operation`.
pub const STORE_CALL_DURATION: &str = "store_call_duration_seconds";
/// Operations run again after losing a race to another request, by `operation`.
pub const RETRIES: &str = "retries_total";
/// Keyring rotations, by `outcome`: `ok`, `refused` (a 4xx: one is pending already, or
/// another rotation won the race), `failed` (the store or KMS failed).
pub const KEY_ROTATIONS: &str = "key_rotations_total";
/// Webhook delivery attempts, by `outcome`: `delivered`, `failed` (to be retried, or
/// dead-lettered after the last attempt).
pub const WEBHOOK_ATTEMPTS: &str = "webhook_attempts_total";
/// Webhook deliveries given up on after the last attempt of the schedule.
pub const WEBHOOK_DEAD_LETTERS: &str = "webhook_dead_letters_total";

/// What each in-process cache holds, by `cache`: `rendered_users`, `rendered_sessions`,
/// `recent_tokens`, `verified_client_tokens`, `compiled_templates` (local server, set when
/// `/metrics` is read).
pub const CACHE_ENTRIES: &str = "cache_entries";
/// The bytes of what a cache holds, by `cache` (those that count them).
pub const CACHE_BYTES: &str = "cache_bytes";

/// Sets the cache gauges: (cache, entries, bytes where counted), as
/// `AppState::cache_sizes` answers them.
pub fn record_caches(sizes: &[(&'static str, usize, Option<usize>)]) {
    for &(cache, entries, bytes) in sizes {
        metrics::gauge!(CACHE_ENTRIES, "cache" => cache).set(entries as f64);
        if let Some(bytes) = bytes {
            metrics::gauge!(CACHE_BYTES, "cache" => cache).set(bytes as f64);
        }
    }
}

/// The buckets of [`STORE_CALL_DURATION`] on the local server, in seconds: from an
/// in-memory read (µs) to a slow SQLite commit.
pub const STORE_CALL_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Describes every metric to the installed recorder (units and help texts).
pub fn describe() {
    describe_counter!(
        HTTP_RESPONSES,
        Unit::Count,
        "Answers by endpoint and status class"
    );
    describe_counter!(
        CLERK_ERRORS,
        Unit::Count,
        "ClerkErrors answers by endpoint and code"
    );
    describe_counter!(SIGN_INS, Unit::Count, "Completed sign-ins by strategy");
    describe_counter!(TOKENS_MINTED, Unit::Count, "Tokens signed by kind");
    describe_counter!(
        SESSION_TRANSITIONS,
        Unit::Count,
        "Session status changes by action"
    );
    describe_counter!(STORE_CALLS, Unit::Count, "Store calls by operation");
    describe_counter!(
        STORE_ERRORS,
        Unit::Count,
        "Failed store calls by operation and outcome"
    );
    describe_histogram!(
        STORE_CALL_DURATION,
        Unit::Seconds,
        "Store call latency by operation"
    );
    describe_counter!(RETRIES, Unit::Count, "Operations retried after a lost race");
    describe_counter!(KEY_ROTATIONS, Unit::Count, "Keyring rotations by outcome");
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        Unit::Count,
        "Webhook delivery attempts by outcome"
    );
    describe_counter!(
        WEBHOOK_DEAD_LETTERS,
        Unit::Count,
        "Webhook deliveries given up after the last attempt"
    );
}

/// A store call, as [`STORE_CALLS`] and [`STORE_CALL_DURATION`] label it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOp {
    Keyring,
    PublicKeys,
    PutKeyring,
    GetUser,
    GetUsers,
    GetSignInToken,
    GetIdentifier,
    GetClient,
    GetSession,
    ListSessions,
    GetJwtTemplate,
    ListJwtTemplates,
    ListWebhookEndpoints,
    Commit,
}

impl StoreOp {
    const ALL: [StoreOp; 14] = [
        StoreOp::Keyring,
        StoreOp::PublicKeys,
        StoreOp::PutKeyring,
        StoreOp::GetUser,
        StoreOp::GetUsers,
        StoreOp::GetSignInToken,
        StoreOp::GetIdentifier,
        StoreOp::GetClient,
        StoreOp::GetSession,
        StoreOp::ListSessions,
        StoreOp::GetJwtTemplate,
        StoreOp::ListJwtTemplates,
        StoreOp::ListWebhookEndpoints,
        StoreOp::Commit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StoreOp::Keyring => "keyring",
            StoreOp::PublicKeys => "public_keys",
            StoreOp::PutKeyring => "put_keyring",
            StoreOp::GetUser => "get_user",
            StoreOp::GetUsers => "get_users",
            StoreOp::GetSignInToken => "get_sign_in_token",
            StoreOp::GetIdentifier => "get_identifier",
            StoreOp::GetClient => "get_client",
            StoreOp::GetSession => "get_session",
            StoreOp::ListSessions => "list_sessions",
            StoreOp::GetJwtTemplate => "get_jwt_template",
            StoreOp::ListJwtTemplates => "list_jwt_templates",
            StoreOp::ListWebhookEndpoints => "list_webhook_endpoints",
            StoreOp::Commit => "commit",
        }
    }
}

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// The `endpoint` label of a request no route matched.
const NO_ENDPOINT: &str = "none";

/// The per-request metrics' handles, registered with the recorder installed when they
/// were made (cheap to clone).
#[derive(Clone)]
pub struct Metrics(Arc<Handles>);

struct Handles {
    /// The 2xx answers, by endpoint (`Endpoint as usize`).
    ok_responses: Vec<Counter>,
    /// By `StoreOp as usize`.
    store: Vec<StoreHandles>,
}

struct StoreHandles {
    calls: Counter,
    duration: Histogram,
}

impl Metrics {
    /// Registers the handles with the recorder installed now (none: they do nothing).
    pub fn register() -> Self {
        let ok_responses = Endpoint::ALL
            .iter()
            .map(|e| counter!(HTTP_RESPONSES, "endpoint" => e.name(), "class" => "2xx"))
            .collect();
        // Both metrics of an operation share its one label set.
        let store = StoreOp::ALL
            .iter()
            .map(|op| StoreHandles {
                calls: counter!(STORE_CALLS, "operation" => op.name()),
                duration: metrics::histogram!(STORE_CALL_DURATION, "operation" => op.name()),
            })
            .collect();
        Metrics(Arc::new(Handles {
            ok_responses,
            store,
        }))
    }

    /// Counts an answer of `endpoint` (`None`: no route matched) with `status`, and its
    /// ClerkErrors `code` when it is an error.
    pub fn response(&self, endpoint: Option<Endpoint>, status: u16, code: Option<&'static str>) {
        let ok = endpoint.and_then(|e| self.0.ok_responses.get(e as usize));
        if let Some(counter) = ok.filter(|_| (200..300).contains(&status)) {
            counter.increment(1);
            return;
        }
        let name = endpoint.map_or(NO_ENDPOINT, Endpoint::name);
        let class = STATUS_CLASSES[usize::from(status / 100).clamp(1, 5) - 1];
        counter!(HTTP_RESPONSES, "endpoint" => name, "class" => class).increment(1);
        if let Some(code) = code {
            counter!(CLERK_ERRORS, "endpoint" => name, "code" => code).increment(1);
        }
    }

    /// Runs the store call `call`, counting and timing it, and counting its failure.
    pub async fn store_call<T>(
        &self,
        op: StoreOp,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        if let Some(handles) = self.0.store.get(op as usize) {
            handles.duration.record(started.elapsed().as_secs_f64());
            handles.calls.increment(1);
        }
        if let Err(err) = &result {
            let outcome = match err {
                StoreError::Conflict => "conflict",
                StoreError::Unavailable(_) => "unavailable",
                StoreError::Fault(_) => "fault",
            };
            counter!(STORE_ERRORS, "operation" => op.name(), "outcome" => outcome).increment(1);
        }
        result
    }
}

/// A completed sign-in by `strategy`.
pub fn sign_in(strategy: &'static str) {
    counter!(SIGN_INS, "strategy" => strategy).increment(1);
}

/// A token signed, of `kind` (see [`TOKENS_MINTED`]).
pub fn token_minted(kind: &'static str) {
    counter!(TOKENS_MINTED, "kind" => kind).increment(1);
}

/// `count` sessions changed status by `action` (see [`SESSION_TRANSITIONS`]).
pub fn session_transitions(action: &'static str, count: u64) {
    counter!(SESSION_TRANSITIONS, "action" => action).increment(count);
}

/// `operation` runs again after losing a race.
pub fn retry(operation: &'static str) {
    counter!(RETRIES, "operation" => operation).increment(1);
}

/// A keyring rotation: done, or refused or failed with this status.
pub fn key_rotation(result: Result<(), u16>) {
    let outcome = match result {
        Ok(()) => "ok",
        Err(status) if status < 500 => "refused",
        Err(_) => "failed",
    };
    counter!(KEY_ROTATIONS, "outcome" => outcome).increment(1);
}

/// A webhook delivery attempt, delivered or not.
pub fn webhook_attempt(delivered: bool) {
    let outcome = if delivered { "delivered" } else { "failed" };
    counter!(WEBHOOK_ATTEMPTS, "outcome" => outcome).increment(1);
}

/// A webhook delivery given up on.
pub fn webhook_dead_lettered() {
    counter!(WEBHOOK_DEAD_LETTERS).increment(1);
}
