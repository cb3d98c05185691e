//! Clients that never signed in live for ANONYMOUS_CLIENT_LIFETIME_SECONDS after their
//! last use; a signed-in client keeps the client-token lifetime.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use shared::store::Store;
use testkit::app::*;
use testkit::stores;

const TTL: i64 = 3600;

async fn app_on(store: Arc<dyn Store>) -> TestApp {
    TestApp::with_store(
        test_config(&[("ANONYMOUS_CLIENT_LIFETIME_SECONDS", "3600")]),
        store,
    )
    .await
}

fn client_id(resp: &TestResponse) -> Option<String> {
    resp.body["response"]["id"].as_str().map(str::to_string)
}

async fn anonymous_clients_expire_unless_used(app: &TestApp) {
    let cookie = app.browser_client().await;
    let get = || app.send(Req::get("/v1/client").cookie(&cookie));
    let id = client_id(&get().await).expect("a client");
    let created = app.stored_client(&id).await.client;
    assert_eq!(created.anonymous_until, Some(app.now_ms() + TTL * 1000));

    // Used before half its lifetime: no write, nothing moves.
    app.clock.advance_secs(TTL / 4);
    assert_eq!(client_id(&get().await).as_deref(), Some(id.as_str()));
    assert_eq!(app.stored_client(&id).await.client.version, created.version);

    // Used in the second half: its end slides to a full lifetime from now.
    app.clock.advance_secs(TTL / 2);
    assert_eq!(client_id(&get().await).as_deref(), Some(id.as_str()));
    let slid = app.stored_client(&id).await.client;
    assert_eq!(slid.anonymous_until, Some(app.now_ms() + TTL * 1000));
    assert_eq!(
        slid.expires_at, created.expires_at,
        "the token lifetime is untouched"
    );

    // Left alone for a whole lifetime: gone, answered like a client that never existed.
    app.clock.advance_secs(TTL);
    let resp = get().await;
    resp.ok();
    assert_eq!(resp.body["response"], Value::Null);
    app.send(Req::get(session_path("sess_x", "")).cookie(&cookie))
        .await
        .assert_error(401, "signed_out");
}

async fn signed_in_clients_keep_the_full_lifetime(app: &TestApp) {
    let (cookie, sid, _) = app.browser_session().await;
    let resp = app.send(Req::get("/v1/client").cookie(&cookie)).await;
    let id = client_id(&resp).expect("client");
    assert_eq!(app.stored_client(&id).await.client.anonymous_until, None);
    app.clock.advance_secs(3 * TTL);
    let resp = app
        .send(Req::get(session_path(&sid, "")).cookie(&cookie))
        .await;
    assert_eq!(resp.ok()["response"]["status"], "active");
}

#[tokio::test]
async fn on_the_embedded_store() {
    let store: Arc<dyn Store> = Arc::new(shared::store::MemoryStore::new());
    let app = app_on(Arc::clone(&store)).await;
    anonymous_clients_expire_unless_used(&app).await;
    signed_in_clients_keep_the_full_lifetime(&app).await;

    // The embedded store forgets expired anonymous clients (as DynamoDB's TTL does).
    let cookie = app.browser_client().await;
    let resp = app.send(Req::get("/v1/client").cookie(&cookie)).await;
    let old = client_id(&resp).unwrap();
    app.clock.advance_secs(TTL + 1);
    app.browser_client().await;
    assert!(store.get_client(&old).await.unwrap().is_none());
}

#[tokio::test]
async fn on_dynamodb_with_the_ttl_attribute_following_the_anonymous_lifetime() {
    let Some(ddb) = stores::dynamodb().await else {
        return;
    };
    let app = app_on(ddb.clone()).await;
    anonymous_clients_expire_unless_used(&app).await;
    signed_in_clients_keep_the_full_lifetime(&app).await;

    let cookie = app.browser_client().await;
    let resp = app.send(Req::get("/v1/client").cookie(&cookie)).await;
    let id = client_id(&resp).unwrap();
    let item = ddb
        .client()
        .get_item()
        .table_name(ddb.table_name())
        .key("pk", AttributeValue::S(format!("CLIENT#{id}")))
        .key("sk", AttributeValue::S("CLIENT".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let ttl: i64 = item["ttl"].as_n().unwrap().parse().unwrap();
    let until = (app.now_ms() + TTL * 1000) / 1000;
    assert!(
        ttl >= until && ttl <= until + 2 * 24 * 3600,
        "the item may be deleted about a day after the anonymous lifetime, not a year: {ttl} vs {until}"
    );
}
