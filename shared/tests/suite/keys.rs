//! The keyring end to end on both stores: cold starts that race create one keyring,
//! tokens verify across a rotation until the old key is gone, client tokens are re-signed
//! with the new secret, bad client tokens never lock a caller out, and on DynamoDB the
//! private material is stored only as KMS ciphertext; on the embedded store it is sealed
//! with the local key-encryption key (and plain material of earlier versions is sealed
//! when opened). Time moves on the injected clock.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use shared::clock::ManualClock;
use shared::keyring::service::KeyAccess;
use shared::keyring::Sealer;
use shared::state::AppState;
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
    shared::app::keys::rotate(&state, Default::default())
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

// The embedded store's keys at rest: sealed with the local key-encryption key.

/// The configuration of a process on the database at `path` (the local key-encryption key
/// from its key file unless `extra` sets one).
fn on_database(path: &std::path::Path, extra: &[(&str, &str)]) -> shared::config::Config {
    let path = path.to_string_lossy().to_string();
    let mut settings = vec![("EMBEDDED_STORE_PATH", path.as_str()), ("WEBHOOKS", "on")];
    settings.extend_from_slice(extra);
    test_config(&settings)
}

/// Everything the database's files hold, as text (the database and its WAL, pages of
/// old versions included).
fn raw_files(path: &std::path::Path) -> String {
    ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::read(format!("{}{suffix}", path.display())).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .collect()
}

/// Every secret the keyring and the webhook endpoints of `store` hold, opened with
/// `sealer`: (kid, base64 of the material), and every sealing scheme seen.
async fn secrets_at_rest(
    store: &dyn Store,
    sealer: &Sealer,
) -> (Vec<(String, String)>, Vec<String>) {
    use base64::engine::general_purpose::STANDARD;
    let keyring = store.keyring().await.unwrap().expect("keyring");
    let mut sealed: Vec<(String, shared::keyring::Sealed)> = keyring
        .signing_keys
        .iter()
        .chain(&keyring.client_token_secrets)
        .map(|k| (k.kid.clone(), k.sealed.clone()))
        .collect();
    for e in store.list_webhook_endpoints().await.unwrap() {
        sealed.push((e.id.clone(), e.secret.clone()));
    }
    let mut opened = Vec::new();
    let mut schemes = Vec::new();
    for (kid, s) in sealed {
        let json = serde_json::to_value(&s).unwrap();
        schemes.push(json["scheme"].as_str().unwrap().to_string());
        opened.push((
            kid.clone(),
            STANDARD.encode(sealer.open(&kid, &s).await.unwrap()),
        ));
    }
    (opened, schemes)
}

/// A new database holds no plain key material: the keyring's keys and a webhook
/// endpoint's secret are sealed with the local key (AES-256-GCM), whose file beside the
/// database is mode 0600; neither the material nor a "plain" scheme is anywhere in the
/// database's files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_database_holds_no_plain_key_material() {
    let db = stores::TempDatabase::new();
    let app = TestApp::with_system_clock(on_database(&db.path(), &[]), db.open()).await;
    let created = app
        .send(
            Req::post("/v1/webhooks/endpoints")
                .secret()
                .json(&json!({"url": "https://hooks.example.com/clerk"})),
        )
        .await;
    let webhook_secret = created.ok()["secret"].as_str().unwrap().to_string();
    app.store.flush().await.unwrap();

    let key_file = shared::keyring::local_kek::key_file(&db.path());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is private");
    }
    let kek = shared::keyring::local_kek::resolve(&db.path(), None, false).unwrap();
    let sealer = Sealer::Local(kek);
    let (secrets, schemes) = secrets_at_rest(app.store.as_ref(), &sealer).await;
    assert_eq!(
        secrets.len(),
        3,
        "a signing key, a client-token secret, an endpoint"
    );
    assert!(schemes.iter().all(|s| s == "local"), "{schemes:?}");

    let files = raw_files(&db.path());
    assert!(!files.contains("\"plain\""), "no plain scheme stored");
    for (kid, material) in &secrets {
        assert!(
            !files.contains(material.as_str()),
            "{kid}'s material is stored"
        );
    }
    assert!(!files.contains(&webhook_secret["whsec_".len()..]));
    let key_text = std::fs::read_to_string(&key_file).unwrap();
    assert!(
        !files.contains(key_text.trim()),
        "the key is not in the database"
    );
}

/// A database an earlier version wrote (its keys and webhook secrets plain) is sealed
/// with the local key when a process opens it, and keeps its keys: a session token and a
/// client cookie made before verify after, and the endpoint's secret is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_with_plain_material_is_sealed_when_opened_and_keeps_its_keys() {
    let db = stores::TempDatabase::new();
    // As an earlier version: the same database, material stored plain.
    let before = TestApp::with_system_clock(test_config(&[("WEBHOOKS", "on")]), db.open()).await;
    let (cookie, sid, _) = before.browser_session().await;
    let minted = before
        .send(Req::post(session_path(&sid, "tokens")).cookie(&cookie))
        .await;
    let token = minted.ok()["jwt"].as_str().unwrap().to_string();
    let created = before
        .send(
            Req::post("/v1/webhooks/endpoints")
                .secret()
                .json(&json!({"url": "https://hooks.example.com/clerk"})),
        )
        .await;
    let webhook_secret = created.ok()["secret"].as_str().unwrap().to_string();
    let (plain_secrets, plain_schemes) =
        secrets_at_rest(before.store.as_ref(), &Sealer::Plain).await;
    assert!(plain_schemes.iter().all(|s| s == "plain"));
    let version_before = before.store.keyring().await.unwrap().unwrap().version;
    before.store.flush().await.unwrap();
    drop(before);

    let after = TestApp::with_system_clock(on_database(&db.path(), &[]), db.open()).await;
    let kek = shared::keyring::local_kek::resolve(&db.path(), None, false).unwrap();
    let (secrets, schemes) = secrets_at_rest(after.store.as_ref(), &Sealer::Local(kek)).await;
    assert!(schemes.iter().all(|s| s == "local"), "{schemes:?}");
    assert_eq!(secrets, plain_secrets, "the same keys, sealed");
    let keyring = after.store.keyring().await.unwrap().unwrap();
    assert_eq!(keyring.version, version_before + 1, "one conditional write");

    // The same keys serve: the token verifies, the cookie is the same client's.
    let claims = verify(&token, &jwks(&after).await).expect("verifies after");
    assert_eq!(claims["sid"], sid.as_str());
    let client = after.send(Req::get("/v1/client").cookie(&cookie)).await;
    assert_eq!(client.ok()["response"]["sessions"][0]["id"], sid.as_str());
    let (_, endpoint_secret) = secrets.last().unwrap();
    assert_eq!(endpoint_secret.as_str(), &webhook_secret["whsec_".len()..]);

    // Opened again, nothing is left to seal: no further write.
    drop(after);
    let again = TestApp::with_system_clock(on_database(&db.path(), &[]), db.open()).await;
    let version = again.store.keyring().await.unwrap().unwrap().version;
    assert_eq!(version, version_before + 1);
}

/// A missing key file, another key, a key file others may read, or a malformed
/// `LOCAL_KEY_ENCRYPTION_KEY` stop the start with an error that says so (no panic, no new
/// key over a database sealed with another).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_wrong_or_exposed_key_stops_the_start_with_a_clear_error() {
    let db = stores::TempDatabase::new();
    let clock = Arc::new(shared::clock::SystemClock);
    let start = |extra: &[(&str, &str)]| {
        let config = on_database(&db.path(), extra);
        let store = db.open();
        let clock = clock.clone();
        async move {
            AppState::new(config, store, clock)
                .await
                .err()
                .map(|e| e.to_string())
        }
    };
    assert_eq!(start(&[]).await, None, "the first start makes the key");
    let key_file = shared::keyring::local_kek::key_file(&db.path());
    let kept = db.path().with_extension("kek-kept");
    std::fs::rename(&key_file, &kept).unwrap();

    let missing = start(&[]).await.expect("refused");
    assert!(missing.contains("is missing"), "{missing}");
    assert!(!key_file.exists(), "no new key over a sealed database");

    let other = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let wrong = start(&[("LOCAL_KEY_ENCRYPTION_KEY", &other)])
        .await
        .expect("refused");
    assert!(
        wrong.contains("sealed with local key-encryption key kek_"),
        "{wrong}"
    );

    std::fs::rename(&kept, &key_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let exposed = start(&[]).await.expect("refused");
        assert!(exposed.contains("may be read by others"), "{exposed}");
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert_eq!(start(&[]).await, None, "its own key opens it again");

    let malformed = shared::config::Config::from_lookup(|k| {
        (k == "LOCAL_KEY_ENCRYPTION_KEY")
            .then(|| "c2hvcnQ=".to_string())
            .or_else(|| (k == "FRONTEND_API_URL").then(|| FAPI_URL.to_string()))
    })
    .expect_err("refused")
    .to_string();
    assert!(
        malformed.contains("LOCAL_KEY_ENCRYPTION_KEY"),
        "{malformed}"
    );
}
