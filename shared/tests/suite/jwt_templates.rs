//! JWT templates through the Backend API (management) and both APIs (minting), with the
//! tokens verified by an independent verifier (jsonwebtoken) per algorithm.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING,
};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use testkit::app::*;

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// (private PEM, public PEM) for an algorithm family.
fn rsa_pair() -> (String, String) {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let private: Pkcs8V1Der = pair.as_der().unwrap();
    let public: PublicKeyX509Der = pair.public_key().as_der().unwrap();
    (
        pem("PRIVATE KEY", private.as_ref()),
        pem("PUBLIC KEY", public.as_ref()),
    )
}

fn ec_pair(p384: bool) -> (String, String) {
    let alg = if p384 {
        &ECDSA_P384_SHA384_FIXED_SIGNING
    } else {
        &ECDSA_P256_SHA256_FIXED_SIGNING
    };
    let pair = EcdsaKeyPair::generate(alg).unwrap();
    let private = pair.to_pkcs8v1().unwrap();
    let public: PublicKeyX509Der = pair.public_key().as_der().unwrap();
    (
        pem("PRIVATE KEY", private.as_ref()),
        pem("PUBLIC KEY", public.as_ref()),
    )
}

const HMAC_SECRET: &str = "a-shared-secret-of-at-least-32-characters!";

fn decode(jwt: &str, key: &DecodingKey, alg: Algorithm) -> (jsonwebtoken::Header, Value) {
    let mut v = Validation::new(alg);
    // The harness clock is not the system clock: check exp/nbf by hand.
    v.validate_exp = false;
    v.validate_nbf = false;
    v.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Value>(jwt, key, &v).expect("verifies");
    (data.header, data.claims)
}

async fn jwks_key(app: &TestApp) -> DecodingKey {
    let jwks = app.send(Req::get("/.well-known/jwks.json")).await.body;
    let k = &jwks["keys"][0];
    DecodingKey::from_rsa_components(k["n"].as_str().unwrap(), k["e"].as_str().unwrap()).unwrap()
}

async fn create(app: &TestApp, body: Value) -> TestResponse {
    app.send(Req::post("/v1/jwt_templates").secret().json(&body))
        .await
}

/// A template as written for Clerk (Hasura's example plus the documented shortcodes).
fn clerk_template() -> Value {
    json!({
        "name": "hasura",
        "claims": {
            "https://hasura.io/jwt/claims": {
                "x-hasura-user-id": "{{user.id}}",
                "x-hasura-default-role": "{{user.public_metadata.role || 'user'}}",
                "x-hasura-allowed-roles": ["user", "admin"]
            },
            "name": "{{user.full_name}}",
            "greeting": "Hello {{user.first_name}} {{user.middle_name}}",
            "email": "{{user.primary_email_address}}",
            "verified": "{{user.email_verified}}",
            "plan": "{{user.public_metadata.plan}}",
            "meta": "{{user.public_metadata}}",
            "created": "{{user.created_at}}",
            "org": "{{org.id}}",
            "actor": "{{session.actor}}"
        },
        "lifetime": 300,
        "allowed_clock_skew": 10
    })
}

#[tokio::test]
async fn a_clerk_template_mints_the_same_claims_through_both_apis() {
    let app = TestApp::new().await;
    let created = create(&app, clerk_template()).await;
    let t = created.ok().clone();
    assert_eq!(t["object"], "jwt_template");
    assert_eq!(
        (t["lifetime"].as_u64(), t["allowed_clock_skew"].as_u64()),
        (Some(300), Some(10))
    );
    assert_eq!(
        (
            t["custom_signing_key"].as_bool(),
            t["signing_algorithm"].as_str()
        ),
        (Some(false), Some("RS256"))
    );

    let (token, sid, user) = app.native_session().await;
    let fapi = app
        .send(
            Req::post(session_path(&sid, "tokens/hasura"))
                .native(&token)
                .header("origin", APP_ORIGIN),
        )
        .await;
    let bapi = app
        .send(Req::post(format!("/v1/sessions/{sid}/tokens/hasura")).secret())
        .await;
    let key = jwks_key(&app).await;
    let kid = app.send(Req::get("/v1/jwks").secret()).await.body["keys"][0]["kid"].clone();
    let (header, claims) = decode(fapi.ok()["jwt"].as_str().unwrap(), &key, Algorithm::RS256);
    let (_, bapi_claims) = decode(bapi.ok()["jwt"].as_str().unwrap(), &key, Algorithm::RS256);
    assert_eq!(
        json!(header.kid),
        kid,
        "signed with the instance key, verifiable with the JWKS"
    );

    let expected = json!({
        "https://hasura.io/jwt/claims": {"x-hasura-user-id": user, "x-hasura-default-role": "user", "x-hasura-allowed-roles": ["user", "admin"]},
        "name": "Ada Lovelace",
        "greeting": "Hello Ada null",
        "email": "ada@example.com",
        "verified": true,
        "plan": "pro",
        "meta": {"plan": "pro"},
        "created": START_MS / 1000,
        "org": null,
        "actor": null,
    });
    let now = START_MS / 1000;
    for (claims, azp) in [(&claims, Some(APP_ORIGIN)), (&bapi_claims, None)] {
        for (k, v) in expected.as_object().unwrap() {
            assert_eq!(&claims[k], v, "claim {k}");
        }
        assert_eq!(claims["sub"], user.as_str());
        assert_eq!(claims["iss"], FAPI_URL);
        assert_eq!(claims["iat"], now);
        assert_eq!(claims["exp"], now + 300);
        assert_eq!(claims["nbf"], now - 10);
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
        assert_eq!(claims.get("azp").and_then(Value::as_str), azp);
        assert!(
            claims.get("sid").is_none() && claims.get("v").is_none(),
            "template tokens carry no sid or v"
        );
    }

    // The Backend API may shorten or lengthen the lifetime.
    let short = app
        .send(
            Req::post(format!("/v1/sessions/{sid}/tokens/hasura"))
                .secret()
                .json(&json!({"expires_in_seconds": 120})),
        )
        .await;
    let (_, c) = decode(short.ok()["jwt"].as_str().unwrap(), &key, Algorithm::RS256);
    assert_eq!(c["exp"], now + 120);
    app.send(
        Req::post(format!("/v1/sessions/{sid}/tokens/hasura"))
            .secret()
            .json(&json!({"expires_in_seconds": 5})),
    )
    .await
    .assert_param_error(422, "form_param_value_invalid", "expires_in_seconds");
}

#[tokio::test]
async fn minting_follows_the_session_and_the_latest_template_version() {
    let app = TestApp::new().await;
    let id = create(&app, json!({"name": "t", "claims": {"a": 1}}))
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (token, sid, _) = app.native_session().await;
    let key = jwks_key(&app).await;
    let mint = |path: String| app.send(Req::post(path).native(&token));

    let (_, claims) = decode(
        mint(session_path(&sid, "tokens/t")).await.ok()["jwt"]
            .as_str()
            .unwrap(),
        &key,
        Algorithm::RS256,
    );
    assert_eq!(claims["a"], 1);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        60,
        "default lifetime"
    );
    assert_eq!(
        claims["iat"].as_i64().unwrap() - claims["nbf"].as_i64().unwrap(),
        5,
        "default clock skew"
    );

    // An update is used at once (the parsed template is cached by version).
    app.send(
        Req::new("PATCH", format!("/v1/jwt_templates/{id}"))
            .secret()
            .json(&json!({"claims": {"a": 2}})),
    )
    .await
    .ok();
    let (_, claims) = decode(
        mint(session_path(&sid, "tokens/t")).await.ok()["jwt"]
            .as_str()
            .unwrap(),
        &key,
        Algorithm::RS256,
    );
    assert_eq!(claims["a"], 2);

    mint(session_path(&sid, "tokens/nope"))
        .await
        .assert_error(404, "resource_not_found");
    app.send(Req::post(format!("/v1/sessions/{sid}/tokens/nope")).secret())
        .await
        .assert_error(404, "resource_not_found");
    app.send(Req::post(session_path(&sid, "end")).native(&token))
        .await
        .ok();
    mint(session_path(&sid, "tokens/t"))
        .await
        .assert_error(401, "signed_out");
    app.send(Req::post(format!("/v1/sessions/{sid}/tokens/t")).secret())
        .await
        .assert_error(401, "signed_out");
}

#[tokio::test]
async fn custom_signing_keys_verify_per_algorithm_and_are_never_returned() {
    let app = TestApp::new().await;
    let (token, sid, user) = app.native_session().await;
    let (rsa_private, rsa_public) = rsa_pair();
    let (p256_private, p256_public) = ec_pair(false);
    let (p384_private, p384_public) = ec_pair(true);
    let cases: Vec<(&str, String, DecodingKey, Algorithm)> = vec![
        (
            "HS256",
            HMAC_SECRET.into(),
            DecodingKey::from_secret(HMAC_SECRET.as_bytes()),
            Algorithm::HS256,
        ),
        (
            "HS384",
            HMAC_SECRET.into(),
            DecodingKey::from_secret(HMAC_SECRET.as_bytes()),
            Algorithm::HS384,
        ),
        (
            "HS512",
            HMAC_SECRET.into(),
            DecodingKey::from_secret(HMAC_SECRET.as_bytes()),
            Algorithm::HS512,
        ),
        (
            "RS256",
            rsa_private.clone(),
            DecodingKey::from_rsa_pem(rsa_public.as_bytes()).unwrap(),
            Algorithm::RS256,
        ),
        (
            "RS384",
            rsa_private.clone(),
            DecodingKey::from_rsa_pem(rsa_public.as_bytes()).unwrap(),
            Algorithm::RS384,
        ),
        (
            "RS512",
            rsa_private.clone(),
            DecodingKey::from_rsa_pem(rsa_public.as_bytes()).unwrap(),
            Algorithm::RS512,
        ),
        (
            "ES256",
            p256_private.clone(),
            DecodingKey::from_ec_pem(p256_public.as_bytes()).unwrap(),
            Algorithm::ES256,
        ),
        (
            "ES384",
            p384_private.clone(),
            DecodingKey::from_ec_pem(p384_public.as_bytes()).unwrap(),
            Algorithm::ES384,
        ),
    ];
    let secrets = [HMAC_SECRET, &rsa_private, &p256_private, &p384_private];
    let assert_no_secret = |body: &Value| {
        let text = body.to_string();
        assert!(
            body.get("signing_key").is_none() && !text.contains("\"signing_key\""),
            "{text}"
        );
        for secret in secrets {
            let marker = &secret[secret.len().saturating_sub(40)..secret.len().saturating_sub(30)];
            assert!(!text.contains(marker), "a signing key leaked: {text}");
        }
    };
    for (alg, key, decoding, algorithm) in cases {
        let name = format!("custom_{}", alg.to_lowercase());
        let created = create(
            &app,
            json!({"name": name, "claims": {"uid": "{{user.id}}"}, "custom_signing_key": true, "signing_algorithm": alg, "signing_key": key}),
        )
        .await;
        assert_no_secret(created.ok());
        assert_eq!(created.body["signing_algorithm"], alg);
        assert_eq!(created.body["custom_signing_key"], true);
        let jwt = app
            .send(Req::post(session_path(&sid, &format!("tokens/{name}"))).native(&token))
            .await;
        let (header, claims) = decode(jwt.ok()["jwt"].as_str().unwrap(), &decoding, algorithm);
        assert_eq!(header.alg, algorithm, "{alg}");
        assert_eq!(claims["uid"], user.as_str(), "{alg}");
        // And not with the instance key.
        if alg == "RS256" {
            let v = Validation::new(Algorithm::RS256);
            assert!(jsonwebtoken::decode::<Value>(
                jwt.body["jwt"].as_str().unwrap(),
                &jwks_key(&app).await,
                &v
            )
            .is_err());
        }
    }
    let list = app.send(Req::get("/v1/jwt_templates").secret()).await;
    assert_eq!(list.ok().as_array().unwrap().len(), 8);
    assert_no_secret(&list.body);
    let id = list.body[3]["id"].as_str().unwrap().to_string();
    assert_no_secret(
        app.send(Req::get(format!("/v1/jwt_templates/{id}")).secret())
            .await
            .ok(),
    );
    // Updating other fields keeps the key; the key is still never shown.
    let patched = app
        .send(
            Req::new("PATCH", format!("/v1/jwt_templates/{id}"))
                .secret()
                .json(&json!({"lifetime": 90})),
        )
        .await;
    assert_no_secret(patched.ok());
    assert_eq!(patched.body["custom_signing_key"], true);
}

#[tokio::test]
async fn management_validation_names_the_field() {
    let app = TestApp::new().await;
    let ok = |name: &str| json!({"name": name, "claims": {}});
    create(&app, ok("dup")).await.ok();
    create(&app, ok("dup"))
        .await
        .assert_param_error(422, "form_identifier_exists", "name");

    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (json!({"claims": {}}), 422, "form_param_missing", "name"),
        (json!({"name": "x"}), 422, "form_param_missing", "claims"),
        (
            json!({"name": "bad name", "claims": {}}),
            422,
            "form_param_value_invalid",
            "name",
        ),
        (
            json!({"name": "x", "claims": [1]}),
            422,
            "form_param_format_invalid",
            "claims",
        ),
        (
            json!({"name": "x", "claims": 5}),
            422,
            "form_param_format_invalid",
            "claims",
        ),
        (
            json!({"name": "x", "claims": "[1]"}),
            422,
            "form_param_format_invalid",
            "claims",
        ),
        (
            json!({"name": "x", "claims": {"a": "{{user.id"}}),
            422,
            "form_param_value_invalid",
            "claims",
        ),
        (
            json!({"name": "x", "claims": {"a": {"b": ["{{ || }}"]}}}),
            422,
            "form_param_value_invalid",
            "claims",
        ),
        (
            json!({"name": "x", "claims": {}, "lifetime": 29}),
            422,
            "form_param_value_invalid",
            "lifetime",
        ),
        (
            json!({"name": "x", "claims": {}, "lifetime": 315_360_001}),
            422,
            "form_param_value_invalid",
            "lifetime",
        ),
        (
            json!({"name": "x", "claims": {}, "lifetime": "60"}),
            422,
            "form_param_format_invalid",
            "lifetime",
        ),
        (
            json!({"name": "x", "claims": {}, "allowed_clock_skew": 301}),
            422,
            "form_param_value_invalid",
            "allowed_clock_skew",
        ),
        (
            json!({"name": "x", "claims": {}, "allowed_clock_skew": -1}),
            422,
            "form_param_value_invalid",
            "allowed_clock_skew",
        ),
        (
            json!({"name": "x", "claims": {}, "custom_signing_key": true}),
            422,
            "form_param_missing",
            "signing_algorithm",
        ),
        (
            json!({"name": "x", "claims": {}, "custom_signing_key": true, "signing_algorithm": "HS256"}),
            422,
            "form_param_missing",
            "signing_key",
        ),
        (
            json!({"name": "x", "claims": {}, "custom_signing_key": true, "signing_algorithm": "none", "signing_key": HMAC_SECRET}),
            422,
            "form_param_value_invalid",
            "signing_algorithm",
        ),
        (
            // Refused even without a custom key (found by schemathesis: it was ignored).
            json!({"name": "x", "claims": {}, "custom_signing_key": false, "signing_algorithm": "__not_in_enum__"}),
            422,
            "form_param_value_invalid",
            "signing_algorithm",
        ),
        (
            json!({"name": "x", "claims": {}, "custom_signing_key": true, "signing_algorithm": "HS256", "signing_key": "short"}),
            422,
            "form_param_value_invalid",
            "signing_key",
        ),
        (
            json!({"name": "x", "claims": {}, "custom_signing_key": true, "signing_algorithm": "RS256", "signing_key": "not a pem"}),
            422,
            "form_param_value_invalid",
            "signing_key",
        ),
        (
            json!({"name": "x", "claims": {}, "custom_signing_key": true, "signing_algorithm": "ES384", "signing_key": ec_pair(false).0}),
            422,
            "form_param_value_invalid",
            "signing_key",
        ),
        (
            json!({"name": "x", "claims": {}, "custom_signing_key": true, "signing_algorithm": "ES256", "signing_key": rsa_pair().0}),
            422,
            "form_param_value_invalid",
            "signing_key",
        ),
    ];
    for (body, status, code, param) in cases {
        let resp = create(&app, body.clone()).await;
        resp.assert_param_error(status, code, param);
        if let Some(key) = body.get("signing_key").and_then(Value::as_str) {
            assert!(
                !resp.body.to_string().contains(key),
                "an error echoed the key"
            );
        }
    }
    // Where and why, for a claims document that does not parse.
    let resp = create(
        &app,
        json!({"name": "x", "claims": {"a": {"b": "hi {{user.id"}}}),
    )
    .await;
    let long = resp.body["errors"][0]["long_message"].as_str().unwrap();
    assert!(
        long.contains("claims.a.b") && long.contains("not closed"),
        "{long}"
    );

    for reserved in ["azp", "exp", "iat", "iss", "jti", "nbf", "sub"] {
        let resp = create(
            &app,
            json!({"name": "r", "claims": {reserved: "x", "ok": 1}}),
        )
        .await;
        resp.assert_param_error(400, "jwt_template_reserved_claim", "claims");
        assert!(resp.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains(reserved));
    }
    // claims may come as a JSON string holding an object.
    let resp = create(
        &app,
        json!({"name": "as_text", "claims": "{\"a\": \"{{user.id}}\"}"}),
    )
    .await;
    assert_eq!(resp.ok()["claims"], json!({"a": "{{user.id}}"}));
    // Nothing invalid was saved.
    let all = app
        .send(Req::get("/v1/jwt_templates?paginated=true").secret())
        .await;
    assert_eq!(all.ok()["total_count"], 2);
}

#[tokio::test]
async fn templates_are_listed_read_updated_renamed_and_deleted() {
    let app = TestApp::new().await;
    let mut ids = Vec::new();
    for name in ["one", "two", "three"] {
        app.clock.advance_secs(1);
        ids.push(
            create(&app, json!({"name": name, "claims": {"n": name}}))
                .await
                .ok()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let bare = app
        .send(Req::get("/v1/jwt_templates?limit=2&offset=1").secret())
        .await;
    let names: Vec<&str> = bare
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["two", "three"]);
    let paged = app
        .send(Req::get("/v1/jwt_templates?paginated=true&limit=1").secret())
        .await;
    assert_eq!(paged.ok()["total_count"], 3);
    assert_eq!(paged.body["data"].as_array().unwrap().len(), 1);

    let got = app
        .send(Req::get(format!("/v1/jwt_templates/{}", ids[0])).secret())
        .await;
    assert_eq!(got.ok()["name"], "one");
    app.send(Req::get("/v1/jwt_templates/jtmp_unknown").secret())
        .await
        .assert_error(404, "resource_not_found");

    // Rename: the new name mints, the old one no longer does; a taken name is refused.
    let renamed = app
        .send(
            Req::new("PATCH", format!("/v1/jwt_templates/{}", ids[0]))
                .secret()
                .json(&json!({"name": "uno"})),
        )
        .await;
    assert_eq!(renamed.ok()["name"], "uno");
    assert_eq!(renamed.body["id"], ids[0].as_str());
    app.send(
        Req::new("PATCH", format!("/v1/jwt_templates/{}", ids[0]))
            .secret()
            .json(&json!({"name": "two"})),
    )
    .await
    .assert_param_error(422, "form_identifier_exists", "name");
    let (token, sid, _) = app.native_session().await;
    assert_eq!(
        app.send(Req::post(session_path(&sid, "tokens/uno")).native(&token))
            .await
            .status,
        200
    );
    app.send(Req::post(session_path(&sid, "tokens/one")).native(&token))
        .await
        .assert_error(404, "resource_not_found");
    app.send(
        Req::new("PATCH", format!("/v1/jwt_templates/{}", ids[1]))
            .secret()
            .json(&json!({"claims": {"iss": 1}})),
    )
    .await
    .assert_param_error(400, "jwt_template_reserved_claim", "claims");

    let deleted = app
        .send(Req::new("DELETE", format!("/v1/jwt_templates/{}", ids[1])).secret())
        .await;
    assert_eq!(
        deleted.ok(),
        &json!({"object": "jwt_template", "id": ids[1], "deleted": true})
    );
    app.send(Req::new("DELETE", format!("/v1/jwt_templates/{}", ids[1])).secret())
        .await
        .assert_error(404, "resource_not_found");
    app.send(Req::post(session_path(&sid, "tokens/two")).native(&token))
        .await
        .assert_error(404, "resource_not_found");
    // The Backend API needs its key here too.
    assert_eq!(app.send(Req::get("/v1/jwt_templates")).await.status, 401);
}
