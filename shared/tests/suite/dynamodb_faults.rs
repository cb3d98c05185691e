//! When DynamoDB does not answer, requests fail with 503 ClerkErrors and `Retry-After`
//! after the SDK's bounded retries, and the process keeps serving.

use std::sync::Arc;

use async_trait::async_trait;
use shared::domain::{Client, ClientState, JwtTemplate, Session, SignInToken, User};
use shared::store::{
    DynamoDbStore, Expect, KeyringRecord, MemoryStore, PublicKeysRecord, SessionFilter, Store,
    StoreError, Write,
};
use testkit::app::*;
use testkit::stores;

/// Instance keys from a working store (they are read once, at start-up); everything else
/// from a DynamoDB endpoint where nothing listens.
struct DeadTable {
    keys: MemoryStore,
    table: DynamoDbStore,
}

#[async_trait]
impl Store for DeadTable {
    async fn keyring(&self) -> Result<Option<KeyringRecord>, StoreError> {
        self.keys.keyring().await
    }
    async fn public_keys(&self) -> Result<Option<PublicKeysRecord>, StoreError> {
        self.keys.public_keys().await
    }
    async fn put_keyring(&self, k: KeyringRecord, e: Expect) -> Result<(), StoreError> {
        self.keys.put_keyring(k, e).await
    }
    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.table.get_user(id).await
    }
    async fn get_users(&self, ids: &[String]) -> Result<Vec<Arc<User>>, StoreError> {
        self.table.get_users(ids).await
    }
    async fn get_sign_in_token(&self, h: &str) -> Result<Option<SignInToken>, StoreError> {
        self.table.get_sign_in_token(h).await
    }
    async fn get_identifier(
        &self,
        key: &str,
    ) -> Result<Option<shared::domain::Identifier>, StoreError> {
        self.table.get_identifier(key).await
    }
    async fn get_client(&self, id: &str) -> Result<Option<ClientState>, StoreError> {
        self.table.get_client(id).await
    }
    async fn get_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.table.get_session(id).await
    }
    async fn list_sessions(&self, f: &SessionFilter) -> Result<Vec<Session>, StoreError> {
        self.table.list_sessions(f).await
    }
    async fn get_jwt_template(&self, name: &str) -> Result<Option<JwtTemplate>, StoreError> {
        self.table.get_jwt_template(name).await
    }
    async fn list_jwt_templates(&self) -> Result<Vec<JwtTemplate>, StoreError> {
        self.table.list_jwt_templates().await
    }
    async fn list_webhook_endpoints(
        &self,
    ) -> Result<Vec<shared::webhooks::WebhookEndpoint>, StoreError> {
        self.table.list_webhook_endpoints().await
    }
    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.table.commit(writes).await
    }
}

#[tokio::test]
async fn an_unreachable_table_is_503_with_retry_after_and_the_process_keeps_serving() {
    // Region and credentials come from the environment the test command sets up.
    if stores::dynamodb_endpoint().is_none() {
        return;
    }
    // Port 1 (tcpmux): nothing listens there, so connections are refused. A port that was
    // free a moment ago could be taken meanwhile by another process of the run (a server
    // a parallel test starts) and answer something else.
    let table = DynamoDbStore::new("sessions".into(), Some("http://127.0.0.1:1".into())).await;
    let app = TestApp::on(Arc::new(DeadTable {
        keys: MemoryStore::new(),
        table,
    }))
    .await;

    let client = Client {
        id: shared::ids::new_id("client"),
        rotating_token: "rot".into(),
        last_active_session_id: None,
        created_at: START_MS,
        updated_at: START_MS,
        expires_at: START_MS + 3_600_000,
        anonymous_until: None,
        sign_in: None,
        sign_up: None,
        version: 1,
    };
    let token = shared::http::auth::issue_client_token(&app.state, &client).unwrap();

    for req in [
        Req::get("/v1/client").native(&token),
        Req::post("/v1/client?_is_native=1"),
        Req::post("/v1/users").secret().json(&serde_json::json!({})),
    ] {
        let resp = app.send(req).await;
        resp.assert_error(503, "service_unavailable");
        assert_eq!(resp.header("retry-after"), Some("1"));
    }

    // Routes that need no table still answer.
    assert_eq!(app.send(Req::get("/v1/environment")).await.status, 200);
    assert_eq!(
        app.send(Req::get("/.well-known/jwks.json")).await.status,
        200
    );
}

/// Answers lost after DynamoDB applied the write (a dropped connection, an attempt timed
/// out on the way back): the SDK retries the same call, which recognises its own write
/// (puts by the write id they carry, transactions by their ClientRequestToken, status
/// writes by theirs), so every request answers what it did, and nothing is made twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_answer_was_lost_answers_what_it_did() {
    let Some((store, lost)) = stores::dynamodb_losing_answers().await else {
        return;
    };
    let app = TestApp::on(store.clone()).await;

    // A create (conditional PutItem): its retry finds the user it put, not a conflict.
    lost.lose_next(1);
    let user = app.create_user().await;
    assert_eq!(lost.lost(), 1);
    app.send(Req::get(format!("/v1/users/{user}")).secret())
        .await
        .ok();

    // A ticket (PutItem) and a client (PutItem).
    lost.lose_next(1);
    let ticket = app.ticket(&user).await;
    lost.lose_next(1);
    let client = app.send(Req::post("/v1/client?_is_native=1")).await;
    let token = client
        .header("authorization")
        .expect("client token")
        .to_string();
    assert_eq!(lost.lost(), 3);

    // A ticket sign-in (TransactWriteItems): answered with its session, which is the
    // client's only one, instead of "ticket already used".
    lost.lose_next(1);
    let resp = app
        .send(
            Req::post("/v1/client/sign_ins")
                .native(&token)
                .form(&format!("strategy=ticket&ticket={ticket}")),
        )
        .await;
    let (token, sid) = resp.signed_in();
    assert_eq!(lost.lost(), 4);
    let client_id = app.stored_session(&sid).await.client_id;
    assert_eq!(app.stored_client(&client_id).await.sessions.len(), 1);
    assert_eq!(app.user_sessions(&user).await.len(), 1);

    // A template (PutItem), then an update of the user (a versioned PutItem).
    lost.lose_next(1);
    let resp = app
        .send(
            Req::post("/v1/jwt_templates")
                .secret()
                .json(&serde_json::json!({"name": "lost", "claims": {"a": 1}})),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    lost.lose_next(1);
    let resp = app
        .send(
            Req::new("PATCH", format!("/v1/users/{user}"))
                .secret()
                .json(&serde_json::json!({"first_name": "Grace"})),
        )
        .await;
    assert_eq!(resp.ok()["first_name"], "Grace");

    // An end (a conditioned UpdateItem with its write id).
    lost.lose_next(1);
    let resp = app
        .send(Req::post(session_path(&sid, "end")).native(&token))
        .await;
    assert_eq!(resp.ok()["response"]["status"], "ended");
    assert_eq!(lost.lost(), 7);
}
