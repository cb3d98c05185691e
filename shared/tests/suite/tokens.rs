//! Session tokens checked by an independent verifier (jsonwebtoken, from the JWKS the
//! service serves), the way Clerk's SDKs check them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, TokenData, Validation};
use serde_json::{json, Value};
use std::sync::Arc;
use testkit::app::*;

/// The one key of a served JWKS document, after checking its shape.
#[track_caller]
fn only_key(jwks: &Value) -> &Value {
    let keys = jwks["keys"].as_array().expect("keys array");
    assert_eq!(keys.len(), 1, "{jwks}");
    &keys[0]
}

async fn frontend_jwks(app: &TestApp) -> Value {
    let resp = app.send(Req::get("/.well-known/jwks.json")).await;
    resp.ok().clone()
}

/// A verifier built only from the JWKS JSON: `n` and `e`, RS256 pinned, issuer checked.
/// `exp`/`nbf` are checked by hand against the harness clock (jsonwebtoken would use the
/// system clock).
fn verify(jwt: &str, jwks: &Value) -> jsonwebtoken::errors::Result<TokenData<Value>> {
    let key = only_key(jwks);
    let decoding = DecodingKey::from_rsa_components(
        key["n"].as_str().expect("n"),
        key["e"].as_str().expect("e"),
    )?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = 0;
    validation.set_issuer(&[FAPI_URL]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "sub"]);
    jsonwebtoken::decode::<Value>(jwt, &decoding, &validation)
}

async fn mint(app: &TestApp, token: &str, sid: &str, origin: Option<&str>) -> String {
    let mut req = Req::post(session_path(sid, "tokens")).native(token);
    if let Some(o) = origin {
        req = req.origin(o);
    }
    let resp = app.send(req).await;
    resp.ok()["jwt"].as_str().expect("jwt").to_string()
}

#[tokio::test]
async fn both_jwks_endpoints_serve_the_same_rsa_2048_key() {
    let app = TestApp::new().await;
    let fapi = app.send(Req::get("/.well-known/jwks.json")).await;
    assert!(fapi
        .header("cache-control")
        .is_some_and(|c| c.contains("max-age")));
    let fapi = fapi.ok().clone();
    let bapi = app.send(Req::get("/v1/jwks").secret()).await;
    assert_eq!(bapi.ok(), &fapi);

    let key = only_key(&fapi);
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["e"], "AQAB");
    assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
    let n = URL_SAFE_NO_PAD
        .decode(key["n"].as_str().unwrap())
        .expect("n is base64url without padding");
    assert_eq!(n.len(), 256, "a 2048-bit modulus");
    assert!(n[0] & 0x80 != 0, "the modulus uses all 2048 bits");
    // No private parts.
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(key.get(private).is_none(), "JWKS leaks {private}");
    }

    // The Backend API's copy needs the secret key.
    let resp = app.send(Req::get("/v1/jwks")).await;
    resp.assert_error(401, "authentication_invalid");
}

#[tokio::test]
async fn session_token_claims_verify_against_the_served_jwks() {
    let app = TestApp::new().await;
    let (token, sid, user) = app.native_session().await;
    let jwks = frontend_jwks(&app).await;
    let kid = only_key(&jwks)["kid"].as_str().unwrap().to_string();

    let jwt = mint(&app, &token, &sid, Some(APP_ORIGIN)).await;
    let data = verify(&jwt, &jwks).expect("the token verifies against the JWKS");
    assert_eq!(data.header.alg, Algorithm::RS256);
    assert_eq!(data.header.typ.as_deref(), Some("JWT"));
    assert_eq!(data.header.kid.as_deref(), Some(kid.as_str()));

    let c = &data.claims;
    let iat = START_MS / 1000;
    assert_eq!(c["azp"], APP_ORIGIN);
    assert_eq!(c["iss"], FAPI_URL);
    assert_eq!(c["iat"], iat);
    assert_eq!(c["exp"], iat + 60);
    assert_eq!(c["nbf"], iat - 5);
    assert_eq!(c["sid"], sid.as_str());
    assert_eq!(c["sub"], user.as_str());
    assert_eq!(c["v"], 2);
    assert_eq!(c["fva"], json!([0, -1]));
    assert_eq!(c["sts"], "active");
    assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert!(c.get("aud").is_none());

    // The same token verifies against the Backend API's JWKS.
    let bapi = app.send(Req::get("/v1/jwks").secret()).await;
    verify(&jwt, bapi.ok()).expect("verifies against /v1/jwks");
}

#[tokio::test]
async fn azp_is_left_out_without_an_origin() {
    let app = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    let jwks = frontend_jwks(&app).await;
    let jwt = mint(&app, &token, &sid, None).await;
    let claims = verify(&jwt, &jwks).unwrap().claims;
    assert!(claims.get("azp").is_none(), "{claims}");
    // `Origin: null` is no origin either.
    let jwt = mint(&app, &token, &sid, Some("null")).await;
    let claims = verify(&jwt, &jwks).unwrap().claims;
    assert!(claims.get("azp").is_none(), "{claims}");
}

/// The attack: a native caller (whose Origin no browser vouches for) asks for a token
/// naming an app it is not, to pass a verifier's `authorizedParties` check there.
#[tokio::test]
async fn a_native_caller_with_a_foreign_origin_gets_no_azp() {
    let app = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    let jwks = frontend_jwks(&app).await;
    let jwt = mint(&app, &token, &sid, Some("https://evil.example")).await;
    let claims = verify(&jwt, &jwks).unwrap().claims;
    assert!(claims.get("azp").is_none(), "{claims}");
    // An allowed origin is still named.
    let jwt = mint(&app, &token, &sid, Some(APP_ORIGIN)).await;
    assert_eq!(verify(&jwt, &jwks).unwrap().claims["azp"], APP_ORIGIN);
}

#[tokio::test]
async fn browser_tokens_carry_the_origin_as_azp() {
    let app = TestApp::new().await;
    let (cookie, sid, _) = app.browser_session().await;
    let jwks = frontend_jwks(&app).await;
    let resp = app
        .send(
            Req::post(session_path(&sid, "tokens"))
                .cookie(&cookie)
                .origin(APP_ORIGIN)
                .form(""),
        )
        .await;
    let jwt = resp.ok()["jwt"].as_str().unwrap();
    assert_eq!(verify(jwt, &jwks).unwrap().claims["azp"], APP_ORIGIN);
}

#[tokio::test]
async fn claims_follow_the_clock_and_every_token_is_unique() {
    let app = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    let jwks = frontend_jwks(&app).await;
    let first = verify(&mint(&app, &token, &sid, None).await, &jwks)
        .unwrap()
        .claims;
    app.clock.advance_secs(5 * 60 + 30);
    let later = verify(&mint(&app, &token, &sid, None).await, &jwks)
        .unwrap()
        .claims;
    let iat = START_MS / 1000 + 330;
    assert_eq!(later["iat"], iat);
    assert_eq!(later["exp"], iat + 60);
    assert_eq!(later["nbf"], iat - 5);
    // Minutes since the first factor was verified (the ticket sign-in).
    assert_eq!(later["fva"], json!([5, -1]));
    assert_ne!(first["jti"], later["jti"]);
    assert_eq!(first["sid"], later["sid"]);
}

#[tokio::test]
async fn token_lifetime_is_configurable() {
    let app = TestApp::with_env(&[("SESSION_TOKEN_LIFETIME_SECONDS", "300")]).await;
    let (token, sid, _) = app.native_session().await;
    let jwks = frontend_jwks(&app).await;
    let claims = verify(&mint(&app, &token, &sid, None).await, &jwks)
        .unwrap()
        .claims;
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
}

#[tokio::test]
async fn backend_minted_tokens_verify_and_have_no_azp() {
    let app = TestApp::new().await;
    let (_, sid, user) = app.native_session().await;
    let jwks = frontend_jwks(&app).await;
    let resp = app
        .send(
            Req::post(format!("/v1/sessions/{sid}/tokens"))
                .secret()
                .origin(APP_ORIGIN),
        )
        .await;
    let body = resp.ok();
    assert_eq!(body["object"], "token");
    let claims = verify(body["jwt"].as_str().unwrap(), &jwks).unwrap().claims;
    assert!(claims.get("azp").is_none());
    assert_eq!(claims["sub"], user.as_str());
    assert_eq!(claims["sid"], sid.as_str());
    assert_eq!(claims["iss"], FAPI_URL);
}

#[tokio::test]
async fn the_verifier_rejects_tampered_and_foreign_tokens() {
    let app = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    let jwks = frontend_jwks(&app).await;
    let jwt = mint(&app, &token, &sid, None).await;
    let parts: Vec<&str> = jwt.split('.').collect();

    // A different subject under the original signature.
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = json!("user_someone_else");
    let forged_payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    assert!(verify(&tampered, &jwks).is_err());

    // A flipped signature byte.
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 1;
    let bad_sig = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
    assert!(verify(&bad_sig, &jwks).is_err());

    // Another instance's key does not verify this one's tokens.
    let other = TestApp::new().await;
    let other_jwks = frontend_jwks(&other).await;
    assert_ne!(only_key(&other_jwks)["kid"], only_key(&jwks)["kid"]);
    assert!(verify(&jwt, &other_jwks).is_err());
}

#[tokio::test]
async fn the_signing_key_is_kept_in_the_store_across_restarts() {
    let app = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    let jwks = frontend_jwks(&app).await;
    let jwt = mint(&app, &token, &sid, None).await;

    // A second process on the same store loads the same key instead of making one.
    let config = app.state.config.clone();
    let restarted = TestApp::with_store(config, Arc::clone(&app.store)).await;
    let jwks_after = frontend_jwks(&restarted).await;
    assert_eq!(jwks_after, jwks);
    verify(&jwt, &jwks_after).expect("old tokens still verify");
    // And the client tokens it issued still work.
    let resp = restarted
        .send(Req::get(session_path(&sid, "")).native(&token))
        .await;
    assert_eq!(resp.ok()["response"]["status"], "active");
    let jwt2 = mint(&restarted, &token, &sid, None).await;
    verify(&jwt2, &jwks).expect("new tokens verify with the old JWKS");
}

/// `last_active_token` costs one signature per burst of answers, not one per answer: a
/// token signed for the same session and origin within a tenth of the token lifetime (6 s
/// of 60) is shown again. Past that, for another origin, or once another key signs, the
/// answer carries a freshly signed token.
#[tokio::test]
async fn a_last_active_token_is_reused_only_while_young_for_its_origin_and_key() {
    const ADMIN: &str = "https://admin.example.com";
    let app = TestApp::with_env(&[("ALLOWED_ORIGINS", &format!("{APP_ORIGIN},{ADMIN}"))]).await;
    let (cookie, sid, _) = app.browser_session().await;
    let shown = |origin: &'static str| {
        let req = Req::get(session_path(&sid, ""))
            .cookie(&cookie)
            .origin(origin);
        let app = &app;
        let sid = sid.clone();
        async move {
            let resp = app.send(req).await;
            let body = resp.ok();
            let jwt = body["response"]["last_active_token"]["jwt"]
                .as_str()
                .expect("jwt");
            // The session in the client shows the same token.
            let in_client = body["client"]["sessions"]
                .as_array()
                .expect("sessions")
                .iter()
                .find(|s| s["id"] == sid.as_str())
                .expect("session in client");
            assert_eq!(in_client["last_active_token"]["jwt"], jwt);
            jwt.to_string()
        }
    };

    let first = shown(APP_ORIGIN).await;
    assert_eq!(jwt_claims(&first)["azp"], APP_ORIGIN);
    app.clock.advance_secs(6);
    assert_eq!(shown(APP_ORIGIN).await, first, "reused within the window");
    let admin = shown(ADMIN).await;
    assert_ne!(admin, first);
    assert_eq!(jwt_claims(&admin)["azp"], ADMIN);

    app.clock.advance_secs(1);
    let later = shown(APP_ORIGIN).await;
    assert_ne!(
        later, first,
        "a token older than the window is not shown again"
    );
    assert_eq!(jwt_claims(&later)["iat"], START_MS / 1000 + 7);

    // A new signing key: the young token of the old key is not shown again.
    let rotated = app
        .send(
            Req::post("/v1/instance/keys/rotate")
                .secret()
                .json(&json!({"keys": "session_signing", "emergency": true})),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_kid = app
        .state
        .keys()
        .signer(app.now_ms())
        .unwrap()
        .kid()
        .to_string();
    let after = shown(APP_ORIGIN).await;
    assert_ne!(after, later);
    assert_eq!(jwt_header(&after)["kid"], new_kid.as_str());
}
