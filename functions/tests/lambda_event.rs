//! API Gateway HTTP API (payload 2.0) events, parsed by lambda_http itself, reach the
//! shared handlers through the Lambda adapter, and each function serves only its routes.

use lambda_http::Body;
use serde_json::{json, Value};
use shared::state::AppState;
use testkit::app::TestApp;

/// The service's state on the in-memory embedded store, as testkit's harness builds it.
async fn state() -> std::sync::Arc<AppState> {
    TestApp::new().await.state
}

fn v2_event(
    method: &str,
    raw_path: &str,
    raw_query: &str,
    body: Option<&str>,
) -> lambda_http::Request {
    let event = json!({
        "version": "2.0",
        "routeKey": format!("{method} {raw_path}"),
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "cookies": ["__client=not-a-token"],
        "headers": {"host": "abc123.execute-api.eu-west-1.amazonaws.com", "content-type": "application/x-www-form-urlencoded"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc123", "requestId": "req-lambda-1", "routeKey": format!("{method} {raw_path}"),
            "stage": "$default", "time": "26/Nov/2026:12:00:00 +0000", "timeEpoch": 1795694400000u64,
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "test"}
        },
        "body": body,
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).expect("lambda_http parses the v2 event")
}

fn json_body(resp: &http::Response<Body>) -> Value {
    match resp.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        other => panic!("expected a text body, got {other:?}"),
    }
}

#[tokio::test]
async fn jwks_function_answers_its_route() {
    let state = state().await;
    let resp = functions::handle(
        &state,
        &shared::routes::FAPI_JWKS,
        v2_event("GET", "/.well-known/jwks.json", "", None),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(json_body(&resp)["keys"][0]["kty"], "RSA");
}

#[tokio::test]
async fn cookie_from_the_event_is_verified_and_refused() {
    let state = state().await;
    let event = v2_event(
        "GET",
        "/v1/client/sessions/sess_abc",
        "__clerk_api_version=2026-05-12",
        None,
    );
    let resp = functions::handle(&state, &shared::routes::FAPI_SESSION_GET, event).await;
    assert_eq!(resp.status(), 401);
    let body = json_body(&resp);
    assert_eq!(body["errors"][0]["code"], "authentication_invalid");
    assert_eq!(body["clerk_trace_id"], "req-lambda-1");
}

#[tokio::test]
async fn a_function_does_not_serve_another_functions_route() {
    let state = state().await;
    let resp = functions::handle(
        &state,
        &shared::routes::FAPI_JWKS,
        v2_event("POST", "/v1/client", "", Some("")),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let resp = functions::handle(
        &state,
        &shared::routes::FAPI_CLIENT,
        v2_event("POST", "/v1/client", "_is_native=1", Some("")),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers().contains_key("authorization"),
        "native callers get the client token in Authorization"
    );
}

/// The configuration a function gets, on the embedded store in `data_file`.
fn function_config(data_file: &std::path::Path) -> shared::config::Config {
    let env: std::collections::BTreeMap<String, String> =
        testkit::fixtures::function_env(data_file)
            .into_iter()
            .collect();
    shared::config::Config::from_lookup(|k| env.get(k).cloned()).expect("config")
}

#[tokio::test]
async fn the_environment_function_opens_no_store() {
    // A database that cannot be opened: the functions that use the store fail to start;
    // the environment function never opens it.
    let db = testkit::stores::TempDatabase::new();
    db.open();
    // Below a file, not a directory.
    let unopenable = db.path().join("store.sqlite3");
    let unopenable = unopenable.as_path();
    assert!(
        (shared::routes::FAPI_SESSION_GET.start)(function_config(unopenable))
            .await
            .is_err()
    );
    let state = (shared::routes::FAPI_ENVIRONMENT.start)(function_config(unopenable))
        .await
        .expect("starts without a store");
    let event = v2_event("GET", "/v1/environment", "", None);
    let resp = functions::handle(&state, &shared::routes::FAPI_ENVIRONMENT, event).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(json_body(&resp)["auth_config"]["object"], "auth_config");
}

#[tokio::test]
async fn the_jwks_function_publishes_without_creating_private_keys() {
    let db = testkit::stores::TempDatabase::new();
    let config = || function_config(&db.path());
    // Before any signing function started: nothing to publish, and nothing created.
    let jwks = (shared::routes::FAPI_JWKS.start)(config())
        .await
        .expect("starts");
    let resp = functions::handle(
        &jwks,
        &shared::routes::FAPI_JWKS,
        v2_event("GET", "/.well-known/jwks.json", "", None),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(json_body(&resp)["keys"], json!([]));
    use shared::store::Store;
    assert!(db.open().keyring().await.expect("read").is_none());

    // A signing function creates the keyring; the JWKS function publishes its public key.
    let signer = (shared::routes::FAPI_SESSION_TOKENS.start)(config())
        .await
        .expect("starts");
    let kid = signer
        .keys()
        .signer(signer.now())
        .expect("a signing key")
        .kid()
        .to_string();
    let jwks = (shared::routes::FAPI_JWKS.start)(config())
        .await
        .expect("starts");
    let resp = functions::handle(
        &jwks,
        &shared::routes::FAPI_JWKS,
        v2_event("GET", "/.well-known/jwks.json", "", None),
    )
    .await;
    let keys = json_body(&resp)["keys"].clone();
    assert_eq!(keys.as_array().map(Vec::len), Some(1), "{keys}");
    assert_eq!(keys[0]["kid"], kid.as_str());
    assert!(keys[0].get("d").is_none(), "no private part: {keys}");
}
