//! The handshake of server-rendered apps (`GET /v1/client/handshake`), the Backend API
//! read of its nonce (`GET /v1/clients/handshake_payload`) and the session refresh from an
//! app's server (`POST /v1/sessions/{id}/refresh`): what each answers, and every refusal.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use std::sync::Arc;
use testkit::app::*;

testkit::each_store!(a_nonce_opens_once_however_many_ask_at_once);

/// The cookie suffix of the test instance: the first 8 characters of the base64url SHA-1
/// of its publishable key, `pk_live_` + base64("clerk.example.com$") (computed apart, as
/// Clerk's SDKs compute it).
const SUFFIX: &str = "naoXFJnI";

fn encoded(url: &str) -> String {
    form_urlencoded::byte_serialize(url.as_bytes()).collect()
}

fn handshake(redirect: &str, format: &str) -> Req {
    Req::get(format!(
        "/v1/client/handshake?redirect_url={}&format={format}",
        encoded(redirect)
    ))
}

/// The query parameter `name` of the 307's `Location`.
fn location_param(resp: &TestResponse, name: &str) -> Option<String> {
    let location = resp.header("location").expect("Location");
    let url = url::Url::parse(location).expect("absolute Location");
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The directives a `format=token` handshake carries, read from its JWT.
fn token_directives(resp: &TestResponse) -> Vec<String> {
    let jwt = location_param(resp, "__clerk_handshake").expect("__clerk_handshake");
    serde_json::from_value(jwt_claims(&jwt)["handshake"].clone()).expect("handshake claim")
}

/// The directives a `format=nonce` handshake stands for, through the Backend API.
async fn nonce_directives(app: &TestApp, resp: &TestResponse) -> Vec<String> {
    let nonce = location_param(resp, "__clerk_handshake_nonce").expect("nonce");
    let read = app
        .send(
            Req::get(format!(
                "/v1/clients/handshake_payload?nonce={}",
                encoded(&nonce)
            ))
            .secret(),
        )
        .await;
    serde_json::from_value(read.ok()["directives"].clone()).expect("directives")
}

/// The directive that sets `name`, and its value.
fn directive<'a>(directives: &'a [String], name: &str) -> Option<(&'a str, &'a str)> {
    directives.iter().find_map(|d| {
        let value = d.strip_prefix(&format!("{name}="))?;
        Some((d.as_str(), value.split(';').next().unwrap_or("")))
    })
}

#[tokio::test]
async fn a_signed_in_browser_is_sent_back_with_a_fresh_session_token_in_either_format() {
    let app = TestApp::new().await;
    let (cookie, sid, user) = app.browser_session().await;
    for format in ["token", "nonce"] {
        let resp = app
            .send(handshake("https://app.example.com/dashboard?tab=2", format).cookie(&cookie))
            .await;
        assert_eq!(resp.status, 307, "{format}: {}", resp.body);
        assert_eq!(resp.header("cache-control"), Some("no-store"));
        let location = resp.header("location").unwrap();
        assert!(
            location.starts_with("https://app.example.com/dashboard?tab=2&"),
            "{location}"
        );
        let directives = match format {
            "token" => token_directives(&resp),
            _ => nonce_directives(&app, &resp).await,
        };
        let (line, jwt) = directive(&directives, "__session").expect("__session");
        assert!(
            line.contains("; Path=/") && line.contains("; Secure") && line.contains("SameSite=Lax")
        );
        assert!(
            !line.contains("HttpOnly"),
            "clerk-js rewrites __session: {line}"
        );
        let claims = jwt_claims(jwt);
        assert_eq!(claims["sid"], sid.as_str());
        assert_eq!(claims["sub"], user.as_str());
        assert_eq!(
            claims["azp"], APP_ORIGIN,
            "azp is the app the browser goes back to"
        );
        let (line, uat) = directive(&directives, "__client_uat").expect("__client_uat");
        assert!(uat.parse::<i64>().unwrap() > 0);
        assert!(uat.parse::<i64>().unwrap() <= claims["iat"].as_i64().unwrap());
        assert!(
            line.contains("; Domain=example.com"),
            "the app's registrable domain: {line}"
        );
        // The refresh grant travels only in the nonce form: a token in a URL is
        // readable by whoever sees the URL.
        let refresh = format!("__refresh_{SUFFIX}");
        match format {
            "token" => assert!(directive(&directives, &refresh).is_none(), "no grant"),
            _ => {
                let (line, _) = directive(&directives, &refresh).expect("refresh grant");
                assert!(line.contains("HttpOnly"), "{line}");
            }
        }
        // Unsuffixed names only, unless the SDK asks for suffixed ones.
        assert!(directive(&directives, &format!("__session_{SUFFIX}")).is_none());
    }
}

#[tokio::test]
async fn the_token_form_verifies_against_the_jwks() {
    let app = TestApp::new().await;
    let (cookie, _, _) = app.browser_session().await;
    let resp = app
        .send(handshake("https://app.example.com/", "token").cookie(&cookie))
        .await;
    let jwt = location_param(&resp, "__clerk_handshake").unwrap();
    let header = jwt_header(&jwt);
    assert_eq!(header["alg"], "RS256");
    let jwks = app.send(Req::get("/.well-known/jwks.json")).await;
    let jwk = jwks.ok()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the kid is published")
        .clone();
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        jwk["n"].as_str().unwrap(),
        jwk["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    assert!(jsonwebtoken::decode::<Value>(&jwt, &key, &validation).is_ok());
}

#[tokio::test]
async fn suffixed_cookies_are_set_under_both_names() {
    let app = TestApp::new().await;
    let (cookie, sid, _) = app.browser_session().await;
    let resp = app
        .send(
            handshake("https://app.example.com/", "token")
                .query("suffixed_cookies", "true")
                .cookie(&cookie),
        )
        .await;
    let directives = token_directives(&resp);
    for name in ["__session", "__client_uat"] {
        assert!(directive(&directives, name).is_some(), "{name}");
        assert!(
            directive(&directives, &format!("{name}_{SUFFIX}")).is_some(),
            "{name}_{SUFFIX}"
        );
    }
    let (_, jwt) = directive(&directives, &format!("__session_{SUFFIX}")).unwrap();
    assert_eq!(jwt_claims(jwt)["sid"], sid.as_str());
}

#[tokio::test]
async fn a_signed_out_client_gets_cleared_cookies() {
    let app = TestApp::new().await;
    let (cookie, sid, _) = app.browser_session().await;
    let end = app
        .send(
            Req::post(session_path(&sid, "end"))
                .cookie(&cookie)
                .origin(APP_ORIGIN),
        )
        .await;
    assert_eq!(end.status, 200, "{}", end.body);
    let anonymous = app.browser_client().await;
    for (case, req) in [
        ("no cookie", handshake("https://app.example.com/", "token")),
        (
            "ended session",
            handshake("https://app.example.com/", "token").cookie(&cookie),
        ),
        (
            "never signed in",
            handshake("https://app.example.com/", "token").cookie(&anonymous),
        ),
        (
            "forged cookie",
            handshake("https://app.example.com/", "token").cookie("forged.token.value"),
        ),
    ] {
        let resp = app.send(req).await;
        assert_eq!(resp.status, 307, "{case}: {}", resp.body);
        let directives = token_directives(&resp);
        let (line, value) = directive(&directives, "__session").expect(case);
        assert_eq!(value, "", "{case}");
        assert!(line.contains("Max-Age=0"), "{case}: {line}");
        assert_eq!(
            directive(&directives, "__client_uat").unwrap().1,
            "0",
            "{case}"
        );
        let (line, _) = directive(&directives, &format!("__refresh_{SUFFIX}")).unwrap();
        assert!(line.contains("Max-Age=0"), "{case}: {line}");
        if case == "forged cookie" {
            // The bad cookie is cleared on the Frontend API's host too.
            assert_eq!(resp.cookie("__client").as_deref(), Some(""), "{case}");
        }
    }
}

#[tokio::test]
async fn a_development_browser_hands_its_token_in_the_query() {
    let app = TestApp::development().await;
    let db = app.send(Req::post("/v1/dev_browser")).await;
    let token = db.ok()["id"].as_str().unwrap().to_string();
    let user = app.create_user().await;
    let ticket = app.ticket(&user).await;
    let signed = app
        .send(
            Req::post("/v1/client/sign_ins")
                .dev(&token)
                .form(&format!("strategy=ticket&ticket={ticket}")),
        )
        .await;
    let token = signed.header("clerk-db-jwt").unwrap_or(&token).to_string();
    let resp = app
        .send(handshake("https://app.example.com/", "token").dev(&token))
        .await;
    assert_eq!(resp.status, 307, "{}", resp.body);
    let directives = token_directives(&resp);
    assert_eq!(
        jwt_claims(directive(&directives, "__session").unwrap().1)["sub"],
        user.as_str()
    );
}

#[tokio::test]
async fn the_redirect_must_be_an_absolute_url_on_an_allowed_origin() {
    let app = TestApp::new().await;
    let (cookie, _, _) = app.browser_session().await;
    let missing = app
        .send(Req::get("/v1/client/handshake").cookie(&cookie))
        .await;
    missing.assert_param_error(422, "form_param_missing", "redirect_url");
    for bad in [
        "https://elsewhere.example/",
        "https://app.example.com.elsewhere.example/",
        "http://app.example.com/",
        "https://app.example.com:8443/",
        "https://user@app.example.com/",
        "javascript:alert(1)",
        "//app.example.com/",
        "/dashboard",
        "not a url",
    ] {
        let resp = app.send(handshake(bad, "token").cookie(&cookie)).await;
        resp.assert_param_error(422, "form_param_value_invalid", "redirect_url");
        assert!(resp.header("location").is_none(), "{bad}");
    }
    let resp = app
        .send(handshake("https://app.example.com/", "jwt").cookie(&cookie))
        .await;
    resp.assert_param_error(422, "form_param_value_invalid", "format");
    // The Frontend API's own origin is always allowed.
    let own = app
        .send(handshake("https://clerk.example.com/x", "token").cookie(&cookie))
        .await;
    assert_eq!(own.status, 307);
}

#[tokio::test]
async fn a_nonce_opens_only_with_the_secret_key_and_only_as_sealed() {
    let app = TestApp::new().await;
    let (cookie, _, _) = app.browser_session().await;
    let resp = app
        .send(handshake("https://app.example.com/", "nonce").cookie(&cookie))
        .await;
    let nonce = location_param(&resp, "__clerk_handshake_nonce").unwrap();
    assert!(!nonce.contains("eyJ"), "the nonce shows no token");
    let path = format!("/v1/clients/handshake_payload?nonce={}", encoded(&nonce));
    app.send(Req::get(&path))
        .await
        .assert_error(401, "authentication_invalid");
    app.send(Req::get("/v1/clients/handshake_payload").secret())
        .await
        .assert_param_error(422, "form_param_missing", "nonce");
    let mut tampered = nonce.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    app.send(
        Req::get(format!(
            "/v1/clients/handshake_payload?nonce={}",
            encoded(&tampered)
        ))
        .secret(),
    )
    .await
    .assert_error(404, "resource_not_found");
    // Past its minute.
    app.clock.advance_secs(61);
    app.send(Req::get(&path).secret())
        .await
        .assert_error(404, "resource_not_found");
}

#[tokio::test]
async fn without_a_format_the_handshake_hands_back_a_nonce() {
    let app = TestApp::new().await;
    let (cookie, sid, _) = app.browser_session().await;
    let resp = app
        .send(
            Req::get(format!(
                "/v1/client/handshake?redirect_url={}",
                encoded("https://app.example.com/")
            ))
            .cookie(&cookie),
        )
        .await;
    assert_eq!(resp.status, 307, "{}", resp.body);
    assert!(location_param(&resp, "__clerk_handshake").is_none());
    let directives = nonce_directives(&app, &resp).await;
    let (_, jwt) = directive(&directives, "__session").unwrap();
    assert_eq!(jwt_claims(jwt)["sid"], sid.as_str());
}

/// The attack: the nonce stays in the page's URL (@clerk/backend leaves it there), and
/// whoever replays that URL within the minute would have the app's server open it again
/// and set the same cookies, refresh grant included, in another browser.
#[tokio::test]
async fn a_nonce_opens_once() {
    let app = TestApp::new().await;
    let (cookie, _, _) = app.browser_session().await;
    let resp = app
        .send(handshake("https://app.example.com/", "nonce").cookie(&cookie))
        .await;
    let nonce = location_param(&resp, "__clerk_handshake_nonce").unwrap();
    let path = format!("/v1/clients/handshake_payload?nonce={}", encoded(&nonce));
    let first = app.send(Req::get(&path).secret()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    app.send(Req::get(&path).secret())
        .await
        .assert_error(404, "resource_not_found");
    // A new handshake of the same browser gets a nonce of its own.
    let again = app
        .send(handshake("https://app.example.com/", "nonce").cookie(&cookie))
        .await;
    assert_eq!(nonce_directives(&app, &again).await.len(), 3);
}

async fn a_nonce_opens_once_however_many_ask_at_once(store: Arc<dyn shared::store::Store>) {
    let app = Arc::new(TestApp::on(store).await);
    let (cookie, _, _) = app.browser_session().await;
    let resp = app
        .send(handshake("https://app.example.com/", "nonce").cookie(&cookie))
        .await;
    let nonce = location_param(&resp, "__clerk_handshake_nonce").unwrap();
    let path = format!("/v1/clients/handshake_payload?nonce={}", encoded(&nonce));
    let mut opens = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (app, path) = (Arc::clone(&app), path.clone());
        opens.spawn(async move { app.send(Req::get(&path).secret()).await });
    }
    let mut opened = 0;
    while let Some(resp) = opens.join_next().await {
        let resp = resp.unwrap();
        match resp.status {
            200 => opened += 1,
            _ => resp.assert_error(404, "resource_not_found"),
        }
    }
    assert_eq!(opened, 1, "one of 16 concurrent openings gets the payload");
}

/// A handshake's session token and refresh grant, as the app's server holds them.
async fn grant(app: &TestApp, cookie: &str) -> (String, String) {
    let resp = app
        .send(handshake("https://app.example.com/", "nonce").cookie(cookie))
        .await;
    let directives = nonce_directives(app, &resp).await;
    let session = directive(&directives, "__session").unwrap().1.to_string();
    let grant = directive(&directives, &format!("__refresh_{SUFFIX}"))
        .unwrap()
        .1
        .to_string();
    (session, grant)
}

fn refresh(sid: &str, body: Value) -> Req {
    Req::post(format!("/v1/sessions/{sid}/refresh"))
        .secret()
        .json(&body)
}

#[tokio::test]
async fn an_app_server_refreshes_an_expired_token_with_its_grant() {
    let app = TestApp::new().await;
    let (cookie, sid, user) = app.browser_session().await;
    let (session, grant) = grant(&app, &cookie).await;
    app.clock.advance_secs(120); // the session token has expired
    let body =
        json!({"expired_token": session, "refresh_token": grant, "request_origin": APP_ORIGIN});
    let resp = app.send(refresh(&sid, body.clone())).await;
    assert_eq!(resp.ok()["object"], "token");
    let claims = jwt_claims(resp.body["jwt"].as_str().unwrap());
    assert_eq!(claims["sid"], sid.as_str());
    assert_eq!(claims["sub"], user.as_str());
    assert_eq!(claims["azp"], APP_ORIGIN);
    assert!(claims["exp"].as_i64().unwrap() * 1000 > app.now_ms());

    let mut cookies = body;
    cookies["format"] = json!("cookie");
    let resp = app
        .send(
            Req::post(format!("/v1/sessions/{sid}/refresh?suffixed_cookies=true"))
                .secret()
                .json(&cookies),
        )
        .await;
    assert_eq!(resp.ok()["object"], "cookies");
    let directives: Vec<String> = serde_json::from_value(resp.body["cookies"].clone()).unwrap();
    for name in ["__session", "__client_uat"] {
        assert!(directive(&directives, name).is_some(), "{name}");
        assert!(
            directive(&directives, &format!("{name}_{SUFFIX}")).is_some(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn every_failed_refresh_check_is_401() {
    let app = TestApp::new().await;
    let (cookie, sid, _) = app.browser_session().await;
    let (session, grant) = grant(&app, &cookie).await;
    let (other_cookie, other_sid, _) = app.browser_session().await;
    let (other_session, other_grant) = self::grant(&app, &other_cookie).await;
    let body = |token: &str, grant: &str, origin: &str| json!({"expired_token": token, "refresh_token": grant, "request_origin": origin});
    let mut forged = session.split('.').map(str::to_string).collect::<Vec<_>>();
    let mut claims = jwt_claims(&session);
    claims["sid"] = json!(other_sid);
    forged[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    let forged = forged.join(".");
    let mut tampered_grant = grant.clone();
    let last = tampered_grant.pop().unwrap();
    tampered_grant.push(if last == 'A' { 'B' } else { 'A' });
    for (case, path_sid, req_body) in [
        (
            "another session's token",
            sid.as_str(),
            body(&other_session, &grant, APP_ORIGIN),
        ),
        (
            "another session's grant",
            sid.as_str(),
            body(&session, &other_grant, APP_ORIGIN),
        ),
        (
            "both for another session",
            sid.as_str(),
            body(&other_session, &other_grant, APP_ORIGIN),
        ),
        (
            "claims changed under the signature",
            other_sid.as_str(),
            body(&forged, &other_grant, APP_ORIGIN),
        ),
        (
            "a tampered grant",
            sid.as_str(),
            body(&session, &tampered_grant, APP_ORIGIN),
        ),
        (
            "a grant that is not one",
            sid.as_str(),
            body(&session, &cookie, APP_ORIGIN),
        ),
        (
            "an origin not allowed",
            sid.as_str(),
            body(&session, &grant, "https://elsewhere.example"),
        ),
    ] {
        app.send(refresh(path_sid, req_body))
            .await
            .assert_error(401, "authentication_invalid");
        let _ = case;
    }
    app.send(refresh(
        &sid,
        json!({"refresh_token": grant, "request_origin": APP_ORIGIN}),
    ))
    .await
    .assert_param_error(422, "form_param_missing", "expired_token");
    app.send(
        Req::post(format!("/v1/sessions/{sid}/refresh")).json(&body(&session, &grant, APP_ORIGIN)),
    )
    .await
    .assert_error(401, "authentication_invalid");

    // A new sign-in on the client rotates its token: the grant it replaced is void.
    let user = app.create_user().await;
    let ticket = app.ticket(&user).await;
    let again = app
        .send(
            Req::post("/v1/client/sign_ins")
                .cookie(&cookie)
                .origin(APP_ORIGIN)
                .form(&format!("strategy=ticket&ticket={ticket}")),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    app.send(refresh(&sid, body(&session, &grant, APP_ORIGIN)))
        .await
        .assert_error(401, "authentication_invalid");

    // An ended session refreshes no more.
    let (other_session, other_grant) = self::grant(&app, &other_cookie).await;
    app.revoke(&other_sid).await;
    app.send(refresh(
        &other_sid,
        body(&other_session, &other_grant, APP_ORIGIN),
    ))
    .await
    .assert_error(401, "authentication_invalid");
}
