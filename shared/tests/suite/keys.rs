//! The keyring end to end on both stores: cold starts that race create one keyring,
//! tokens verify across a rotation until the old key is gone, client tokens are re-signed
//! with the new secret, bad client tokens never lock a caller out, and on DynamoDB the
//! private material is stored only as KMS ciphertext. Time moves on the injected clock.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use shared::clock::ManualClock;
use shared::keyring::Sealer;
use shared::state::{AppState, KeyAccess};
use shared::store::{SqliteStore, Store};
use testkit::app::*;
use testkit::stores;

testkit::each_store!(
    cold_starts_that_race_create_one_keyring,
    tokens_verify_across_a_rotation_until_the_old_key_is_gone,
    client_tokens_survive_a_rotation_and_are_re_signed,
    an_emergency_rotation_drops_the_old_keys_at_once,
    tokens_minted_in_the_window_never_outlive_their_key,
);

fn header(jwt: &str) -> Value {
    let part = jwt.split('.').next().expect("header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64")).expect("JSON")
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_string())
        .collect()
}

/// Verifies `jwt` against `jwks` the way a networkless verifier would: by its `kid`.
/// (Expiry is not checked: the injected clock is not the system clock.)
fn verify(jwt: &str, jwks: &Value) -> Result<Value, String> {
    let kid = header(jwt)["kid"].as_str().unwrap_or_default().to_string();
    let jwk = jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| k["kid"] == kid.as_str())
        .ok_or_else(|| format!("kid {kid} is not in the JWKS"))?;
    let key = DecodingKey::from_rsa_components(
        jwk["n"].as_str().unwrap_or_default(),
        jwk["e"].as_str().unwrap_or_default(),
    )
    .map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims::<&str>(&[]);
    jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

async fn rotate(app: &TestApp, body: Value) -> TestResponse {
    app.send(Req::post("/v1/instance/keys/rotate").secret().json(&body))
        .await
}

async fn jwks(app: &TestApp) -> Value {
    let resp = app.send(Req::get("/.well-known/jwks.json")).await;
    assert_eq!(resp.status, 200);
    resp.body
}

async fn cold_starts_that_race_create_one_keyring(store: Arc<dyn Store>) {
    let starts = (0..6).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let clock = Arc::new(ManualClock::new(START_MS));
            let state = AppState::new(test_config(&[]), store, clock)
                .await
                .expect("state");
            state
                .keys()
                .signer(START_MS)
                .expect("signer")
                .kid()
                .to_string()
        })
    });
    let mut kids = Vec::new();
    for start in starts {
        kids.push(start.await.expect("start"));
    }
    kids.dedup();
    assert_eq!(kids.len(), 1, "every start uses the one keyring");
    let stored = store.keyring().await.unwrap().expect("keyring");
    assert_eq!(stored.version, 1);
    assert_eq!(stored.signing_keys.len(), 1);
    assert_eq!(stored.signing_keys[0].kid, kids[0]);
}

async fn tokens_verify_across_a_rotation_until_the_old_key_is_gone(store: Arc<dyn Store>) {
    let app = TestApp::with_store(test_config(&[]), Arc::clone(&store)).await;
    let (token, sid, _) = app.native_session().await;
    let created = app
        .send(
            Req::post("/v1/jwt_templates")
                .secret()
                .json(&json!({"name": "api", "claims": {"aud": "api"}, "lifetime": 120})),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let mint = |path: &'static str| {
        let app = &app;
        let token = token.clone();
        let sid = sid.clone();
        async move {
            let resp = app
                .send(Req::post(session_path(&sid, path)).native(&token))
                .await;
            assert_eq!(resp.status, 200, "{}", resp.body);
            resp.body["jwt"].as_str().expect("jwt").to_string()
        }
    };
    let old_session = mint("tokens").await;
    let old_template = mint("tokens/api").await;
    let old_kid = header(&old_session)["kid"].as_str().unwrap().to_string();
    assert_eq!(header(&old_session)["cat"], "cl_B7d4PD111AAA");
    assert_eq!(header(&old_template)["cat"], "cl_B7d4PD222AAA");

    let rotated = rotate(&app, json!({})).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let keys = &rotated.ok()["session_signing_keys"];
    assert_eq!(keys[0]["state"], "current");
    assert_eq!(keys[1]["state"], "next");
    let new_kid = keys[1]["kid"].as_str().unwrap().to_string();
    assert!(!rotated.body.to_string().contains("material"));
    // Networkless verifiers can take the next key's PEM before it signs.
    assert!(keys[1]["public_key_pem"]
        .as_str()
        .is_some_and(|p| p.starts_with("-----BEGIN PUBLIC KEY-----")));
    // A second rotation waits for the first.
    rotate(&app, json!({}))
        .await
        .assert_error(409, "key_rotation_pending");

    // Published first, both documents, cacheable for exactly the window.
    let published = app.send(Req::get("/.well-known/jwks.json")).await;
    assert_eq!(
        published.header("cache-control"),
        Some("public, max-age=300")
    );
    assert_eq!(kids(&published.body), [old_kid.clone(), new_kid.clone()]);
    let backend = app.send(Req::get("/v1/jwks").secret()).await;
    assert_eq!(kids(&backend.body), [old_kid.clone(), new_kid.clone()]);
    // A process that only publishes (the JWKS function) reads the same from the store.
    let public_only = AppState::build(
        test_config(&[]),
        Arc::clone(&store),
        app.clock.clone(),
        Sealer::Plain,
        KeyAccess::Public,
    )
    .await
    .expect("public state");
    assert_eq!(
        kids(&public_only.keys().jwks(app.now_ms())),
        [old_kid.clone(), new_kid.clone()]
    );
    assert!(public_only.keys().signer(app.now_ms()).is_err());

    // Within the window the old key still signs.
    app.clock.advance_secs(299);
    assert_eq!(header(&mint("tokens").await)["kid"], old_kid.as_str());
    // After it, the new one; tokens of both keys verify.
    app.clock.advance_secs(1);
    let new_session = mint("tokens").await;
    let new_template = mint("tokens/api").await;
    assert_eq!(header(&new_session)["kid"], new_kid.as_str());
    assert_eq!(header(&new_template)["kid"], new_kid.as_str());
    let now = jwks(&app).await;
    for jwt in [&old_session, &old_template, &new_session, &new_template] {
        verify(jwt, &now).expect("verifies");
    }
    // The old key stays until the longest lifetime in use (the template's 120 s) has
    // passed, with the verifiers' skew and one refresh interval: 120 + 5 + 60 s.
    app.clock.advance_secs(184);
    verify(&old_template, &jwks(&app).await).expect("still published");
    app.clock.advance_secs(1);
    let after = jwks(&app).await;
    assert_eq!(kids(&after), std::slice::from_ref(&new_kid));
    assert!(verify(&old_template, &after).is_err());
    verify(&new_template, &after).expect("new key verifies");
    let listed = app.send(Req::get("/v1/instance/keys").secret()).await;
    assert_eq!(
        listed.ok()["session_signing_keys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn client_tokens_survive_a_rotation_and_are_re_signed(store: Arc<dyn Store>) {
    let app = TestApp::with_store(test_config(&[]), store).await;
    let (native, sid, _) = app.native_session().await;
    let (cookie, _, _) = app.browser_session().await;
    let old_secret = header(&native)["kid"].as_str().unwrap().to_string();

    let rotated = rotate(&app, json!({"keys": "client_token"})).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_eq!(
        rotated.ok()["session_signing_keys"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "signing keys are left alone"
    );
    app.clock.advance_secs(300);

    // Both transports keep working and get their token back signed with the new secret.
    let resp = app
        .send(Req::post(session_path(&sid, "touch")).native(&native))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let renewed = resp
        .header("authorization")
        .expect("re-signed token")
        .to_string();
    assert_ne!(header(&renewed)["kid"], old_secret.as_str());
    let resp = app.send(Req::get("/v1/client").cookie(&cookie)).await;
    assert_eq!(resp.status, 200);
    let renewed_cookie = resp.cookie("__client").expect("re-signed cookie");
    assert_ne!(header(&renewed_cookie)["kid"], old_secret.as_str());
    assert!(!resp.body["response"]["sessions"]
        .as_array()
        .unwrap()
        .is_empty());

    // The new tokens name the same client, and need no re-signing.
    let resp = app
        .send(Req::post(session_path(&sid, "tokens")).native(&renewed))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.header("authorization"), None);
    // The old token still verifies while its secret retires, and names the same client.
    let client_id = {
        let part = native.split('.').nth(1).expect("payload");
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
        claims["id"].clone()
    };
    let resp = app.send(Req::get("/v1/client").native(&native)).await;
    assert_eq!(resp.ok()["response"]["id"], client_id);
    assert!(resp.header("authorization").is_some());
}

async fn an_emergency_rotation_drops_the_old_keys_at_once(store: Arc<dyn Store>) {
    let app = TestApp::with_store(test_config(&[]), store).await;
    let (native, sid, _) = app.native_session().await;
    let (cookie, _, _) = app.browser_session().await;
    let old_kid = app
        .state
        .keys()
        .signer(app.now_ms())
        .unwrap()
        .kid()
        .to_string();

    let rotated = rotate(&app, json!({"keys": "all", "emergency": true})).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let keys = &rotated.ok()["session_signing_keys"];
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert_eq!(keys[0]["state"], "current");
    assert!(!kids(&jwks(&app).await).contains(&old_kid));

    // Every client token is now foreign: endpoints that need a client answer 401 and
    // clear the cookie; `GET /v1/client` starts over with a new client and token.
    app.send(Req::post(session_path(&sid, "tokens")).native(&native))
        .await
        .assert_error(401, "authentication_invalid");
    let resp = app
        .send(Req::post(session_path(&sid, "touch")).cookie(&cookie))
        .await;
    resp.assert_error(401, "authentication_invalid");
    assert!(resp
        .cookie_line("__client")
        .is_some_and(|l| l.starts_with("__client=;") && l.contains("Max-Age=0")));
    let resp = app.send(Req::get("/v1/client").cookie(&cookie)).await;
    assert_eq!(resp.status, 200);
    assert!(resp.body["response"]["id"].is_string());
    let fresh = resp.cookie("__client").expect("new cookie");
    let again = app.send(Req::get("/v1/client").cookie(&fresh)).await;
    assert_eq!(again.body["response"]["id"], resp.body["response"]["id"]);
}

/// A `__client` cookie from another instance, an expired one, or several at once: the
/// browser is never locked out.
#[tokio::test]
async fn foreign_expired_and_repeated_cookies_never_lock_a_browser_out() {
    let app = TestApp::new().await;
    let other = TestApp::new().await;
    let foreign = other.browser_client().await;

    for path in ["/v1/client", "/v1/client?_clerk_js_version=5"] {
        let resp = app.send(Req::get(path).cookie(&foreign)).await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        assert!(resp.body["response"]["id"].is_string(), "a new client");
        let fresh = resp.cookie("__client").expect("a fresh cookie");
        let again = app.send(Req::get("/v1/client").cookie(&fresh)).await;
        assert_eq!(again.body["response"]["id"], resp.body["response"]["id"]);
        assert_eq!(again.cookie("__client"), None);
    }
    let resp = app.send(Req::post("/v1/client").cookie(&foreign)).await;
    assert_eq!(resp.status, 200);
    assert!(resp.cookie("__client").is_some());

    // A sign-in with a foreign cookie signs in on a new client.
    let user = app.create_user().await;
    let ticket = app.ticket(&user).await;
    let resp = app
        .send(
            Req::post("/v1/client/sign_ins")
                .cookie(&foreign)
                .form(&format!("strategy=ticket&ticket={ticket}")),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let mine = resp.cookie("__client").expect("cookie");

    // Several `__client` cookies: the first that verifies wins, wherever it is.
    let both = format!("__client={foreign}; __client={mine}");
    let resp = app
        .send(Req::get("/v1/client").header("cookie", &both))
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.body["response"]["sessions"].as_array().unwrap().len(),
        1
    );
    assert_eq!(resp.cookie("__client"), None, "nothing to fix");

    // An expired cookie starts over too.
    app.clock.advance_secs(366 * 24 * 3600);
    let resp = app.send(Req::get("/v1/client").cookie(&mine)).await;
    assert_eq!(resp.status, 200);
    assert!(resp.body["response"]["sessions"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(resp.cookie("__client").is_some());
}

/// On the embedded store's database the keyring is written with the rest, in files only
/// their owner reads (the database, its WAL and shared-memory files).
#[tokio::test]
async fn the_database_is_private() {
    let db = testkit::stores::TempDatabase::new();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db.path()).expect("open"));
    let app = TestApp::with_store(test_config(&[]), store).await;
    assert!(app.state.keys().signer(app.now_ms()).is_ok());
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let file = format!("{}{suffix}", db.path().display());
        let mode = std::fs::metadata(&file)
            .expect("database file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    drop(app);
}

/// On DynamoDB with a KMS key (moto's, started by the test command), the table holds only
/// ciphertext: no private key or secret appears in any item, in any encoding.
#[tokio::test]
async fn dynamodb_items_hold_only_kms_ciphertext() {
    let Some(store) = stores::dynamodb().await else {
        return;
    };
    let endpoint = stores::dynamodb_endpoint().expect("endpoint");
    let kms_endpoint = std::env::var("AWS_ENDPOINT_URL_KMS").unwrap_or(endpoint.clone());
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&kms_endpoint)
        .load()
        .await;
    let kms = aws_sdk_kms::Client::new(&config);
    let key_id = kms
        .create_key()
        .send()
        .await
        .expect("KMS key")
        .key_metadata
        .expect("metadata")
        .key_id;
    let sealer = Sealer::Kms {
        client: kms,
        key_id: key_id.clone(),
    };
    let clock = Arc::new(ManualClock::new(START_MS));
    let dyn_store: Arc<dyn Store> = store.clone();
    let state = AppState::build(
        test_config(&[]),
        Arc::clone(&dyn_store),
        clock,
        sealer.clone(),
        KeyAccess::Private,
    )
    .await
    .expect("state");
    shared::keyring::service::rotate(&state, Default::default())
        .await
        .expect("rotation");

    // Every secret in plaintext, as the process opened it.
    let record = dyn_store.keyring().await.unwrap().expect("keyring");
    let mut secrets = Vec::new();
    for key in record
        .signing_keys
        .iter()
        .chain(&record.client_token_secrets)
    {
        assert!(matches!(key.sealed, shared::keyring::Sealed::Kms { .. }));
        secrets.push(sealer.open(&key.kid, &key.sealed).await.expect("opens"));
    }
    assert_eq!(secrets.len(), 4);
    // Without the KMS key the material cannot be opened.
    assert!(Sealer::Plain
        .open(&record.signing_keys[0].kid, &record.signing_keys[0].sealed)
        .await
        .is_err());

    let dynamodb = aws_sdk_dynamodb::Client::new(
        &aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .load()
            .await,
    );
    let items = dynamodb
        .scan()
        .table_name(store.table_name())
        .send()
        .await
        .expect("scan")
        .items
        .unwrap_or_default();
    assert!(items.len() >= 2);
    let raw = format!("{items:?}");
    for secret in &secrets {
        for encoded in [
            base64::engine::general_purpose::STANDARD.encode(secret),
            URL_SAFE_NO_PAD.encode(secret),
            secret
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        ] {
            assert!(
                !raw.contains(&encoded[..40]),
                "plaintext key material in the table"
            );
        }
    }
}

/// A template created (or a Backend API lifetime asked for) after a rotation, while the old
/// key still signs, cannot make that key sign a token that outlives its publication: the
/// token ends when the key does.
async fn tokens_minted_in_the_window_never_outlive_their_key(store: Arc<dyn Store>) {
    let app = TestApp::with_store(test_config(&[]), store).await;
    let (token, sid, _) = app.native_session().await;
    let rotated = rotate(&app, json!({"keys": "session_signing"})).await;
    let old = &rotated.ok()["session_signing_keys"][0];
    let remove_at = old["remove_at"].as_i64().expect("removal scheduled");
    let created = app
        .send(
            Req::post("/v1/jwt_templates")
                .secret()
                .json(&json!({"name": "long", "claims": {}, "lifetime": 3600})),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let exp = |jwt: &str| {
        let part = jwt.split('.').nth(1).expect("payload");
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
        claims["exp"].as_i64().expect("exp") * 1000
    };
    let fapi = app
        .send(Req::post(session_path(&sid, "tokens/long")).native(&token))
        .await;
    let jwt = fapi.ok()["jwt"].as_str().unwrap().to_string();
    assert_eq!(header(&jwt)["kid"], old["kid"]);
    assert!(
        exp(&jwt) <= remove_at - 5_000,
        "capped at the key's removal"
    );
    let bapi = app
        .send(
            Req::post(format!("/v1/sessions/{sid}/tokens/long"))
                .secret()
                .json(&json!({"expires_in_seconds": 86400})),
        )
        .await;
    let jwt = bapi.ok()["jwt"].as_str().unwrap().to_string();
    assert!(exp(&jwt) <= remove_at - 5_000);
    // Session tokens are never shortened: the removal already allows for them.
    let session = app
        .send(Req::post(session_path(&sid, "tokens")).native(&token))
        .await;
    let jwt = session.ok()["jwt"].as_str().unwrap().to_string();
    assert_eq!(exp(&jwt) - app.now_ms() / 1000 * 1000, 60_000);
    // Once the new key signs, the template's full lifetime is back.
    app.clock.advance_secs(300);
    let fapi = app
        .send(Req::post(session_path(&sid, "tokens/long")).native(&token))
        .await;
    let jwt = fapi.ok()["jwt"].as_str().unwrap().to_string();
    assert_eq!(exp(&jwt) - app.now_ms() / 1000 * 1000, 3_600_000);
}
