//! Client authentication (native, dev browser, cookie), its precedence, bad client tokens,
//! token rotation on sign-in, Clerk's cookies, cross-client isolation and CORS.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use testkit::app::*;

/// The six session endpoints: (method, path suffix).
const SESSION_ENDPOINTS: [(&str, &str); 6] = [
    ("GET", ""),
    ("POST", "touch"),
    ("POST", "end"),
    ("POST", "remove"),
    ("POST", "tokens"),
    ("POST", "tokens/supabase"),
];

fn client_id_of(resp: &TestResponse) -> String {
    resp.body["response"]["id"]
        .as_str()
        .expect("client id")
        .to_string()
}

/// A client token changed one character into the payload, signature kept.
fn tamper(token: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let payload = &mut parts[1];
    let i = payload.len() / 2;
    let c = payload.as_bytes()[i];
    let flipped = if c == b'A' { 'B' } else { 'A' };
    payload.replace_range(i..=i, &flipped.to_string());
    parts.join(".")
}

/// Each way a client token can be bad. All of them must be 401 `authentication_invalid`.
fn bad_tokens(good: &str, foreign: &str) -> Vec<(&'static str, String)> {
    let claims = jwt_claims(good);
    let parts: Vec<&str> = good.split('.').collect();
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(b"not the instance secret, but 32+ bytes long"),
    )
    .unwrap();
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let mut later = claims.clone();
    later["exp"] = json!(later["exp"].as_i64().unwrap() + 1_000_000);
    let extended = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(later.to_string()),
        parts[2]
    );
    vec![
        ("forged", forged),
        ("tampered", tamper(good)),
        ("extended expiry", extended),
        ("alg none", format!("{none_header}.{}.", parts[1])),
        (
            "alg none with signature",
            format!("{none_header}.{}.{}", parts[1], parts[2]),
        ),
        ("another instance", foreign.to_string()),
        ("garbage", "not-a-jwt".to_string()),
        ("three dots", "a.b.c".to_string()),
        ("huge", "x".repeat(5000)),
    ]
}

/// A token that does not verify: endpoints that need a client refuse it (and a browser's
/// cookie is cleared); `GET /v1/client` starts over with a new, empty client and a new
/// token, so a bad HttpOnly cookie can never lock a browser out; a dev browser is told to
/// get a new dev-browser token.
async fn assert_every_transport_refuses(app: &TestApp, sid: &str, name: &str, bad: &str) {
    let refusing = [
        ("session get", Req::get(session_path(sid, "")).native(bad)),
        (
            "session end",
            Req::post(session_path(sid, "end")).native(bad),
        ),
        (
            "session tokens",
            Req::post(session_path(sid, "tokens")).cookie(bad),
        ),
        ("sign out", Req::delete("/v1/client/sessions").native(bad)),
    ];
    for (what, req) in refusing {
        let resp = app.send(req).await;
        assert_eq!(resp.status, 401, "{name} via {what}: {}", resp.body);
        resp.assert_error(401, "authentication_invalid");
        if what == "session tokens" {
            let cleared = resp.cookie_line("__client").expect("cookie cleared");
            assert!(cleared.starts_with("__client=;") && cleared.contains("Max-Age=0"));
        }
    }
    app.send(Req::get("/v1/client").dev(bad))
        .await
        .assert_error(401, "dev_browser_unauthenticated");
    let starting_over = [
        ("cookie", Req::get("/v1/client").cookie(bad)),
        ("native", Req::get("/v1/client").native(bad)),
        (
            "native bearer",
            Req::get("/v1/client")
                .query("_is_native", "1")
                .header("authorization", &format!("Bearer {bad}")),
        ),
    ];
    for (transport, req) in starting_over {
        let resp = app.send(req).await;
        assert_eq!(resp.status, 200, "{name} via {transport}: {}", resp.body);
        assert!(resp.body["response"]["id"].is_string());
        assert_eq!(resp.body["response"]["sessions"], json!([]), "{name}");
        let fresh = match transport {
            "cookie" => resp.cookie("__client"),
            _ => resp.header("authorization").map(str::to_string),
        };
        assert!(
            fresh.is_some_and(|t| t != bad),
            "{name} via {transport}: a new token"
        );
    }
}

#[tokio::test]
async fn without_a_token_the_client_is_null_and_sessions_are_signed_out() {
    let app = TestApp::new().await;
    let (_, sid, _) = app.native_session().await;
    let resp = app.send(Req::get("/v1/client")).await;
    let body = resp.ok();
    assert_eq!(body, &json!({"response": null, "client": null}));
    assert_eq!(resp.cookie("__client_uat").as_deref(), Some("0"));
    let resp = app.send(Req::get("/v1/client?_is_native=1")).await;
    assert_eq!(resp.ok()["response"], Value::Null);
    assert!(resp.cookies().is_empty());
    for (method, suffix) in SESSION_ENDPOINTS {
        let resp = app.send(Req::new(method, session_path(&sid, suffix))).await;
        resp.assert_error(401, "signed_out");
    }
    // Empty token values are no token.
    let resp = app.send(Req::get("/v1/client").cookie("")).await;
    assert_eq!(resp.ok()["response"], Value::Null);
    let resp = app.send(Req::get("/v1/client").dev("")).await;
    assert_eq!(resp.ok()["response"], Value::Null);
}

#[tokio::test]
async fn cookie_clients_round_trip_with_clerks_cookie_attributes() {
    let app = TestApp::new().await;
    let resp = app.send(Req::post("/v1/client")).await;
    let body = resp.ok().clone();
    assert_eq!(body["client"], Value::Null);
    assert_eq!(body["response"]["object"], "client");
    assert_eq!(body["response"]["sessions"], json!([]));
    assert!(resp.header("authorization").is_none());
    let line = resp.cookie_line("__client").expect("__client cookie");
    let attrs: Vec<&str> = line.split(';').map(str::trim).collect();
    for want in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure"] {
        assert!(attrs.contains(&want), "{want} missing from {line}");
    }
    let uat = resp.cookie_line("__client_uat").expect("__client_uat");
    assert!(uat.starts_with("__client_uat=0;"), "{uat}");
    assert!(uat.contains("Path=/") && uat.contains("SameSite=Lax") && uat.contains("Secure"));

    let cookie = resp.cookie("__client").unwrap();
    let resp = app
        .send(
            Req::get("/v1/client").header("cookie", &format!("theme=dark; __client={cookie}; x=1")),
        )
        .await;
    assert_eq!(resp.ok()["response"]["id"], body["response"]["id"]);
    assert_eq!(jwt_claims(&cookie)["id"], body["response"]["id"]);
}

#[tokio::test]
async fn cookies_are_not_secure_on_an_http_service() {
    let app = TestApp::with_env(&[("FRONTEND_API_URL", "http://localhost:3000")]).await;
    let resp = app.send(Req::post("/v1/client")).await;
    resp.ok();
    for name in ["__client", "__client_uat"] {
        let line = resp.cookie_line(name).expect(name);
        assert!(!line.contains("Secure"), "{line}");
        assert!(
            line.contains("Path=/") && line.contains("SameSite=Lax"),
            "{line}"
        );
    }
    assert!(resp.cookie_line("__client").unwrap().contains("HttpOnly"));
}

#[tokio::test]
async fn native_clients_use_the_authorization_header_raw_or_bearer() {
    let app = TestApp::new().await;
    let resp = app.send(Req::post("/v1/client?_is_native=1")).await;
    let id = client_id_of(&resp);
    assert!(resp.cookies().is_empty(), "no cookies for native callers");
    let token = resp.header("authorization").expect("token").to_string();
    assert!(!token.starts_with("Bearer"));
    for value in [
        token.clone(),
        format!("Bearer {token}"),
        format!("bearer {token}"),
    ] {
        let resp = app
            .send(
                Req::get("/v1/client")
                    .query("_is_native", "1")
                    .header("authorization", &value),
            )
            .await;
        assert_eq!(resp.ok()["response"]["id"], id.as_str(), "{value}");
        assert!(resp.cookies().is_empty());
    }
    // Two Authorization headers are refused.
    let resp = app
        .send(
            Req::get("/v1/client")
                .native(&token)
                .header("authorization", &token),
        )
        .await;
    resp.assert_error(400, "multiple_authorization_header_values_forbidden");
}

#[tokio::test]
async fn dev_browser_tokens_work_in_both_query_parameters() {
    let app = TestApp::development().await;
    let resp = app.send(Req::post("/v1/dev_browser")).await;
    let body = resp.ok();
    assert_eq!(body["object"], "dev_browser");
    let token = body["id"].as_str().expect("token").to_string();
    let id = jwt_claims(&token)["id"].as_str().unwrap().to_string();

    let resp = app.send(Req::get("/v1/client").dev(&token)).await;
    assert_eq!(resp.ok()["response"]["id"], id.as_str());
    let resp = app
        .send(Req::get("/v1/client").query("__dev_session", &token))
        .await;
    assert_eq!(resp.ok()["response"]["id"], id.as_str());

    // Sign in on the dev browser: the rotated token comes back in Clerk-Db-Jwt.
    let user = app.create_user().await;
    let ticket = app.ticket(&user).await;
    let resp = app
        .send(
            Req::post("/v1/client/sign_ins")
                .dev(&token)
                .form(&format!("strategy=ticket&ticket={ticket}")),
        )
        .await;
    let sid = resp.ok()["response"]["created_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(resp.body["client"]["id"], id.as_str());
    let new_token = resp
        .header("clerk-db-jwt")
        .expect("new dev token")
        .to_string();
    assert_ne!(new_token, token);
    assert!(resp.cookie("__client").is_none());

    let resp = app
        .send(Req::get(session_path(&sid, "")).dev(&new_token))
        .await;
    assert_eq!(resp.ok()["response"]["status"], "active");
    let resp = app.send(Req::get(session_path(&sid, "")).dev(&token)).await;
    resp.assert_error(401, "authentication_invalid");
}

#[tokio::test]
async fn native_beats_dev_browser_beats_cookie() {
    let app = TestApp::development().await;
    let native = app.send(Req::post("/v1/client?_is_native=1")).await;
    let (native_id, native_token) = (
        client_id_of(&native),
        native.header("authorization").unwrap().to_string(),
    );
    let dev = app.send(Req::post("/v1/dev_browser")).await;
    let dev_token = dev.ok()["id"].as_str().unwrap().to_string();
    let dev_id = jwt_claims(&dev_token)["id"].as_str().unwrap().to_string();
    let cookie = app.browser_client().await;
    let cookie_id = jwt_claims(&cookie)["id"].as_str().unwrap().to_string();

    let all = Req::get("/v1/client")
        .dev(&dev_token)
        .cookie(&cookie)
        .native(&native_token);
    assert_eq!(
        app.send(all).await.ok()["response"]["id"],
        native_id.as_str()
    );
    let dev_and_cookie = Req::get("/v1/client").dev(&dev_token).cookie(&cookie);
    assert_eq!(
        app.send(dev_and_cookie).await.ok()["response"]["id"],
        dev_id.as_str()
    );
    let legacy_and_cookie = Req::get("/v1/client")
        .query("__dev_session", &dev_token)
        .cookie(&cookie);
    assert_eq!(
        app.send(legacy_and_cookie).await.ok()["response"]["id"],
        dev_id.as_str()
    );
    let only_cookie = Req::get("/v1/client").cookie(&cookie);
    assert_eq!(
        app.send(only_cookie).await.ok()["response"]["id"],
        cookie_id.as_str()
    );

    // The winner is not second-guessed: a bad token there is not replaced by a good one
    // of a lower transport (the native caller starts over with a new client).
    let resp = app
        .send(
            Req::get("/v1/client")
                .cookie(&cookie)
                .native("bad.token.here"),
        )
        .await;
    assert_ne!(resp.ok()["response"]["id"], cookie_id.as_str());
    assert!(resp.header("authorization").is_some());
    let resp = app
        .send(Req::get("/v1/client").cookie(&cookie).dev("bad.token.here"))
        .await;
    resp.assert_error(401, "dev_browser_unauthenticated");
}

#[tokio::test]
async fn bad_client_tokens_are_401_authentication_invalid_never_500() {
    let app = TestApp::development().await;
    let other = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    let (foreign, _, _) = other.native_session().await;
    let before = app.stored_session(&sid).await;
    for (name, bad) in bad_tokens(&token, &foreign) {
        assert_every_transport_refuses(&app, &sid, name, &bad).await;
    }
    // Nothing changed, and the good token still works.
    assert_eq!(app.stored_session(&sid).await, before);
    let resp = app
        .send(Req::get(session_path(&sid, "")).native(&token))
        .await;
    assert_eq!(resp.ok()["response"]["status"], "active");
}

#[tokio::test]
async fn expired_client_tokens_are_refused() {
    let app = TestApp::with_env(&[
        ("INSTANCE_TYPE", "development"),
        ("CLIENT_TOKEN_LIFETIME_SECONDS", "3600"),
        ("SESSION_MAX_LIFETIME_SECONDS", "86400"),
    ])
    .await;
    let (token, sid, _) = app.native_session().await;
    let (cookie, cookie_sid, _) = app.browser_session().await;
    app.clock.advance_secs(3599);
    app.send(Req::get(session_path(&sid, "")).native(&token))
        .await
        .ok();
    app.clock.advance_secs(1);
    assert_every_transport_refuses(&app, &sid, "expired", &token).await;
    let resp = app
        .send(Req::get(session_path(&cookie_sid, "")).cookie(&cookie))
        .await;
    resp.assert_error(401, "authentication_invalid");
    // The cookie's Max-Age matched the token's lifetime.
    let fresh = app.send(Req::post("/v1/client")).await;
    assert!(fresh
        .cookie_line("__client")
        .unwrap()
        .contains("Max-Age=3600"));
}

#[tokio::test]
async fn sign_in_rotates_the_cookie_client_token() {
    let app = TestApp::new().await;
    // A token minted before the sign-in (as an attacker would plant it).
    let planted = app.browser_client().await;
    let user = app.create_user().await;
    let ticket = app.ticket(&user).await;
    let resp = app
        .send(
            Req::post("/v1/client/sign_ins")
                .cookie(&planted)
                .origin(APP_ORIGIN)
                .form(&format!("strategy=ticket&ticket={ticket}")),
        )
        .await;
    let sid = resp.ok()["response"]["created_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Same client, new token.
    assert_eq!(resp.body["client"]["id"], jwt_claims(&planted)["id"]);
    let fresh = resp.cookie("__client").expect("rotated cookie");
    assert_ne!(fresh, planted);
    assert_ne!(
        jwt_claims(&fresh)["rotating_token"],
        jwt_claims(&planted)["rotating_token"]
    );
    assert!(resp.header("authorization").is_none());

    // The planted token no longer reaches the client: `GET /v1/client` starts over with a
    // new, empty one.
    let resp = app.send(Req::get("/v1/client").cookie(&planted)).await;
    assert_ne!(resp.ok()["response"]["id"], jwt_claims(&planted)["id"]);
    assert_eq!(resp.body["response"]["sessions"], json!([]));
    let resp = app
        .send(Req::get(session_path(&sid, "")).cookie(&planted))
        .await;
    resp.assert_error(401, "authentication_invalid");
    let resp = app
        .send(Req::get(session_path(&sid, "")).cookie(&fresh))
        .await;
    assert_eq!(resp.ok()["response"]["status"], "active");
}

#[tokio::test]
async fn sign_in_rotates_the_native_client_token() {
    let app = TestApp::new().await;
    let resp = app.send(Req::post("/v1/client?_is_native=1")).await;
    let t0 = resp.header("authorization").unwrap().to_string();
    let user = app.create_user().await;
    let (t1, s1) = app.native_sign_in(&t0, &user).await;
    assert_ne!(t0, t1);
    let resp = app.send(Req::get(session_path(&s1, "")).native(&t0)).await;
    resp.assert_error(401, "authentication_invalid");
    let resp = app.send(Req::get(session_path(&s1, "")).native(&t1)).await;
    assert_eq!(resp.ok()["response"]["status"], "active");

    // Every sign-in rotates again (another user's: a user is signed in once per client).
    let (t2, s2) = app.native_sign_in(&t1, &app.create_user().await).await;
    let resp = app.send(Req::get("/v1/client").native(&t1)).await;
    assert_eq!(resp.ok()["response"]["sessions"], json!([]));
    let resp = app.send(Req::get(session_path(&s2, "")).native(&t1)).await;
    resp.assert_error(401, "authentication_invalid");
    let resp = app.send(Req::get("/v1/client").native(&t2)).await;
    assert_eq!(
        resp.ok()["response"]["sessions"].as_array().unwrap().len(),
        2
    );
    assert_eq!(resp.body["response"]["last_active_session_id"], s2.as_str());
}

#[tokio::test]
async fn client_uat_follows_the_client_on_browser_responses_only() {
    let app = TestApp::new().await;
    let cookie = app.browser_client().await;
    let user = app.create_user().await;
    let ticket = app.ticket(&user).await;
    app.clock.advance_secs(7);
    let resp = app
        .send(
            Req::post("/v1/client/sign_ins")
                .cookie(&cookie)
                .form(&format!("strategy=ticket&ticket={ticket}")),
        )
        .await;
    let sid = resp.ok()["response"]["created_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let signed_in = (START_MS / 1000 + 7).to_string();
    assert_eq!(resp.cookie("__client_uat"), Some(signed_in.clone()));
    let cookie = resp.cookie("__client").unwrap();

    let resp = app.send(Req::get("/v1/client").cookie(&cookie)).await;
    assert_eq!(resp.cookie("__client_uat"), Some(signed_in.clone()));
    let resp = app
        .send(Req::get(session_path(&sid, "")).cookie(&cookie))
        .await;
    assert_eq!(resp.cookie("__client_uat"), Some(signed_in.clone()));

    // Touching the session that is already the last active one changes nothing...
    app.clock.advance_secs(20);
    let resp = app
        .send(Req::post(session_path(&sid, "touch")).cookie(&cookie))
        .await;
    resp.ok();
    assert_eq!(resp.cookie("__client_uat"), Some(signed_in.clone()));
    // ...switching to another session moves the client, and its __client_uat.
    let ticket = app.ticket(&app.create_user().await).await;
    let resp = app
        .send(
            Req::post("/v1/client/sign_ins")
                .cookie(&cookie)
                .form(&format!("strategy=ticket&ticket={ticket}")),
        )
        .await;
    let cookie = resp.cookie("__client").unwrap();
    let sid2 = resp.ok()["response"]["created_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    app.clock.advance_secs(5);
    let resp = app
        .send(Req::post(session_path(&sid, "touch")).cookie(&cookie))
        .await;
    resp.ok();
    let touched = (START_MS / 1000 + 32).to_string();
    assert_eq!(resp.cookie("__client_uat"), Some(touched.clone()));

    let resp = app
        .send(Req::post(session_path(&sid, "end")).cookie(&cookie))
        .await;
    resp.ok();
    assert_eq!(
        resp.cookie("__client_uat"),
        Some(touched),
        "one still signed in"
    );
    let resp = app
        .send(Req::post(session_path(&sid2, "end")).cookie(&cookie))
        .await;
    resp.ok();
    assert_eq!(resp.cookie("__client_uat").as_deref(), Some("0"));

    // Native callers get no cookies at all.
    let (token, nsid, _) = app.native_session().await;
    for req in [
        Req::get("/v1/client").native(&token),
        Req::get(session_path(&nsid, "")).native(&token),
        Req::post(session_path(&nsid, "touch")).native(&token),
        Req::post(session_path(&nsid, "end")).native(&token),
    ] {
        let resp = app.send(req).await;
        resp.ok();
        assert!(resp.cookies().is_empty(), "{:?}", resp.cookies());
    }
    let user = app.create_user().await;
    let ticket = app.ticket(&user).await;
    let resp = app
        .send(
            Req::post("/v1/client/sign_ins?_is_native=1")
                .form(&format!("strategy=ticket&ticket={ticket}")),
        )
        .await;
    resp.ok();
    assert!(resp.cookies().is_empty());
}

#[tokio::test]
async fn a_session_of_another_client_is_answered_like_an_unknown_one() {
    let app = TestApp::new().await;
    let (token_a, sid_a, _) = app.native_session().await;
    let (token_b, sid_b, _) = app.native_session().await;
    let (cookie_c, _, _) = app.browser_session().await;
    let empty = app.browser_client().await;
    app.send(Req::post(session_path(&sid_a, "tokens")).native(&token_a))
        .await
        .ok();
    let stored_a = app.stored_session(&sid_a).await;
    let client_a = app.stored_client(&stored_a.client_id).await.client;

    let strip = |resp: &TestResponse| {
        let e = &resp.body["errors"][0];
        (
            resp.status,
            e["code"].clone(),
            e["message"].clone(),
            e["long_message"].clone(),
        )
    };
    for who in ["native", "cookie", "empty client"] {
        let auth = |req: Req| match who {
            "native" => req.native(&token_b),
            "cookie" => req.cookie(&cookie_c).origin(APP_ORIGIN),
            _ => req.cookie(&empty),
        };
        for (method, suffix) in SESSION_ENDPOINTS {
            let theirs = app
                .send(auth(Req::new(method, session_path(&sid_a, suffix))))
                .await;
            let unknown = app
                .send(auth(Req::new(
                    method,
                    session_path("sess_2xunknownxxxxxxxxxxxxxxxxx", suffix),
                )))
                .await;
            theirs.assert_error(404, "resource_not_found");
            assert_eq!(strip(&theirs), strip(&unknown), "{who} {method} {suffix}");
            assert!(
                !theirs.body.to_string().contains(&client_a.id),
                "leaks the owner's client id"
            );
        }
        // Signing out everywhere on the attacker's client leaves A alone.
        app.send(auth(Req::delete("/v1/client/sessions")))
            .await
            .ok();
    }
    assert_eq!(app.stored_session(&sid_a).await, stored_a);
    assert_eq!(
        app.stored_client(&stored_a.client_id).await.client,
        client_a
    );
    let resp = app
        .send(Req::get(session_path(&sid_a, "")).native(&token_a))
        .await;
    assert_eq!(resp.ok()["response"]["status"], "active");
    // B's own session was signed out by its own DELETE, not A's.
    assert_eq!(app.bapi_session(&sid_b).await["status"], "removed");
}

#[tokio::test]
async fn cors_answers_allowed_origins_exactly() {
    let app = TestApp::new().await;
    for origin in [APP_ORIGIN, FAPI_URL] {
        let resp = app.send(Req::get("/v1/client").origin(origin)).await;
        resp.ok();
        assert_eq!(resp.header("access-control-allow-origin"), Some(origin));
        assert_eq!(
            resp.header("access-control-allow-credentials"),
            Some("true")
        );
        let exposed = resp
            .header("access-control-expose-headers")
            .unwrap()
            .to_ascii_lowercase();
        for h in ["authorization", "clerk-db-jwt", "retry-after", "x-country"] {
            assert!(exposed.contains(h), "{h} not exposed: {exposed}");
        }
        assert!(resp
            .headers
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().contains("Origin")));
    }
    // Errors are readable by allowed origins too (clerk-js reads the codes).
    let resp = app
        .send(Req::get(session_path("sess_x", "")).origin(APP_ORIGIN))
        .await;
    resp.assert_error(401, "signed_out");
    assert_eq!(resp.header("access-control-allow-origin"), Some(APP_ORIGIN));

    for origin in [
        "https://evil.example.com",
        "https://app.example.com.evil.com",
        "http://app.example.com",
        "https://APP.example.com",
    ] {
        let resp = app.send(Req::get("/v1/client").origin(origin)).await;
        resp.ok();
        for h in [
            "access-control-allow-origin",
            "access-control-allow-credentials",
            "access-control-expose-headers",
        ] {
            assert!(resp.header(h).is_none(), "{h} for {origin}");
        }
    }
    // No Origin, no CORS headers.
    let resp = app.send(Req::get("/v1/client")).await;
    assert!(resp.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn cookie_posts_from_disallowed_origins_are_refused_and_change_nothing() {
    let app = TestApp::new().await;
    let (cookie, sid, user) = app.browser_session().await;
    let stored = app.stored_session(&sid).await;
    let client = app.stored_client(&stored.client_id).await.client;
    // Another user's ticket: the sign-in that finally lands adds a second account.
    let ticket = app.ticket(&app.create_user().await).await;
    for origin in ["https://evil.example.com", "null"] {
        for req in [
            Req::post(session_path(&sid, "end")),
            Req::post(session_path(&sid, "remove")),
            Req::post(session_path(&sid, "touch")),
            Req::post(session_path(&sid, "tokens")),
            Req::delete("/v1/client/sessions"),
            Req::post("/v1/client/sessions?_method=DELETE"),
            Req::post("/v1/client"),
            Req::post("/v1/client/sign_ins").form(&format!("strategy=ticket&ticket={ticket}")),
        ] {
            let resp = app.send(req.cookie(&cookie).origin(origin)).await;
            resp.assert_error(400, "origin_invalid");
            assert!(resp.cookie("__client").is_none());
        }
    }
    assert_eq!(app.stored_session(&sid).await, stored);
    assert_eq!(app.stored_client(&stored.client_id).await.client, client);
    assert_eq!(app.user_sessions(&user).await.len(), 1);
    let resp = app
        .send(Req::get(session_path(&sid, "")).cookie(&cookie))
        .await;
    assert_eq!(resp.ok()["response"]["status"], "active");
    // The ticket was not spent by the refused sign-in.
    let resp = app
        .send(
            Req::post("/v1/client/sign_ins")
                .cookie(&cookie)
                .origin(APP_ORIGIN)
                .form(&format!("strategy=ticket&ticket={ticket}")),
        )
        .await;
    resp.ok();

    // The same POST from an allowed origin works.
    let resp = app
        .send(
            Req::post(session_path(&sid, "end"))
                .cookie(resp.cookie("__client").as_deref().unwrap())
                .origin(APP_ORIGIN),
        )
        .await;
    assert_eq!(resp.ok()["response"]["status"], "ended");
    assert_eq!(resp.header("access-control-allow-origin"), Some(APP_ORIGIN));
}

#[tokio::test]
async fn repeated_origin_headers_are_refused() {
    let app = TestApp::new().await;
    let (cookie, sid, _) = app.browser_session().await;
    let resp = app
        .send(
            Req::post(session_path(&sid, "end"))
                .cookie(&cookie)
                .origin(APP_ORIGIN)
                .origin("https://evil.example.com"),
        )
        .await;
    resp.assert_error(400, "multiple_origin_header_values_forbidden");
    assert_eq!(app.bapi_session(&sid).await["status"], "active");
}

#[tokio::test]
async fn preflight_is_204_with_cors_for_allowed_origins() {
    let app = TestApp::new().await;
    for path in [
        "/v1/client".to_string(),
        "/v1/client/sessions".to_string(),
        session_path("sess_abc", "touch"),
        session_path("sess_abc", "tokens/supabase"),
    ] {
        let resp = app
            .send(
                Req::options(path.as_str())
                    .origin(APP_ORIGIN)
                    .header("access-control-request-method", "POST"),
            )
            .await;
        assert_eq!(resp.status, 204, "{path}");
        assert_eq!(resp.header("access-control-allow-origin"), Some(APP_ORIGIN));
        assert_eq!(
            resp.header("access-control-allow-credentials"),
            Some("true")
        );
        let methods = resp.header("access-control-allow-methods").unwrap();
        assert!(
            methods.contains("POST") && methods.contains("GET"),
            "{methods}"
        );
        assert!(resp.header("access-control-allow-headers").is_some());
    }
    let resp = app
        .send(Req::options("/v1/client").origin("https://evil.example.com"))
        .await;
    assert_eq!(resp.status, 204);
    assert!(resp.header("access-control-allow-origin").is_none());
    assert!(resp.header("access-control-allow-methods").is_none());
    let resp = app.send(Req::options("/v1/nope").origin(APP_ORIGIN)).await;
    resp.assert_error(404, "resource_not_found");
}

#[tokio::test]
async fn production_refuses_the_dev_browser_and_changes_nothing() {
    let dev = TestApp::development().await;
    let token = dev.send(Req::post("/v1/dev_browser")).await.ok()["id"]
        .as_str()
        .expect("dev browser token")
        .to_string();
    // Production is the default instance type.
    let app = TestApp::new().await;
    app.send(Req::post("/v1/dev_browser"))
        .await
        .assert_error(400, "host_invalid");
    for name in ["__clerk_db_jwt", "__dev_session"] {
        let resp = app.send(Req::get("/v1/client").query(name, &token)).await;
        resp.assert_error(401, "dev_browser_unauthenticated");
        let resp = app.send(Req::post("/v1/client").query(name, &token)).await;
        resp.assert_error(401, "dev_browser_unauthenticated");
        assert!(resp.header("clerk-db-jwt").is_none());
    }
    // A cookie client still works beside the refusals.
    let cookie = app.browser_client().await;
    app.send(Req::get("/v1/client").cookie(&cookie)).await.ok();
    // The environment document says which kind of instance this is.
    for (app, kind) in [(&app, "production"), (&dev, "development")] {
        let env = app.send(Req::get("/v1/environment")).await;
        assert_eq!(
            env.ok()["display_config"]["instance_environment_type"],
            kind
        );
    }
}

/// Cookie tossing: a sibling site sets more `__client` cookies on the parent domain, sent
/// before the browser's own: a superseded token of this instance, or junk. The caller's
/// valid cookie still leads to its client, on every route, and is never cleared.
#[tokio::test]
async fn tossed_client_cookies_do_not_hide_the_valid_one() {
    let app = TestApp::new().await;
    // A superseded token: minted before a sign-in rotated its client's token.
    let superseded = app.browser_client().await;
    let user = app.create_user().await;
    let ticket = app.ticket(&user).await;
    app.send(
        Req::post("/v1/client/sign_ins")
            .cookie(&superseded)
            .origin(APP_ORIGIN)
            .form(&format!("strategy=ticket&ticket={ticket}")),
    )
    .await
    .ok();
    let (valid, sid, _) = app.browser_session().await;
    let client_id = jwt_claims(&valid)["id"].clone();
    let junk = |n: usize| {
        (0..n)
            .map(|i| format!("__client=junk.{i}.x; "))
            .collect::<String>()
    };
    for (case, cookies) in [
        (
            "superseded first",
            format!("__client={superseded}; __client={valid}"),
        ),
        ("four junk first", format!("{}__client={valid}", junk(4))),
        (
            "junk and superseded first",
            format!("{}__client={superseded}; __client={valid}", junk(6)),
        ),
    ] {
        let resp = app
            .send(Req::get("/v1/client").header("cookie", &cookies))
            .await;
        assert_eq!(resp.ok()["response"]["id"], client_id, "{case}");
        assert!(
            resp.cookie("__client").is_none(),
            "{case}: no new or cleared cookie"
        );
        let resp = app
            .send(Req::get(session_path(&sid, "")).header("cookie", &cookies))
            .await;
        assert_eq!(resp.ok()["response"]["status"], "active", "{case}");
        assert!(resp.cookie("__client").is_none(), "{case}: not cleared");
        let resp = app
            .send(
                Req::post(session_path(&sid, "tokens"))
                    .header("cookie", &cookies)
                    .origin(APP_ORIGIN),
            )
            .await;
        assert_eq!(
            jwt_claims(resp.ok()["jwt"].as_str().unwrap())["sid"],
            sid.as_str(),
            "{case}"
        );
    }
    // Only junk: refused and cleared, as before.
    let resp = app
        .send(Req::get(session_path(&sid, "")).header("cookie", &junk(3)))
        .await;
    resp.assert_error(401, "authentication_invalid");
    assert_eq!(resp.cookie("__client").as_deref(), Some(""));
}
