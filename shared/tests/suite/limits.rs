//! Every limit of `shared::limits` and every reserved claim, refused on both APIs with a
//! ClerkErrors 4xx that names the parameter, and nothing changed by a refusal.

use base64::Engine;
use serde_json::{json, Map, Value};
use shared::domain::JwtTemplate;
use shared::limits::{
    HEADERS_MAX_BYTES, METADATA_MAX_BYTES, RENDERED_CLAIMS_MAX_BYTES, TEMPLATE_MAX_BYTES,
    TEMPLATE_MAX_DEPTH,
};
use shared::store::Write;
use testkit::app::*;

const KINDS: [&str; 3] = ["public_metadata", "private_metadata", "unsafe_metadata"];

/// A metadata object of exactly `bytes` bytes of compact JSON.
fn metadata_of(bytes: usize) -> Value {
    // {"blob":"…"} is 11 bytes around the value.
    json!({ "blob": "x".repeat(bytes - 11) })
}

/// A claims object of exactly `bytes` bytes of compact JSON.
fn claims_of(bytes: usize) -> Value {
    // {"pad":"…"} is 10 bytes around the value.
    json!({ "pad": "x".repeat(bytes - 10) })
}

/// Claims `depth` objects deep (the claims object included).
fn nested(depth: usize) -> Value {
    let mut v = json!("{{user.id}}");
    for _ in 0..depth {
        v = json!({ "a": v });
    }
    v
}

async fn user_with(app: &TestApp, body: Value) -> TestResponse {
    app.send(Req::post("/v1/users").secret().json(&body)).await
}

async fn get_user(app: &TestApp, id: &str) -> Value {
    app.send(Req::get(format!("/v1/users/{id}")).secret())
        .await
        .ok()
        .clone()
}

#[tokio::test]
async fn metadata_is_at_most_8_kb_per_kind_on_user_create() {
    let app = TestApp::new().await;
    for kind in KINDS {
        let at_limit = user_with(&app, json!({ kind: metadata_of(METADATA_MAX_BYTES) })).await;
        assert_eq!(at_limit.ok()[kind], metadata_of(METADATA_MAX_BYTES));
        user_with(&app, json!({ kind: metadata_of(METADATA_MAX_BYTES + 1) }))
            .await
            .assert_param_error(422, "form_param_value_invalid", kind);
    }
    // Each kind has its own 8 KB: all three full at once is fine.
    let all: Map<String, Value> = KINDS
        .iter()
        .map(|k| (k.to_string(), metadata_of(METADATA_MAX_BYTES)))
        .collect();
    user_with(&app, Value::Object(all)).await.ok();
}

#[tokio::test]
async fn metadata_is_at_most_8_kb_per_kind_on_user_update_and_a_refusal_changes_nothing() {
    let app = TestApp::new().await;
    let id = app.create_user().await;
    let before = get_user(&app, &id).await;
    let path = format!("/v1/users/{id}");
    for kind in KINDS {
        app.send(
            Req::new("PATCH", path.clone()).secret().json(
                &json!({ "first_name": "Changed", kind: metadata_of(METADATA_MAX_BYTES + 1) }),
            ),
        )
        .await
        .assert_param_error(422, "form_param_value_invalid", kind);
    }
    assert_eq!(
        get_user(&app, &id).await,
        before,
        "a refused update changes nothing"
    );

    let updated = app
        .send(Req::new("PATCH", path.clone()).secret().json(&json!({
            "last_name": null,
            "public_metadata": metadata_of(METADATA_MAX_BYTES),
        })))
        .await;
    let body = updated.ok();
    assert_eq!(body["public_metadata"], metadata_of(METADATA_MAX_BYTES));
    assert_eq!(body["last_name"], Value::Null);
    assert_eq!(body["first_name"], "Ada", "absent fields are kept");
    assert_eq!(body["private_metadata"], json!({"secret": 1}));
    assert_eq!(get_user(&app, &id).await, *body);

    app.send(
        Req::new("PATCH", "/v1/users/user_unknown")
            .secret()
            .json(&json!({})),
    )
    .await
    .assert_error(404, "resource_not_found");
    app.send(Req::new("PATCH", path.clone()).json(&json!({})))
        .await
        .assert_error(401, "authentication_invalid");
    app.send(
        Req::new("PATCH", path)
            .secret()
            .json(&json!({"username": "no"})),
    )
    .await
    .assert_param_error(422, "form_param_format_invalid", "username");
}

async fn template(app: &TestApp, body: Value) -> TestResponse {
    app.send(Req::post("/v1/jwt_templates").secret().json(&body))
        .await
}

#[tokio::test]
async fn template_size_depth_and_reserved_claims_are_refused_on_create_and_update() {
    let app = TestApp::new().await;
    let created = template(&app, json!({"name": "t", "claims": {"role": "user"}})).await;
    let id = created.ok()["id"].as_str().unwrap().to_string();
    let path = format!("/v1/jwt_templates/{id}");

    let bad: Vec<(Value, u16, &str)> = vec![
        (
            claims_of(TEMPLATE_MAX_BYTES + 1),
            422,
            "form_param_value_invalid",
        ),
        (
            nested(TEMPLATE_MAX_DEPTH + 1),
            422,
            "form_param_value_invalid",
        ),
        (
            json!({"sid": "sess_fake"}),
            400,
            "jwt_template_reserved_claim",
        ),
        (json!({"v": 2}), 400, "jwt_template_reserved_claim"),
        (json!({"sts": "active"}), 400, "jwt_template_reserved_claim"),
        (json!({"fva": [0, -1]}), 400, "jwt_template_reserved_claim"),
        (json!({"sub": "x"}), 400, "jwt_template_reserved_claim"),
    ];
    for (claims, status, code) in &bad {
        template(&app, json!({"name": "new", "claims": claims}))
            .await
            .assert_param_error(*status, code, "claims");
        // The dashboard's form: claims as a JSON string.
        template(&app, json!({"name": "new", "claims": claims.to_string()}))
            .await
            .assert_param_error(*status, code, "claims");
        app.send(
            Req::new("PATCH", path.clone())
                .secret()
                .json(&json!({"claims": claims})),
        )
        .await
        .assert_param_error(*status, code, "claims");
    }
    let list = app.send(Req::get("/v1/jwt_templates").secret()).await;
    assert_eq!(
        list.ok().as_array().map(Vec::len),
        Some(1),
        "nothing was created"
    );
    let kept = app.send(Req::get(path.clone()).secret()).await;
    assert_eq!(
        kept.ok()["claims"],
        json!({"role": "user"}),
        "nothing was updated"
    );

    // At the limits, both are fine.
    template(
        &app,
        json!({"name": "big", "claims": claims_of(TEMPLATE_MAX_BYTES)}),
    )
    .await
    .ok();
    app.send(
        Req::new("PATCH", path)
            .secret()
            .json(&json!({"claims": nested(TEMPLATE_MAX_DEPTH)})),
    )
    .await
    .ok();
}

fn header_of(jwt: &str) -> Value {
    let b64 = jwt.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A user with full public metadata, signed in natively: (client token, session id).
async fn heavy_session(app: &TestApp) -> (String, String) {
    let user = user_with(
        app,
        json!({"first_name": "Ada", "public_metadata": metadata_of(METADATA_MAX_BYTES)}),
    )
    .await;
    let user = user.ok()["id"].as_str().unwrap().to_string();
    app.native_sign_in("", &user).await
}

async fn mint_both(app: &TestApp, token: &str, sid: &str, name: &str) -> [TestResponse; 2] {
    let fapi = app
        .send(Req::post(session_path(sid, &format!("tokens/{name}"))).native(token))
        .await;
    let bapi = app
        .send(Req::post(format!("/v1/sessions/{sid}/tokens/{name}")).secret())
        .await;
    [fapi, bapi]
}

#[tokio::test]
async fn a_template_that_renders_too_much_is_refused_on_both_apis_and_changes_nothing() {
    let app = TestApp::new().await;
    let (token, sid) = heavy_session(&app).await;
    // The attack, as large as the limits let it be: the 8 KB metadata repeated
    // for as long as a template may be.
    let repeats = TEMPLATE_MAX_BYTES / 40;
    let claims: Map<String, Value> = (0..repeats)
        .map(|i| (format!("m{i}"), json!("{{user.public_metadata}}")))
        .collect();
    template(&app, json!({"name": "bomb", "claims": claims}))
        .await
        .ok();
    // One copy is already too much, as a whole value or inside text.
    template(
        &app,
        json!({"name": "one", "claims": {"m": "{{user.public_metadata}}"}}),
    )
    .await
    .ok();
    template(
        &app,
        json!({"name": "text", "claims": {"m": "x {{user.public_metadata}}"}}),
    )
    .await
    .ok();
    let before = app.stored_session(&sid).await;
    for name in ["bomb", "one", "text"] {
        for resp in mint_both(&app, &token, &sid, name).await {
            resp.assert_param_error(422, "jwt_template_claims_too_large", "claims");
        }
    }
    assert_eq!(
        app.stored_session(&sid).await,
        before,
        "nothing was recorded"
    );

    // What fits is minted, instance-signed with the template category header.
    let fits = RENDERED_CLAIMS_MAX_BYTES - 600;
    template(&app, json!({"name": "fits", "claims": claims_of(fits)}))
        .await
        .ok();
    for resp in mint_both(&app, &token, &sid, "fits").await {
        let jwt = resp.ok()["jwt"].as_str().unwrap().to_string();
        assert!(jwt.len() < 4096, "a token fits in a cookie: {}", jwt.len());
        assert_eq!(header_of(&jwt)["cat"], "cl_B7d4PD222AAA");
    }
}

#[tokio::test]
async fn a_stored_template_with_session_claims_never_mints_them() {
    let app = TestApp::new().await;
    let (token, sid, user) = app.native_session().await;
    // A template saved before sid, v, sts and fva were reserved.
    let claims: Map<String, Value> = serde_json::from_value(json!({
        "sid": "sess_fake", "v": 2, "sts": "active", "fva": [0, -1], "role": "user"
    }))
    .unwrap();
    let old = JwtTemplate {
        id: "jtmp_old".into(),
        name: "old".into(),
        claims,
        lifetime: 60,
        allowed_clock_skew: 5,
        custom_signing_key: false,
        signing_algorithm: shared::domain::SigningAlgorithm::RS256,
        signing_key: None,
        created_at: START_MS,
        updated_at: START_MS,
        version: 1,
    };
    app.store
        .commit(vec![Write::jwt_template(old)])
        .await
        .unwrap();
    for resp in mint_both(&app, &token, &sid, "old").await {
        let jwt = resp.ok()["jwt"].as_str().unwrap().to_string();
        let claims = jwt_claims(&jwt);
        for reserved in ["sid", "v", "sts", "fva"] {
            assert!(claims.get(reserved).is_none(), "{reserved} in {claims}");
        }
        assert_eq!(claims["role"], "user");
        assert_eq!(claims["sub"], user.as_str());
        assert_eq!(header_of(&jwt)["cat"], "cl_B7d4PD222AAA");
    }
    // Session tokens carry no template category.
    let session_jwt = app
        .send(Req::post(session_path(&sid, "tokens")).native(&token))
        .await;
    let header = header_of(session_jwt.ok()["jwt"].as_str().unwrap());
    assert_ne!(header["cat"], "cl_B7d4PD222AAA");
}

#[tokio::test]
async fn request_bodies_and_headers_are_bounded_on_both_apis() {
    let app = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    let big_header = "x".repeat(HEADERS_MAX_BYTES);
    let requests = [
        Req::post(session_path(&sid, "tokens")).native(&token),
        Req::post("/v1/users").secret(),
    ];
    for req in requests {
        app.send(req.header("x-padding", &big_header))
            .await
            .assert_error(431, "request_header_fields_too_large");
    }
    let big_body = vec![b'a'; shared::http::request::MAX_BODY_BYTES + 1];
    app.send(
        Req::post(session_path(&sid, "tokens"))
            .native(&token)
            .raw_body("application/x-www-form-urlencoded", &big_body),
    )
    .await
    .assert_error(413, "request_body_too_large");
    app.send(
        Req::post("/v1/users")
            .secret()
            .raw_body("application/json", &big_body),
    )
    .await
    .assert_error(413, "request_body_too_large");
}

#[tokio::test]
async fn behind_a_cdn_requests_without_its_secret_are_refused() {
    let secret = "edge-secret-0123456789-0123456789-abc";
    let app = TestApp::with_env(&[("ORIGIN_VERIFY_SECRET", secret)]).await;
    for req in [
        Req::get("/v1/environment"),
        Req::get("/v1/environment").header("x-origin-verify", "wrong"),
        Req::post("/v1/users").secret().json(&json!({})),
    ] {
        app.send(req)
            .await
            .assert_error(403, "authorization_invalid");
    }
    app.send(Req::get("/v1/environment").header("x-origin-verify", secret))
        .await
        .ok();
    app.send(
        Req::post("/v1/users")
            .secret()
            .header("x-origin-verify", secret)
            .json(&json!({})),
    )
    .await
    .ok();
    // Without the setting (the default, and the local server), nothing is asked.
    TestApp::new()
        .await
        .send(Req::get("/v1/environment"))
        .await
        .ok();
}
