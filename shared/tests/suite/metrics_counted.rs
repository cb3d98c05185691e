//! What the service counts (docs/operations.md, "Metrics"): answers, sign-ins, transitions,
//! store calls by outcome, and retries after a lost race, read back from a recorder that
//! keeps counter values.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use shared::domain::{ClientState, JwtTemplate, Session, SignInToken, User};
use shared::store::{
    Expect, KeyringRecord, MemoryStore, PublicKeysRecord, SessionFilter, Store, StoreError, Write,
};
use testkit::app::*;
use testkit::metrics::Counters;

/// The in-memory store, whose next `lose` commits lose a race: they answer a conflict and
/// write nothing, as when another request wrote first.
#[derive(Default)]
struct LosesRaces {
    inner: MemoryStore,
    lose: AtomicUsize,
}

#[async_trait]
impl Store for LosesRaces {
    async fn keyring(&self) -> Result<Option<KeyringRecord>, StoreError> {
        self.inner.keyring().await
    }
    async fn public_keys(&self) -> Result<Option<PublicKeysRecord>, StoreError> {
        self.inner.public_keys().await
    }
    async fn put_keyring(&self, keyring: KeyringRecord, expect: Expect) -> Result<(), StoreError> {
        self.inner.put_keyring(keyring, expect).await
    }
    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.inner.get_user(id).await
    }
    async fn get_users(&self, ids: &[String]) -> Result<Vec<Arc<User>>, StoreError> {
        self.inner.get_users(ids).await
    }
    async fn get_sign_in_token(&self, hash: &str) -> Result<Option<SignInToken>, StoreError> {
        self.inner.get_sign_in_token(hash).await
    }
    async fn get_identifier(
        &self,
        key: &str,
    ) -> Result<Option<shared::domain::Identifier>, StoreError> {
        self.inner.get_identifier(key).await
    }
    async fn get_client(&self, id: &str) -> Result<Option<ClientState>, StoreError> {
        self.inner.get_client(id).await
    }
    async fn get_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.inner.get_session(id).await
    }
    async fn list_sessions(&self, filter: &SessionFilter) -> Result<Vec<Session>, StoreError> {
        self.inner.list_sessions(filter).await
    }
    async fn get_jwt_template(&self, name: &str) -> Result<Option<JwtTemplate>, StoreError> {
        self.inner.get_jwt_template(name).await
    }
    async fn list_jwt_templates(&self) -> Result<Vec<JwtTemplate>, StoreError> {
        self.inner.list_jwt_templates().await
    }
    async fn list_webhook_endpoints(
        &self,
    ) -> Result<Vec<shared::webhooks::WebhookEndpoint>, StoreError> {
        self.inner.list_webhook_endpoints().await
    }
    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let lost = self
            .lose
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if lost {
            return Err(StoreError::Conflict);
        }
        self.inner.commit(writes).await
    }
}

/// A current-thread runtime (`#[tokio::test]`'s), so the recorder set as the thread's
/// default also receives what the state registers while it is built.
#[tokio::test]
async fn sign_ins_transitions_answers_and_retries_are_counted() {
    let counters = Counters::default();
    let _default = metrics::set_default_local_recorder(&counters);
    let store = Arc::new(LosesRaces::default());
    let app = TestApp::on(store.clone()).await;
    let (token, sid, _) = app.native_session().await;
    assert_eq!(
        counters.value("sign_ins_total", &[("strategy", "ticket")]),
        1
    );
    let transitions = |action| counters.value("session_transitions_total", &[("action", action)]);
    assert_eq!(transitions("sign_in"), 1);

    // An end that loses one race reads again, ends the session, and answers 200.
    store.lose.store(1, Ordering::SeqCst);
    let end = app
        .send(Req::post(session_path(&sid, "end")).native(&token))
        .await;
    assert_eq!(end.status, 200, "{}", end.body);
    let retries = || counters.value("retries_total", &[("operation", "end")]);
    assert_eq!(retries(), 1);
    let commits = |outcome| {
        counters.value(
            "store_errors_total",
            &[("operation", "commit"), ("outcome", outcome)],
        )
    };
    assert_eq!(commits("conflict"), 1);
    assert_eq!(transitions("end"), 1);
    let answers = |endpoint, class| {
        counters.value(
            "http_responses_total",
            &[("endpoint", endpoint), ("class", class)],
        )
    };
    assert_eq!(answers("EndSession", "2xx"), 1);

    // One that loses every race gives up after its attempts: 409, counted by its code,
    // and no transition.
    let (token, sid, _) = app.native_session().await;
    store.lose.store(usize::MAX, Ordering::SeqCst);
    let end = app
        .send(Req::post(session_path(&sid, "end")).native(&token))
        .await;
    store.lose.store(0, Ordering::SeqCst);
    end.assert_error(409, "resource_conflict");
    assert_eq!(retries(), 1 + 7);
    assert_eq!(commits("conflict"), 1 + 8);
    assert_eq!(transitions("end"), 1);
    assert_eq!(answers("EndSession", "4xx"), 1);
    let errors = counters.value(
        "clerk_errors_total",
        &[("endpoint", "EndSession"), ("code", "resource_conflict")],
    );
    assert_eq!(errors, 1);
    assert_eq!(
        counters.value("http_responses_total", &[("class", "5xx")]),
        0
    );
}
