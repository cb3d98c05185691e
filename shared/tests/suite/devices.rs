//! Sessions users can see and control, on every store: each session's activity (browser,
//! device, address, and place behind CloudFront), the signed-in user's sessions across
//! devices (`/v1/me/sessions`), and revoking one of them from another device.

use std::sync::Arc;

use serde_json::Value;
use shared::store::Store;
use testkit::app::*;

testkit::each_store!(
    a_sign_in_records_where_the_session_was_made,
    activity_is_refreshed_with_the_activity_interval_never_per_token,
    a_user_lists_its_sessions_on_every_device,
    a_user_revokes_a_session_from_another_device_never_someone_elses,
    racing_revokes_of_one_session_revoke_it_once,
    a_users_sessions_come_in_pages,
);

/// `/v1/me/sessions` pages as Clerk's lists do (`limit`, `offset`, newest first); without
/// them (clerk-js) it answers up to 100.
async fn a_users_sessions_come_in_pages(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let user = app.create_user().await;
    let mut sids = Vec::new();
    let mut token = String::new();
    for _ in 0..5 {
        app.clock.advance_secs(1);
        let (t, sid) = sign_in_from(&app, &user, MAC_CHROME, "203.0.113.9").await;
        token = t;
        sids.push(sid);
    }
    sids.reverse(); // newest first
    let ids = |resp: &TestResponse| -> Vec<String> {
        resp.body
            .as_array()
            .expect("a bare array")
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    for path in ["/v1/me/sessions", "/v1/me/sessions/active"] {
        let all = app.send(Req::get(path).native(&token)).await;
        assert_eq!(all.status, 200, "{}", all.body);
        assert_eq!(ids(&all), sids, "{path}");
        let page = app
            .send(Req::get(format!("{path}?limit=2&offset=1")).native(&token))
            .await;
        assert_eq!(ids(&page), sids[1..3], "{path}");
        let past = app
            .send(Req::get(format!("{path}?offset=9")).native(&token))
            .await;
        assert!(ids(&past).is_empty(), "{path}");
        for bad in ["limit=0", "limit=501", "limit=ten", "offset=-1"] {
            let param = bad.split('=').next().unwrap();
            app.send(Req::get(format!("{path}?{bad}")).native(&token))
                .await
                .assert_param_error(422, "form_param_value_invalid", param);
        }
    }
}

const MAC_CHROME: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const IPHONE_SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// A native sign-in of `user` on a new client, from a device: (client token, session id).
async fn sign_in_from(app: &TestApp, user: &str, ua: &str, ip: &str) -> (String, String) {
    let client = app.send(Req::post("/v1/client?_is_native=1")).await;
    let token = client.header("authorization").unwrap().to_string();
    let ticket = app.ticket(user).await;
    let resp = app
        .send(
            Req::post("/v1/client/sign_ins")
                .native(&token)
                .header("user-agent", ua)
                .from_ip(ip)
                .form(&format!("strategy=ticket&ticket={ticket}")),
        )
        .await;
    resp.signed_in()
}

fn activity(session: &Value) -> &Value {
    &session["latest_activity"]
}

async fn a_sign_in_records_where_the_session_was_made(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let user = app.create_user().await;
    // CloudFront's viewer headers are ignored without CloudFront in front: anyone can
    // write them.
    let client = app.send(Req::post("/v1/client?_is_native=1")).await;
    let token = client.header("authorization").unwrap().to_string();
    let ticket = app.ticket(&user).await;
    let resp = app
        .send(
            Req::post("/v1/client/sign_ins")
                .native(&token)
                .header("user-agent", IPHONE_SAFARI)
                .header("cloudfront-viewer-address", "198.51.100.77:443")
                .header("cloudfront-viewer-city", "Lisbon")
                .header("cloudfront-viewer-country", "PT")
                .from_ip("203.0.113.9")
                .form(&format!("strategy=ticket&ticket={ticket}")),
        )
        .await;
    let sid = resp.body["response"]["created_session_id"]
        .as_str()
        .unwrap();
    let session = app.bapi_session(sid).await;
    let a = activity(&session);
    assert_eq!(a["object"], "session_activity");
    assert!(a["id"].as_str().unwrap().starts_with("sessact_"));
    assert_eq!(a["browser_name"], "Safari");
    assert_eq!(a["device_type"], "iPhone");
    assert_eq!(a["is_mobile"], true);
    assert_eq!(a["ip_address"], "203.0.113.9");
    assert_eq!(a["city"], Value::Null);
    assert_eq!(a["country"], Value::Null);
}

async fn activity_is_refreshed_with_the_activity_interval_never_per_token(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let user = app.create_user().await;
    let (token, sid) = sign_in_from(&app, &user, MAC_CHROME, "203.0.113.9").await;
    let first = activity(&app.bapi_session(&sid).await).clone();
    // Within the interval a token from elsewhere records nothing.
    let mint = |ua: &str, ip: &str| {
        Req::post(session_path(&sid, "tokens"))
            .native(&token)
            .header("user-agent", ua)
            .from_ip(ip)
    };
    app.send(mint(IPHONE_SAFARI, "198.51.100.1")).await.ok();
    assert_eq!(activity(&app.bapi_session(&sid).await), &first);
    // Past it, the next token records where it came from.
    app.clock.advance_secs(2 * 3600);
    app.send(mint(IPHONE_SAFARI, "198.51.100.1")).await.ok();
    let moved = app.bapi_session(&sid).await;
    assert_eq!(activity(&moved)["browser_name"], "Safari");
    assert_eq!(activity(&moved)["ip_address"], "198.51.100.1");
    assert_ne!(activity(&moved)["id"], first["id"]);
    // The Backend API is the app's server, not a device: it records no place.
    app.clock.advance_secs(2 * 3600);
    let minted = app
        .send(
            Req::post(format!("/v1/sessions/{sid}/tokens"))
                .secret()
                .from_ip("192.0.2.1"),
        )
        .await;
    minted.ok();
    assert_eq!(
        activity(&app.bapi_session(&sid).await)["ip_address"],
        "198.51.100.1"
    );
}

async fn a_user_lists_its_sessions_on_every_device(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let user = app.create_user().await;
    let (laptop, laptop_sid) = sign_in_from(&app, &user, MAC_CHROME, "203.0.113.9").await;
    let (_, phone_sid) = sign_in_from(&app, &user, IPHONE_SAFARI, "198.51.100.1").await;
    let (ended_token, ended_sid) = sign_in_from(&app, &user, MAC_CHROME, "203.0.113.9").await;
    app.send(Req::post(session_path(&ended_sid, "end")).native(&ended_token))
        .await
        .ok();
    // Someone else's session is never listed.
    let stranger = app.create_user().await;
    let (_, stranger_sid) = sign_in_from(&app, &stranger, MAC_CHROME, "192.0.2.5").await;

    let active = app
        .send(
            Req::get(format!(
                "/v1/me/sessions/active?_clerk_session_id={laptop_sid}"
            ))
            .native(&laptop),
        )
        .await;
    let listed = active.ok().as_array().expect("a bare array");
    let ids: Vec<&str> = listed.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&laptop_sid.as_str()) && ids.contains(&phone_sid.as_str()));
    let phone = listed
        .iter()
        .find(|s| s["id"] == phone_sid.as_str())
        .unwrap();
    assert_eq!(phone["object"], "session");
    assert_eq!(phone["status"], "active");
    assert_eq!(activity(phone)["browser_name"], "Safari");
    assert_eq!(activity(phone)["is_mobile"], true);
    assert_eq!(activity(phone)["ip_address"], "198.51.100.1");
    assert_eq!(phone["user"]["id"], user.as_str());

    let all = app.send(Req::get("/v1/me/sessions").native(&laptop)).await;
    let all: Vec<&str> = all
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(all.len(), 3, "every status: {all:?}");
    assert!(all.contains(&ended_sid.as_str()));
    assert!(!all.contains(&stranger_sid.as_str()));

    // Without a signed-in session there is no "me".
    app.send(Req::get("/v1/me/sessions/active").native(&ended_token))
        .await
        .assert_error(401, "signed_out");
    app.send(Req::get("/v1/me/sessions/active"))
        .await
        .assert_error(401, "signed_out");
}

async fn a_user_revokes_a_session_from_another_device_never_someone_elses(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let user = app.create_user().await;
    let (laptop, laptop_sid) = sign_in_from(&app, &user, MAC_CHROME, "203.0.113.9").await;
    let (phone, phone_sid) = sign_in_from(&app, &user, IPHONE_SAFARI, "198.51.100.1").await;
    let stranger = app.create_user().await;
    let (_, stranger_sid) = sign_in_from(&app, &stranger, MAC_CHROME, "192.0.2.5").await;

    // Another user's session answers exactly like an unknown one, and stays active.
    for target in [stranger_sid.as_str(), "sess_unknown"] {
        app.send(
            Req::post(format!(
                "/v1/me/sessions/{target}/revoke?_clerk_session_id={laptop_sid}"
            ))
            .native(&laptop),
        )
        .await
        .assert_error(404, "resource_not_found");
    }
    assert_eq!(app.bapi_session(&stranger_sid).await["status"], "active");

    let resp = app
        .send(
            Req::post(format!(
                "/v1/me/sessions/{phone_sid}/revoke?_clerk_session_id={laptop_sid}"
            ))
            .native(&laptop),
        )
        .await;
    assert_eq!(resp.ok()["response"]["id"], phone_sid.as_str());
    assert_eq!(resp.body["response"]["status"], "revoked");
    assert_eq!(
        resp.body["client"]["last_active_session_id"],
        laptop_sid.as_str()
    );
    // The phone is signed out: its next token is refused.
    app.send(Req::post(session_path(&phone_sid, "tokens")).native(&phone))
        .await
        .assert_error(401, "signed_out");
    // A second revoke is the transition's own 400; the laptop is untouched.
    app.send(
        Req::post(format!(
            "/v1/me/sessions/{phone_sid}/revoke?_clerk_session_id={laptop_sid}"
        ))
        .native(&laptop),
    )
    .await
    .assert_error(400, "invalid_action_for_session");
    app.send(Req::post(session_path(&laptop_sid, "tokens")).native(&laptop))
        .await
        .ok();
    // The revoked phone cannot act as "me" any more.
    app.send(Req::post(format!("/v1/me/sessions/{laptop_sid}/revoke")).native(&phone))
        .await
        .assert_error(401, "signed_out");
}

#[tokio::test]
async fn behind_cloudfront_the_viewer_address_and_place_are_recorded() {
    let secret = "edge-secret-0123456789-0123456789-abc";
    let app = TestApp::with_env(&[("ORIGIN_VERIFY_SECRET", secret)]).await;
    let client = app
        .send(Req::post("/v1/client?_is_native=1").header("x-origin-verify", secret))
        .await;
    let token = client.header("authorization").unwrap().to_string();
    let created = app
        .send(
            Req::post("/v1/users")
                .secret()
                .header("x-origin-verify", secret)
                .json(&serde_json::json!({"first_name": "Vera"})),
        )
        .await;
    let user = created.ok()["id"].as_str().unwrap().to_string();
    let ticket = {
        let t = app
            .send(
                Req::post("/v1/sign_in_tokens")
                    .secret()
                    .header("x-origin-verify", secret)
                    .json(&serde_json::json!({"user_id": user})),
            )
            .await;
        t.ok()["token"].as_str().unwrap().to_string()
    };
    let resp = app
        .send(
            Req::post("/v1/client/sign_ins")
                .native(&token)
                .header("x-origin-verify", secret)
                .header("user-agent", MAC_CHROME)
                .header("cloudfront-viewer-address", "2001:db8::7:51234")
                .header("cloudfront-viewer-city", "Lisbon")
                .header("cloudfront-viewer-country", "PT")
                // API Gateway sees CloudFront's address, not the viewer's.
                .from_ip("130.176.0.1")
                .form(&format!("strategy=ticket&ticket={ticket}")),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let sid = resp.body["response"]["created_session_id"]
        .as_str()
        .unwrap();
    let session = app
        .send(
            Req::get(format!("/v1/sessions/{sid}"))
                .secret()
                .header("x-origin-verify", secret),
        )
        .await;
    let a = activity(session.ok());
    assert_eq!(a["ip_address"], "2001:db8::7");
    assert_eq!(a["city"], "Lisbon");
    assert_eq!(a["country"], "PT");
    assert_eq!(a["browser_name"], "Chrome");
}

async fn racing_revokes_of_one_session_revoke_it_once(store: Arc<dyn Store>) {
    let app = Arc::new(TestApp::on(store).await);
    let user = app.create_user().await;
    let (laptop, laptop_sid) = sign_in_from(&app, &user, MAC_CHROME, "203.0.113.9").await;
    let (_, phone_sid) = sign_in_from(&app, &user, IPHONE_SAFARI, "198.51.100.1").await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (app, laptop, laptop_sid, phone_sid) = (
            Arc::clone(&app),
            laptop.clone(),
            laptop_sid.clone(),
            phone_sid.clone(),
        );
        tasks.push(tokio::spawn(async move {
            app.send(
                Req::post(format!(
                    "/v1/me/sessions/{phone_sid}/revoke?_clerk_session_id={laptop_sid}"
                ))
                .native(&laptop),
            )
            .await
        }));
    }
    let mut revoked = 0;
    for task in tasks {
        let resp = task.await.unwrap();
        match resp.status {
            200 => revoked += 1,
            _ => resp.assert_error(400, "invalid_action_for_session"),
        }
    }
    assert_eq!(revoked, 1, "exactly one revoke lands");
    assert_eq!(app.bapi_session(&phone_sid).await["status"], "revoked");
    assert_eq!(app.bapi_session(&laptop_sid).await["status"], "active");
}
