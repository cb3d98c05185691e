//! Ticket sign-in, the Backend API subset, and the errors every route shares.

use serde_json::{json, Value};
use shared::routes::routes;
use testkit::app::*;

fn sign_in_form(ticket: &str) -> String {
    format!("strategy=ticket&ticket={ticket}")
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect()
}

// ----- ticket sign-in -----

#[tokio::test]
async fn a_ticket_signs_in_a_browser_without_a_client() {
    let app = TestApp::new().await;
    let user = app.create_user().await;
    let ticket = app.ticket(&user).await;
    let resp = app
        .send(
            Req::post("/v1/client/sign_ins")
                .origin(APP_ORIGIN)
                .form(&sign_in_form(&ticket)),
        )
        .await;
    let body = resp.ok();
    let sign_in = &body["response"];
    assert_eq!(sign_in["object"], "sign_in_attempt");
    assert_eq!(sign_in["status"], "complete");
    assert_eq!(sign_in["identifier"], "ada@example.com");
    assert_eq!(sign_in["first_factor_verification"]["strategy"], "ticket");
    assert_eq!(sign_in["first_factor_verification"]["status"], "verified");
    let sid = sign_in["created_session_id"].as_str().unwrap();
    let client = &body["client"];
    assert_eq!(client["last_active_session_id"], sid);
    assert_eq!(ids(&client["sessions"]), [sid]);
    assert_eq!(client["sessions"][0]["status"], "active");
    assert_eq!(client["sessions"][0]["user"]["id"], user.as_str());
    assert!(
        !body.to_string().contains("private_metadata"),
        "private metadata on the Frontend API"
    );

    let cookie = resp.cookie("__client").expect("a new client's cookie");
    assert!(resp.header("authorization").is_none());
    assert_eq!(
        resp.cookie("__client_uat"),
        Some((START_MS / 1000).to_string())
    );
    let me = app.send(Req::get("/v1/client").cookie(&cookie)).await;
    assert_eq!(me.ok()["response"]["id"], client["id"]);

    let session = app.bapi_session(sid).await;
    assert_eq!(session["user_id"], user.as_str());
    assert_eq!(session["client_id"], client["id"]);
    let user_json = app
        .send(Req::get(format!("/v1/users/{user}")).secret())
        .await;
    assert_eq!(user_json.ok()["last_sign_in_at"], START_MS);
}

#[tokio::test]
async fn a_ticket_signs_in_a_native_app_without_a_client() {
    let app = TestApp::new().await;
    let user = app.create_user().await;
    let ticket = app.ticket(&user).await;
    let resp = app
        .send(Req::post("/v1/client/sign_ins?_is_native=1").form(&sign_in_form(&ticket)))
        .await;
    let body = resp.ok();
    assert_eq!(body["response"]["status"], "complete");
    let sid = body["response"]["created_session_id"].as_str().unwrap();
    assert_eq!(body["client"]["last_active_session_id"], sid);
    assert!(resp.cookies().is_empty());
    let token = resp.header("authorization").expect("client token");
    let resp = app
        .send(Req::get(session_path(sid, "")).native(token))
        .await;
    assert_eq!(resp.ok()["response"]["status"], "active");
}

#[tokio::test]
async fn signing_in_again_adds_a_session_to_the_same_client() {
    let app = TestApp::new().await;
    let (token, s1, user) = app.native_session().await;
    let other_user = app.create_user().await;
    let ticket = app.ticket(&other_user).await;
    let resp = app
        .send(
            Req::post("/v1/client/sign_ins")
                .native(&token)
                .form(&sign_in_form(&ticket)),
        )
        .await;
    let body = resp.ok();
    let s2 = body["response"]["created_session_id"].as_str().unwrap();
    assert_ne!(s2, s1);
    assert_eq!(body["client"]["last_active_session_id"], s2);
    assert_eq!(ids(&body["client"]["sessions"]), [s1.as_str(), s2]);
    assert_eq!(
        app.bapi_session(s2).await["client_id"],
        app.bapi_session(&s1).await["client_id"]
    );
    assert_eq!(app.user_sessions(&user).await.len(), 1);
    assert_eq!(app.user_sessions(&other_user).await.len(), 1);
}

#[tokio::test]
async fn used_expired_and_unknown_tickets_create_nothing() {
    let app = TestApp::new().await;
    let user = app.create_user().await;
    let used = app.ticket(&user).await;
    app.send(Req::post("/v1/client/sign_ins?_is_native=1").form(&sign_in_form(&used)))
        .await
        .ok();
    let short = app.ticket_expiring(&user, 60).await;
    let still_good = app.ticket_expiring(&user, 61).await;
    app.clock.advance_secs(60);
    assert_eq!(app.user_sessions(&user).await.len(), 1);

    let cases = [
        ("used", used.clone(), "ticket_invalid"),
        ("expired", short, "ticket_expired"),
        (
            "unknown",
            "tkt_unknown_ticket_value".to_string(),
            "ticket_invalid",
        ),
        ("too long", "t".repeat(300), "ticket_invalid"),
        (
            "odd characters",
            "%F0%9F%92%A9%00".to_string(),
            "ticket_invalid",
        ),
    ];
    for (name, ticket, code) in cases {
        for native in [false, true] {
            let uri = if native {
                "/v1/client/sign_ins?_is_native=1"
            } else {
                "/v1/client/sign_ins"
            };
            let resp = app.send(Req::post(uri).form(&sign_in_form(&ticket))).await;
            assert_eq!(resp.status, 400, "{name}: {}", resp.body);
            resp.assert_param_error(400, code, "ticket");
            assert!(
                resp.cookie("__client").is_none(),
                "{name}: a client was made"
            );
            assert!(resp.header("authorization").is_none(), "{name}");
        }
    }
    assert_eq!(app.user_sessions(&user).await.len(), 1);

    // A failed sign-in on an existing client leaves its token and sessions alone.
    let (token, sid, _) = app.native_session().await;
    let resp = app
        .send(
            Req::post("/v1/client/sign_ins")
                .native(&token)
                .form(&sign_in_form(&used)),
        )
        .await;
    resp.assert_error(400, "ticket_invalid");
    let me = app.send(Req::get("/v1/client").native(&token)).await;
    assert_eq!(ids(&me.ok()["response"]["sessions"]), [sid.as_str()]);

    // One second short of its expiry a ticket still works.
    app.send(Req::post("/v1/client/sign_ins?_is_native=1").form(&sign_in_form(&still_good)))
        .await
        .ok();
    assert_eq!(app.user_sessions(&user).await.len(), 2);
}

#[tokio::test]
async fn sign_in_form_errors_name_the_parameter() {
    let app = TestApp::new().await;
    let user = app.create_user().await;
    let ticket = app.ticket(&user).await;
    // (Without a strategy or an identifier, a sign-in starts and waits for one.)
    let missing = [
        ("strategy=ticket", "ticket"),
        ("strategy=ticket&ticket=", "ticket"),
        ("strategy=password&password=hunter2", "identifier"),
        ("strategy=email_code", "identifier"),
        ("identifier=ada@example.com&strategy=password", "password"),
    ];
    for (form, param) in missing {
        let resp = app.send(Req::post("/v1/client/sign_ins").form(form)).await;
        resp.assert_param_error(422, "form_param_missing", param);
    }
    for strategy in ["oauth_google", "phone_code", "TICKET"] {
        let resp = app
            .send(Req::post("/v1/client/sign_ins").form(&format!(
                "strategy={strategy}&ticket={ticket}&password=hunter2"
            )))
            .await;
        resp.assert_param_error(422, "form_param_value_invalid", "strategy");
    }
    let resp = app
        .send(
            Req::post("/v1/client/sign_ins").json(&json!({"strategy": "ticket", "ticket": ticket})),
        )
        .await;
    resp.assert_error(415, "unsupported_content_type");
    // None of that spent the ticket.
    assert!(app.user_sessions(&user).await.is_empty());
    app.send(Req::post("/v1/client/sign_ins").form(&sign_in_form(&ticket)))
        .await
        .ok();
}

// ----- Backend API -----

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "x_1" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_backend_route_needs_the_secret_key() {
    let app = TestApp::new().await;
    let (_, sid, user) = app.native_session().await;
    let wrong_keys = [
        None,
        Some(String::new()),
        Some("Bearer".to_string()),
        Some("Bearer ".to_string()),
        Some(SECRET.to_string()),
        Some(format!("Basic {SECRET}")),
        Some("Bearer sk_test_wrong_key_0123456789abcdef".to_string()),
        Some(format!("Bearer {SECRET}x")),
        Some(format!("Bearer {}", &SECRET[..SECRET.len() - 1])),
    ];
    // The Backend API is the routes of the `bapi` function; each must be counted as a
    // Backend API endpoint, and no other route may be.
    let misfiled: Vec<String> = routes()
        .filter(|(f, r)| (f.name == "bapi") == r.endpoint.is_frontend())
        .map(|(f, r)| format!("{r:?} of the {} function", f.name))
        .collect();
    assert!(
        misfiled.is_empty(),
        "Endpoint::is_frontend disagrees with the route table for: {misfiled:?}; \
         a route's API is its function's (shared/src/route_table.rs)"
    );
    let backend: Vec<_> = routes()
        .filter(|(f, _)| f.name == "bapi")
        .map(|(_, r)| r)
        .collect();
    assert!(!backend.is_empty(), "no Backend API route");
    for route in backend {
        // Real ids, so a missing check could not hide behind a 404.
        let path = route
            .path
            .replace("{session_id}", &sid)
            .replace("{user_id}", &user)
            .replace("{template_name}", "hasura")
            .replace("{template_id}", "jtmp_1")
            .replace("{endpoint_id}", "ep_1");
        for key in &wrong_keys {
            let mut req =
                Req::new(route.method.as_str(), path.clone()).json(&json!({"user_id": user}));
            if let Some(k) = key {
                req = req.header("authorization", k);
            }
            let resp = app.send(req).await;
            resp.assert_error(401, "authentication_invalid");
        }
        // And with unknown ids too.
        let resp = app
            .send(Req::new(route.method.as_str(), concrete(route.path)))
            .await;
        resp.assert_error(401, "authentication_invalid");
    }
    // Nothing happened to the session.
    assert_eq!(app.bapi_session(&sid).await["status"], "active");
    assert_eq!(app.user_sessions(&user).await.len(), 1);
}

#[tokio::test]
async fn users_are_created_and_read_back() {
    let app = TestApp::new().await;
    let resp = app
        .send(Req::post("/v1/users").secret().json(&json!({
            "external_id": "ext-42",
            "first_name": "Grace",
            "last_name": "Hopper",
            "username": "grace_h",
            "image_url": "https://img.example.com/g.png",
            "email_address": ["grace@example.com", "g@navy.example.mil"],
            "phone_number": ["+15555550123"],
            "public_metadata": {"role": "admiral"},
            "private_metadata": {"ssn": "nope"},
            "unsafe_metadata": {"theme": "dark"},
        })))
        .await;
    let created = resp.ok().clone();
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("user_"));
    assert_eq!(created["object"], "user");
    assert_eq!(created["first_name"], "Grace");
    assert_eq!(created["last_name"], "Hopper");
    assert_eq!(created["username"], "grace_h");
    assert_eq!(created["external_id"], "ext-42");
    assert_eq!(created["image_url"], "https://img.example.com/g.png");
    assert_eq!(created["has_image"], true);
    assert_eq!(created["email_addresses"].as_array().unwrap().len(), 2);
    assert_eq!(
        created["primary_email_address_id"],
        created["email_addresses"][0]["id"]
    );
    assert_eq!(
        created["email_addresses"][0]["email_address"],
        "grace@example.com"
    );
    assert_eq!(
        created["primary_phone_number_id"],
        created["phone_numbers"][0]["id"]
    );
    assert_eq!(created["phone_numbers"][0]["phone_number"], "+15555550123");
    assert_eq!(created["public_metadata"], json!({"role": "admiral"}));
    assert_eq!(created["private_metadata"], json!({"ssn": "nope"}));
    assert_eq!(created["unsafe_metadata"], json!({"theme": "dark"}));
    assert_eq!(created["created_at"], START_MS);
    assert_eq!(created["last_sign_in_at"], Value::Null);

    let read = app.send(Req::get(format!("/v1/users/{id}")).secret()).await;
    assert_eq!(read.ok(), &created);

    for unknown in ["user_doesnotexist", "x"] {
        let resp = app
            .send(Req::get(format!("/v1/users/{unknown}")).secret())
            .await;
        resp.assert_error(404, "resource_not_found");
    }

    // The Frontend API never shows private metadata.
    let ticket = app.ticket(id).await;
    let resp = app
        .send(Req::post("/v1/client/sign_ins?_is_native=1").form(&sign_in_form(&ticket)))
        .await;
    let token = resp.header("authorization").unwrap().to_string();
    let sid = resp.ok()["response"]["created_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let fapi = app
        .send(Req::get(session_path(&sid, "")).native(&token))
        .await;
    let fapi_user = &fapi.ok()["response"]["user"];
    assert_eq!(fapi_user["id"], id);
    assert!(fapi_user.get("private_metadata").is_none());
    assert_eq!(fapi_user["public_metadata"], json!({"role": "admiral"}));
    // The private metadata's key and value, quoted (random ids may hold the letters).
    let text = fapi.body.to_string();
    assert!(!text.contains("\"ssn\"") && !text.contains("\"nope\""));
}

#[tokio::test]
async fn user_validation_errors_name_the_parameter() {
    let app = TestApp::new().await;
    let cases = [
        (json!({"email_address": ["not-an-email"]}), "email_address"),
        (json!({"email_address": ["a@b"]}), "email_address"),
        (json!({"email_address": ["@example.com"]}), "email_address"),
        (
            json!({"email_address": ["a b@example.com"]}),
            "email_address",
        ),
        (json!({"email_address": "ada@example.com"}), "email_address"),
        (json!({"phone_number": ["5555550100"]}), "phone_number"),
        (json!({"phone_number": ["+12"]}), "phone_number"),
        (json!({"phone_number": ["+1555abc0100"]}), "phone_number"),
        (json!({"public_metadata": [1, 2]}), "public_metadata"),
        (json!({"public_metadata": "x"}), "public_metadata"),
        (json!({"private_metadata": 5}), "private_metadata"),
        (json!({"unsafe_metadata": true}), "unsafe_metadata"),
        (json!({"first_name": 5}), "first_name"),
        (json!({"last_name": {"a": 1}}), "last_name"),
        (json!({"username": ["ada"]}), "username"),
        (json!({"username": "ab"}), "username"),
        (json!({"username": "has space"}), "username"),
        (json!({"first_name": "x".repeat(257)}), "first_name"),
        (json!({"first_name": "tab\tname"}), "first_name"),
    ];
    for (body, param) in cases {
        let resp = app.send(Req::post("/v1/users").secret().json(&body)).await;
        assert_eq!(resp.status, 422, "{body}: {}", resp.body);
        assert_eq!(
            resp.body["errors"][0]["meta"]["param_name"], param,
            "{body}: {}",
            resp.body
        );
        let code = resp.error_code().to_string();
        assert!(
            code == "form_param_format_invalid" || code == "form_param_value_invalid",
            "{body}: {code}"
        );
        resp.assert_error(422, &code);
    }
    for body in [json!([]), json!("user"), json!(null), json!(3)] {
        let resp = app.send(Req::post("/v1/users").secret().json(&body)).await;
        resp.assert_error(422, "request_body_invalid");
    }
}

#[tokio::test]
async fn sign_in_tokens_check_their_input() {
    let app = TestApp::new().await;
    let user = app.create_user().await;
    let resp = app
        .send(
            Req::post("/v1/sign_in_tokens")
                .secret()
                .json(&json!({"user_id": user, "expires_in_seconds": 600})),
        )
        .await;
    let body = resp.ok();
    assert_eq!(body["object"], "sign_in_token");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["user_id"], user.as_str());
    assert!(body["id"].as_str().unwrap().starts_with("sit_"));
    assert!(body["token"].as_str().is_some_and(|t| t.len() >= 32));

    let resp = app
        .send(
            Req::post("/v1/sign_in_tokens")
                .secret()
                .json(&json!({"user_id": "user_doesnotexist"})),
        )
        .await;
    resp.assert_param_error(404, "resource_not_found", "user_id");

    for bad in [json!(0), json!(315_360_001u64)] {
        let resp = app
            .send(
                Req::post("/v1/sign_in_tokens")
                    .secret()
                    .json(&json!({"user_id": user, "expires_in_seconds": bad})),
            )
            .await;
        resp.assert_param_error(422, "form_param_value_invalid", "expires_in_seconds");
    }
    for bad in [json!(-1), json!("600"), json!(1.5), json!(1e30)] {
        let resp = app
            .send(
                Req::post("/v1/sign_in_tokens")
                    .secret()
                    .json(&json!({"user_id": user, "expires_in_seconds": bad})),
            )
            .await;
        resp.assert_param_error(422, "form_param_format_invalid", "expires_in_seconds");
    }
    let resp = app
        .send(Req::post("/v1/sign_in_tokens").secret().json(&json!({})))
        .await;
    resp.assert_param_error(422, "form_param_missing", "user_id");
    let resp = app.send(Req::post("/v1/sign_in_tokens").secret()).await;
    resp.assert_param_error(422, "form_param_missing", "user_id");
    let resp = app
        .send(
            Req::post("/v1/sign_in_tokens")
                .secret()
                .json(&json!({"user_id": 7})),
        )
        .await;
    resp.assert_param_error(422, "form_param_format_invalid", "user_id");
}

/// Two users on two clients with sessions in several statuses (s1 ended, s2 and s3 active,
/// s4 revoked), one clock second apart so the newest-first order is fixed. Answers (user1, user2, client1, [s1..s4] oldest first).
async fn session_fixture(app: &TestApp) -> (String, String, String, Vec<String>) {
    // u1 signs in on client 1, out, and in again (a user is signed in once per client).
    let (t1, s1, u1) = app.native_session().await;
    app.send(Req::post(session_path(&s1, "end")).native(&t1))
        .await
        .ok();
    app.clock.advance_secs(1);
    let (_, s2) = app.native_sign_in(&t1, &u1).await;
    app.clock.advance_secs(1);
    let (_, s3, u2) = app.native_session().await;
    app.clock.advance_secs(1);
    let fresh = app.send(Req::post("/v1/client?_is_native=1")).await;
    let t0 = fresh.header("authorization").unwrap().to_string();
    let (_, s4) = app.native_sign_in(&t0, &u2).await;
    app.revoke(&s4).await.ok();
    let c1 = app.bapi_session(&s1).await["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    (u1, u2, c1, vec![s1, s2, s3, s4])
}

#[tokio::test]
async fn listing_sessions_filters_and_pages() {
    let app = TestApp::new().await;
    let (u1, u2, c1, s) = session_fixture(&app).await;
    let list = |query: String| {
        let app = &app;
        async move {
            let resp = app
                .send(Req::get(format!("/v1/sessions{query}")).secret())
                .await;
            resp.ok().clone()
        }
    };
    let all = list(String::new()).await;
    let all_ids = ids(&all);
    assert_eq!(all_ids, [&s[3], &s[2], &s[1], &s[0]], "newest first");
    assert_eq!(ids(&list(format!("?user_id={u1}")).await), [&s[1], &s[0]]);
    assert_eq!(ids(&list(format!("?client_id={c1}")).await), [&s[1], &s[0]]);
    assert_eq!(
        ids(&list(format!("?client_id={c1}&status=ended")).await),
        [&s[0]]
    );
    assert_eq!(
        ids(&list(format!("?user_id={u2}&status=revoked")).await),
        [&s[3]]
    );
    assert_eq!(
        ids(&list(format!("?user_id={u2}&status=active")).await),
        [&s[2]]
    );
    assert!(ids(&list(format!("?client_id={c1}&user_id={u2}")).await).is_empty());
    assert!(ids(&list("?user_id=user_nobody".into()).await).is_empty());
    assert_eq!(ids(&list("?status=".into()).await).len(), 4);
    assert_eq!(
        ids(&list("?status=active&limit=500".into()).await),
        [&s[2], &s[1]]
    );

    let page = list(format!("?user_id={u1}&paginated=true&limit=1")).await;
    assert_eq!(page["total_count"], 2);
    assert_eq!(ids(&page["data"]), [&s[1]]);
    let page = list(format!("?user_id={u1}&paginated=true&limit=1&offset=1")).await;
    assert_eq!(page["total_count"], 2);
    assert_eq!(ids(&page["data"]), [&s[0]]);
    let page = list(format!("?user_id={u1}&paginated=true&offset=5")).await;
    assert_eq!(page, json!({"data": [], "total_count": 2}));
    let bare = list("?limit=2&offset=1".into()).await;
    assert_eq!(ids(&bare), &all_ids[1..3]);
    assert!(list("?paginated=false".into()).await.is_array());

    let one = &all[0];
    for key in [
        "object",
        "id",
        "user_id",
        "client_id",
        "status",
        "last_active_at",
        "expire_at",
        "abandon_at",
        "created_at",
        "updated_at",
        "actor",
        "last_active_organization_id",
    ] {
        assert!(one.get(key).is_some(), "session lacks {key}: {one}");
    }
    assert_eq!(one["object"], "session");
}

#[tokio::test]
async fn listing_sessions_refuses_bad_parameters() {
    let app = TestApp::new().await;
    for (query, param) in [
        ("status=bogus", "status"),
        ("status=Active", "status"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=abc", "limit"),
        ("limit=-1", "limit"),
        ("limit=1.5", "limit"),
        ("offset=-1", "offset"),
        ("offset=x", "offset"),
        ("offset=99999999999999999999999", "offset"),
    ] {
        let resp = app
            .send(Req::get(format!("/v1/sessions?{query}")).secret())
            .await;
        resp.assert_param_error(422, "form_param_value_invalid", param);
    }
}

#[tokio::test]
async fn backend_session_get_revoke_and_tokens() {
    let app = TestApp::new().await;
    let (token, sid, user) = app.native_session().await;
    let resp = app
        .send(Req::get(format!("/v1/sessions/{sid}")).secret())
        .await;
    let body = resp.ok();
    assert_eq!(body["id"], sid.as_str());
    assert_eq!(body["user_id"], user.as_str());
    assert_eq!(body["status"], "active");
    assert_eq!(body["expire_at"], START_MS + 7 * 24 * 3600 * 1000);
    let resp = app
        .send(Req::get("/v1/sessions/sess_doesnotexist").secret())
        .await;
    resp.assert_error(404, "resource_not_found");

    // The Backend API mints for the session too (no write, like the Frontend API).
    let resp = app
        .send(Req::post(format!("/v1/sessions/{sid}/tokens")).secret())
        .await;
    assert!(resp.ok()["jwt"].as_str().is_some());

    app.clock.advance_secs(2);
    let resp = app.revoke(&sid).await;
    let body = resp.ok();
    assert_eq!(body["status"], "revoked");
    assert_eq!(body["updated_at"], START_MS + 2000);
    // The client no longer points at it, but still lists it.
    let me = app.send(Req::get("/v1/client").native(&token)).await;
    let me = me.ok();
    assert_eq!(me["response"]["last_active_session_id"], Value::Null);
    assert_eq!(me["response"]["sessions"][0]["status"], "revoked");

    let resp = app
        .send(Req::post(session_path(&sid, "tokens")).native(&token))
        .await;
    resp.assert_error(401, "signed_out");
    let resp = app
        .send(Req::post(format!("/v1/sessions/{sid}/tokens")).secret())
        .await;
    resp.assert_error(401, "signed_out");
    let resp = app.revoke(&sid).await;
    resp.assert_error(400, "invalid_action_for_session");
    let resp = app.revoke("sess_doesnotexist").await;
    resp.assert_error(404, "resource_not_found");
    let resp = app
        .send(Req::post("/v1/sessions/sess_doesnotexist/tokens").secret())
        .await;
    resp.assert_error(404, "resource_not_found");

    // Ended and expired sessions cannot be revoked either.
    let (token, ended, _) = app.native_session().await;
    app.send(Req::post(session_path(&ended, "end")).native(&token))
        .await
        .ok();
    app.revoke(&ended)
        .await
        .assert_error(400, "invalid_action_for_session");
    let (_, expiring, _) = app.native_session().await;
    app.clock.advance_secs(7 * 24 * 3600);
    app.revoke(&expiring)
        .await
        .assert_error(400, "invalid_action_for_session");
    assert_eq!(app.bapi_session(&expiring).await["status"], "expired");
}

// ----- errors every route shares -----

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_with_allow() {
    let app = TestApp::new().await;
    for path in [
        "/",
        "/v1",
        "/v1/nope",
        "/v1/client/",
        "//v1/client",
        "/v1/client/sessions/sess_x/tokens/",
        "/v1/client/sessions/sess_x/unknown",
        "/.well-known/jwks.json/",
        "/v2/client",
    ] {
        let resp = app.send(Req::get(path).secret()).await;
        resp.assert_error(404, "resource_not_found");
    }
    for (method, path, allow) in [
        ("DELETE", "/v1/users", "POST"),
        ("PUT", "/v1/client", "POST, GET"),
        ("PATCH", "/v1/client", "POST, GET"),
        ("GET", "/v1/client/sessions", "DELETE"),
        ("GET", "/v1/client/sessions/sess_x/touch", "POST"),
        ("DELETE", "/v1/client/sessions/sess_x", "GET"),
        ("POST", "/.well-known/jwks.json", "GET"),
        ("POST", "/v1/jwks", "GET"),
        ("GET", "/v1/sign_in_tokens", "POST"),
    ] {
        let resp = app.send(Req::new(method, path).secret()).await;
        resp.assert_error(405, "method_not_allowed");
        assert_eq!(resp.header("allow"), Some(allow), "{method} {path}");
    }
    // A tunnelled PATCH is a PATCH.
    let resp = app.send(Req::post("/v1/client?_method=PATCH")).await;
    resp.assert_error(405, "method_not_allowed");
}

#[tokio::test]
async fn malformed_and_mistyped_bodies_are_4xx() {
    let app = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    for body in [
        &b"{\"first_name\":"[..],
        b"{,}",
        b"\xff\xfe{}",
        b"{\"a\":1}}",
    ] {
        let resp = app
            .send(
                Req::post("/v1/users")
                    .secret()
                    .raw_body("application/json", body),
            )
            .await;
        resp.assert_error(400, "request_body_invalid");
    }
    // Deep nesting is refused, not a stack overflow.
    let deep = format!(
        "{{\"public_metadata\":{}{}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let resp = app
        .send(
            Req::post("/v1/users")
                .secret()
                .raw_body("application/json", deep.as_bytes()),
        )
        .await;
    resp.assert_error(400, "request_body_invalid");

    // JSON under another content type.
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonx",
        "",
    ] {
        let resp = app
            .send(
                Req::post("/v1/users")
                    .secret()
                    .raw_body(ct, br#"{"first_name":"Ada"}"#),
            )
            .await;
        resp.assert_error(415, "unsupported_content_type");
    }
    let resp = app
        .send(Req::post("/v1/users").secret().raw_body(
            "Application/JSON; charset=utf-8",
            br#"{"first_name":"Ada"}"#,
        ))
        .await;
    assert_eq!(resp.ok()["first_name"], "Ada");

    // A form under text/plain.
    for path in [
        session_path(&sid, "touch"),
        "/v1/client/sign_ins".to_string(),
    ] {
        let resp = app
            .send(
                Req::post(path)
                    .native(&token)
                    .raw_body("text/plain", b"strategy=ticket&ticket=x"),
            )
            .await;
        resp.assert_error(415, "unsupported_content_type");
    }
}

#[tokio::test]
async fn bodies_over_64_kib_are_413_and_change_nothing() {
    let app = TestApp::new().await;
    let (token, sid, user) = app.native_session().await;
    let before = app.stored_session(&sid).await;

    // Exactly 64 KiB is accepted (in a field the service ignores: metadata has its own
    // 8 KB limit, tests/limits.rs).
    let wrapper = r#"{"padding":""}"#;
    let exact = format!(
        r#"{{"padding":"{}"}}"#,
        "a".repeat(64 * 1024 - wrapper.len())
    );
    assert_eq!(exact.len(), 64 * 1024);
    let resp = app
        .send(
            Req::post("/v1/users")
                .secret()
                .raw_body("application/json", exact.as_bytes()),
        )
        .await;
    resp.ok();
    let over = format!("{exact} ");
    let resp = app
        .send(
            Req::post("/v1/users")
                .secret()
                .raw_body("application/json", over.as_bytes()),
        )
        .await;
    resp.assert_error(413, "request_body_too_large");

    let big_form = format!("intent=focus&pad={}", "a".repeat(64 * 1024));
    for path in [
        session_path(&sid, "touch"),
        session_path(&sid, "end"),
        session_path(&sid, "tokens"),
        "/v1/client/sign_ins".to_string(),
    ] {
        let resp = app
            .send(Req::post(path).native(&token).form(&big_form))
            .await;
        resp.assert_error(413, "request_body_too_large");
    }
    let resp = app
        .send(
            Req::post("/v1/sign_in_tokens").secret().raw_body(
                "application/json",
                format!(
                    "{{\"user_id\":\"{user}\",\"p\":\"{}\"}}",
                    "a".repeat(70_000)
                )
                .as_bytes(),
            ),
        )
        .await;
    resp.assert_error(413, "request_body_too_large");
    // Oversized and unauthenticated: still refused, and never a 500.
    let resp = app
        .send(Req::post("/v1/users").raw_body("application/json", over.as_bytes()))
        .await;
    resp.assert_error(413, "request_body_too_large");
    assert_eq!(app.stored_session(&sid).await, before);
}

/// A fixed pseudo-random byte stream (xorshift), so the garbage is the same every run.
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn garbage_bodies_and_weird_paths_never_cause_a_500() {
    let app = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    let cookie = app.browser_client().await;
    let bodies: Vec<Vec<u8>> = vec![
        garbage(1, 1),
        garbage(100, 2),
        garbage(4096, 3),
        b"%".to_vec(),
        b"%zz=%%&&==&".to_vec(),
        b"a=1&a=2&a=%FF%FE".to_vec(),
        b"\x00\x00\x00".to_vec(),
        "ticket=\u{1F4A9}&strategy=ticket".as_bytes().to_vec(),
        b"intent=focus&intent=blur".to_vec(),
    ];
    for (i, body) in bodies.iter().enumerate() {
        for ct in ["application/x-www-form-urlencoded", "application/json"] {
            let requests = [
                Req::post(session_path(&sid, "touch")).native(&token),
                Req::post(session_path(&sid, "tokens")).native(&token),
                Req::post("/v1/client/sign_ins").cookie(&cookie),
                Req::post("/v1/users").secret(),
                Req::post("/v1/sign_in_tokens").secret(),
                Req::post(format!("/v1/sessions/{sid}/tokens")).secret(),
            ];
            for req in requests {
                let resp = app.send(req.raw_body(ct, body)).await;
                assert!(resp.status < 500, "body #{i} ({ct}): {}", resp.body);
                resp.assert_no_server_error();
            }
        }
    }

    let long = "a".repeat(129);
    let very_long = "b".repeat(10_000);
    let paths = [
        "/v1/client/sessions/%00".to_string(),
        "/v1/client/sessions/%00/touch".to_string(),
        format!("/v1/client/sessions/{long}"),
        format!("/v1/client/sessions/{very_long}/tokens"),
        "/v1/client/sessions/a%2Fb/end".to_string(),
        "/v1/client/sessions/..%2F..%2Fetc%2Fpasswd".to_string(),
        "/v1/client/sessions/%E2%82%AC".to_string(),
        "/v1/client/sessions/sess%20x".to_string(),
        "/v1/users/%00".to_string(),
        format!("/v1/users/{very_long}"),
        format!("/v1/sessions/{long}/revoke"),
        "/v1/client/sessions/./touch".to_string(),
        "/v1/client/sessions/../touch".to_string(),
        format!("/{very_long}"),
    ];
    for path in &paths {
        for method in ["GET", "POST", "DELETE", "OPTIONS"] {
            for req in [
                Req::new(method, path.as_str()).native(&token),
                Req::new(method, path.as_str())
                    .cookie(&cookie)
                    .origin(APP_ORIGIN),
                Req::new(method, path.as_str()).secret(),
            ] {
                let resp = app.send(req).await;
                assert!(resp.status < 500, "{method} {path}: {}", resp.body);
                if resp.status >= 400 {
                    resp.assert_no_server_error();
                }
            }
        }
    }
    // Odd query strings are ignored or refused, never fatal.
    for query in [
        "?%",
        "?_is_native=%FF",
        "?__clerk_db_jwt=%00",
        "?&&&=&=",
        "?_method=%00",
    ] {
        let resp = app
            .send(Req::get(format!("{}{query}", session_path(&sid, ""))).native(&token))
            .await;
        resp.assert_no_server_error();
    }
    // The session came through all of it.
    assert_eq!(app.bapi_session(&sid).await["status"], "active");
}
