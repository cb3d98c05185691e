//! The six Frontend API session endpoints and `DELETE /v1/client/sessions`, through the
//! real route table: the whole transition table cell by cell, and what each endpoint
//! does to the session and its client.

use std::sync::Arc;

use serde_json::{json, Value};
use shared::store::Store;
use testkit::app::*;

testkit::each_store!(a_client_with_more_sessions_than_one_transaction_holds_signs_out);

const WEEK_SECS: i64 = 7 * 24 * 3600;
const THIRTY_DAYS_MS: i64 = 30 * 24 * 3600 * 1000;
/// The short inactivity timeout the `abandoned` tests configure.
const INACTIVITY_SECS: i64 = 600;

fn abandon_env() -> [(&'static str, &'static str); 1] {
    [("SESSION_INACTIVITY_TIMEOUT_SECONDS", "600")]
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Status {
    Active,
    Ended,
    Removed,
    Revoked,
    Expired,
    Abandoned,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Ended => "ended",
            Status::Removed => "removed",
            Status::Revoked => "revoked",
            Status::Expired => "expired",
            Status::Abandoned => "abandoned",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Action {
    Touch,
    End,
    Remove,
    Mint,
}

const ACTIONS: [Action; 4] = [Action::Touch, Action::End, Action::Remove, Action::Mint];

impl Action {
    fn suffix(self) -> &'static str {
        match self {
            Action::Touch => "touch",
            Action::End => "end",
            Action::Remove => "remove",
            Action::Mint => "tokens",
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Outcome {
    /// 200, and the session's status afterwards.
    Ok(&'static str),
    /// 400 `invalid_action_for_session`.
    Invalid,
    /// 401 `signed_out`.
    SignedOut,
}

/// The documented transition table: the expected outcome of each action from `status`,
/// in the order of [`ACTIONS`] (touch, end, remove, mint).
fn expected_row(status: Status) -> [Outcome; 4] {
    use Outcome::*;
    match status {
        Status::Active => [Ok("active"), Ok("ended"), Ok("removed"), Ok("active")],
        Status::Removed => [Invalid, Invalid, Invalid, SignedOut],
        Status::Ended | Status::Revoked | Status::Expired | Status::Abandoned => {
            [Invalid, Invalid, Ok("removed"), SignedOut]
        }
    }
}

async fn app_for(status: Status) -> TestApp {
    match status {
        Status::Abandoned => TestApp::with_env(&abandon_env()).await,
        _ => TestApp::new().await,
    }
}

/// Puts a fresh active session into `status` through the public APIs.
async fn bring_into(app: &TestApp, token: &str, sid: &str, status: Status) {
    match status {
        Status::Ended => {
            app.send(Req::post(session_path(sid, "end")).native(token))
                .await
                .ok();
        }
        Status::Removed => {
            app.send(Req::post(session_path(sid, "remove")).native(token))
                .await
                .ok();
        }
        Status::Revoked => {
            app.revoke(sid).await.ok();
        }
        Status::Active | Status::Expired | Status::Abandoned => {}
    }
}

/// Drives one row of the transition table through HTTP: one session per action, each put
/// into `status`, then the action applied, with the exact answer and aftermath checked.
async fn run_row(status: Status) {
    let app = app_for(status).await;
    let mut cells = Vec::new();
    for action in ACTIONS {
        let (token, sid, _) = app.native_session().await;
        bring_into(&app, &token, &sid, status).await;
        cells.push((action, token, sid));
    }
    match status {
        Status::Expired => app.clock.advance_secs(WEEK_SECS + 1),
        Status::Abandoned => app.clock.advance_secs(INACTIVITY_SECS + 1),
        _ => {}
    }

    for ((action, token, sid), expected) in cells.iter().zip(expected_row(status)) {
        let cell = format!("{} --{action:?}-->", status.name());
        // Every read reports the status, Frontend and Backend API alike.
        let read = app
            .send(Req::get(session_path(sid, "")).native(token))
            .await;
        assert_eq!(read.ok()["response"]["status"], status.name(), "{cell}");
        assert_eq!(
            app.bapi_session(sid).await["status"],
            status.name(),
            "{cell}"
        );

        let stored_before = app.stored_session(sid).await;
        let client_id = stored_before.client_id.clone();
        let client_before = app.stored_client(&client_id).await.client;

        let resp = app
            .send(Req::post(session_path(sid, action.suffix())).native(token))
            .await;
        match expected {
            Outcome::Ok(after) => {
                let body = resp.ok();
                if *action == Action::Mint {
                    assert_eq!(body["object"], "token", "{cell}");
                    assert!(body["jwt"]
                        .as_str()
                        .is_some_and(|j| j.split('.').count() == 3));
                } else {
                    assert_eq!(body["response"]["id"], sid.as_str(), "{cell}");
                    assert_eq!(body["response"]["status"], after, "{cell}");
                }
                assert_eq!(app.bapi_session(sid).await["status"], after, "{cell}");
            }
            Outcome::Invalid => {
                resp.assert_error(400, "invalid_action_for_session");
                assert_eq!(resp.body["errors"][0]["meta"]["session_id"], sid.as_str());
            }
            Outcome::SignedOut => resp.assert_error(401, "signed_out"),
        }
        if !matches!(expected, Outcome::Ok(_)) {
            // A refused action changes nothing, neither the session nor its client.
            assert_eq!(app.stored_session(sid).await, stored_before, "{cell}");
            assert_eq!(
                app.stored_client(&client_id).await.client,
                client_before,
                "{cell}"
            );
            assert_eq!(
                app.bapi_session(sid).await["status"],
                status.name(),
                "{cell}"
            );
        }
    }
}

#[tokio::test]
async fn transition_table_active() {
    run_row(Status::Active).await;
}

#[tokio::test]
async fn transition_table_ended() {
    run_row(Status::Ended).await;
}

#[tokio::test]
async fn transition_table_removed() {
    run_row(Status::Removed).await;
}

#[tokio::test]
async fn transition_table_revoked() {
    run_row(Status::Revoked).await;
}

#[tokio::test]
async fn transition_table_expired() {
    run_row(Status::Expired).await;
}

#[tokio::test]
async fn transition_table_abandoned() {
    run_row(Status::Abandoned).await;
}

#[tokio::test]
async fn get_session_answers_the_full_session_and_client() {
    let app = TestApp::new().await;
    let (token, sid, user) = app.native_session().await;
    let resp = app
        .send(Req::get(session_path(&sid, "")).native(&token))
        .await;
    let body = resp.ok();
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["client", "response"]
    );
    let s = &body["response"];
    assert_eq!(s["object"], "session");
    assert_eq!(s["id"], sid.as_str());
    assert_eq!(s["status"], "active");
    assert_eq!(s["created_at"], START_MS);
    assert_eq!(s["updated_at"], START_MS);
    assert_eq!(s["last_active_at"], START_MS);
    assert_eq!(s["expire_at"], START_MS + WEEK_SECS * 1000);
    assert_eq!(s["abandon_at"], START_MS + THIRTY_DAYS_MS);
    // A fresh token for the signed-in session, the same in the client's copy.
    let jwt = s["last_active_token"]["jwt"]
        .as_str()
        .expect("last_active_token");
    assert_eq!(s["last_active_token"]["object"], "token");
    assert_eq!(
        body["client"]["sessions"][0]["last_active_token"]["jwt"],
        jwt
    );
    assert_eq!(s["last_active_organization_id"], Value::Null);
    assert_eq!(s["actor"], Value::Null);
    assert!(s.as_object().unwrap().contains_key("tasks"));
    assert_eq!(s["factor_verification_age"], serde_json::json!([0, -1]));
    assert_eq!(s["user"]["id"], user.as_str());
    assert_eq!(s["user"]["object"], "user");
    assert_eq!(s["user"]["public_metadata"]["plan"], "pro");
    assert!(
        s["user"].get("private_metadata").is_none(),
        "private metadata leaked to the Frontend API: {}",
        s["user"]
    );
    assert_eq!(s["public_user_data"]["user_id"], user.as_str());
    assert_eq!(s["public_user_data"]["identifier"], "ada@example.com");
    assert_eq!(s["public_user_data"]["first_name"], "Ada");

    let c = &body["client"];
    assert_eq!(c["object"], "client");
    assert!(c["id"].as_str().unwrap().starts_with("client_"));
    assert_eq!(c["last_active_session_id"], sid.as_str());
    assert_eq!(c["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(c["sessions"][0]["id"], sid.as_str());
    for key in [
        "sign_in",
        "sign_up",
        "last_authentication_strategy",
        "cookie_expires_at",
        "captcha_bypass",
        "created_at",
        "updated_at",
    ] {
        assert!(c.get(key).is_some(), "client lacks {key}: {c}");
    }
}

#[tokio::test]
async fn unknown_query_parameters_are_ignored() {
    let app = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    let uri = format!(
        "{}?__clerk_api_version=2026-05-12&_clerk_js_version=5.99.0&debug=skip_cache&_clerk_session_id={sid}",
        session_path(&sid, "")
    );
    let resp = app.send(Req::get(uri).native(&token)).await;
    assert_eq!(resp.ok()["response"]["id"], sid.as_str());
    let uri = format!(
        "{}?__clerk_api_version=2026-05-12&_clerk_js_version=5.99.0",
        session_path(&sid, "tokens")
    );
    app.send(Req::post(uri).native(&token)).await.ok();
}

#[tokio::test]
async fn touch_makes_the_session_last_active_and_slides_abandon_at() {
    let app = TestApp::new().await;
    let (token, s1, _) = app.native_session().await;
    app.clock.advance_secs(10);
    let (token, s2) = app.native_sign_in(&token, &app.create_user().await).await;
    let client = app
        .send(Req::get("/v1/client").native(&token))
        .await
        .ok()
        .clone();
    assert_eq!(client["response"]["last_active_session_id"], s2.as_str());

    // Past the activity interval (an hour by default), so the touch records activity.
    app.clock.advance_secs(3600);
    let now = app.now_ms();
    let resp = app
        .send(
            Req::post(session_path(&s1, "touch"))
                .native(&token)
                .form("active_organization_id=&intent=select_session"),
        )
        .await;
    let body = resp.ok();
    assert_eq!(body["response"]["id"], s1.as_str());
    assert_eq!(body["response"]["status"], "active");
    assert_eq!(body["response"]["last_active_at"], now);
    assert_eq!(body["response"]["abandon_at"], now + THIRTY_DAYS_MS);
    assert_eq!(body["response"]["updated_at"], now);
    // The maximum lifetime does not slide.
    assert_eq!(body["response"]["expire_at"], START_MS + WEEK_SECS * 1000);
    assert_eq!(body["client"]["last_active_session_id"], s1.as_str());
    assert_eq!(body["client"]["updated_at"], now);
    assert_eq!(body["client"]["sessions"].as_array().unwrap().len(), 2);

    // The other session is untouched.
    let other = app.bapi_session(&s2).await;
    assert_eq!(other["last_active_at"], START_MS + 10_000);
}

#[tokio::test]
async fn touch_keeps_a_session_from_being_abandoned() {
    let app = TestApp::with_env(&abandon_env()).await;
    let (token, sid, _) = app.native_session().await;
    app.clock.advance_secs(INACTIVITY_SECS - 100);
    app.send(Req::post(session_path(&sid, "touch")).native(&token))
        .await
        .ok();
    // Past the first abandon_at, but within the slid one.
    app.clock.advance_secs(INACTIVITY_SECS - 100);
    let resp = app
        .send(Req::get(session_path(&sid, "")).native(&token))
        .await;
    assert_eq!(resp.ok()["response"]["status"], "active");
    // Minting is activity too (recorded once per interval: 60 s here, a tenth of the
    // inactivity timeout), so a tab that only refreshes tokens keeps its session.
    app.send(Req::post(session_path(&sid, "tokens")).native(&token))
        .await
        .ok();
    app.clock.advance_secs(INACTIVITY_SECS - 100);
    let resp = app
        .send(Req::get(session_path(&sid, "")).native(&token))
        .await;
    assert_eq!(resp.ok()["response"]["status"], "active");
    // Reads are not activity: with nothing else, the session is abandoned.
    app.clock.advance_secs(101);
    let resp = app
        .send(Req::get(session_path(&sid, "")).native(&token))
        .await;
    assert_eq!(resp.ok()["response"]["status"], "abandoned");
}

#[tokio::test]
async fn touch_with_focus_intent_answers_no_client_but_still_touches() {
    let app = TestApp::new().await;
    let (token, s1, _) = app.native_session().await;
    let (token, s2) = app.native_sign_in(&token, &app.create_user().await).await;
    app.clock.advance_secs(3600);
    let resp = app
        .send(
            Req::post(session_path(&s1, "touch"))
                .native(&token)
                .form("intent=focus"),
        )
        .await;
    let body = resp.ok();
    assert_eq!(body["client"], Value::Null);
    assert_eq!(body["response"]["id"], s1.as_str());
    assert_eq!(body["response"]["last_active_at"], START_MS + 3_600_000);
    let client = app.send(Req::get("/v1/client").native(&token)).await;
    assert_eq!(
        client.ok()["response"]["last_active_session_id"],
        s1.as_str()
    );

    for intent in ["select_session", "select_org", ""] {
        let resp = app
            .send(
                Req::post(session_path(&s2, "touch"))
                    .native(&token)
                    .form(&format!("intent={intent}")),
            )
            .await;
        assert_eq!(resp.ok()["client"]["last_active_session_id"], s2.as_str());
    }
}

#[tokio::test]
async fn touch_with_an_invalid_intent_is_422_and_changes_nothing() {
    let app = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    let before = app.stored_session(&sid).await;
    app.clock.advance_secs(5);
    for intent in ["blur", "FOCUS", "focus%00", "x%20y"] {
        let resp = app
            .send(
                Req::post(session_path(&sid, "touch"))
                    .native(&token)
                    .form(&format!("intent={intent}")),
            )
            .await;
        resp.assert_param_error(422, "form_param_value_invalid", "intent");
    }
    assert_eq!(app.stored_session(&sid).await, before);
}

#[tokio::test]
async fn organizations_are_refused_until_they_exist() {
    let app = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    let before = app.stored_session(&sid).await;
    let resp = app
        .send(
            Req::post(session_path(&sid, "touch"))
                .native(&token)
                .form("active_organization_id=org_123&intent=select_org"),
        )
        .await;
    resp.assert_error(404, "organization_not_found_or_unauthorized");
    let resp = app
        .send(
            Req::post(session_path(&sid, "tokens"))
                .native(&token)
                .form("organization_id=org_123"),
        )
        .await;
    resp.assert_error(404, "organization_not_found_or_unauthorized");
    assert_eq!(app.stored_session(&sid).await, before);

    // Empty means the personal account (clerk-js sends null as "").
    app.send(
        Req::post(session_path(&sid, "touch"))
            .native(&token)
            .form("active_organization_id="),
    )
    .await
    .ok();
    app.send(
        Req::post(session_path(&sid, "tokens"))
            .native(&token)
            .form("organization_id="),
    )
    .await
    .ok();
}

#[tokio::test]
async fn end_keeps_the_session_on_the_client_and_clears_last_active() {
    let app = TestApp::new().await;
    let (token, s1, _) = app.native_session().await;
    let (token, s2) = app.native_sign_in(&token, &app.create_user().await).await;

    // Ending a session that is not the last active one leaves last_active_session_id.
    let resp = app
        .send(Req::post(session_path(&s1, "end")).native(&token))
        .await;
    let body = resp.ok();
    assert_eq!(body["response"]["status"], "ended");
    assert_eq!(body["client"]["last_active_session_id"], s2.as_str());

    // Ending the last active one clears it.
    app.clock.advance_secs(3);
    let resp = app
        .send(Req::post(session_path(&s2, "end")).native(&token))
        .await;
    let body = resp.ok();
    assert_eq!(body["response"]["status"], "ended");
    assert_eq!(body["response"]["updated_at"], START_MS + 3000);
    assert_eq!(body["client"]["last_active_session_id"], Value::Null);
    let ids: Vec<&str> = body["client"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [s1.as_str(), s2.as_str()]);
    assert!(body["client"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "ended"));

    let client = app.send(Req::get("/v1/client").native(&token)).await;
    let client = client.ok();
    assert_eq!(client["response"]["last_active_session_id"], Value::Null);
    assert_eq!(client["response"]["sessions"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn remove_takes_the_session_off_the_client_and_clears_last_active() {
    let app = TestApp::new().await;
    let (token, s1, _) = app.native_session().await;
    let (token, s2) = app.native_sign_in(&token, &app.create_user().await).await;

    let resp = app
        .send(Req::post(session_path(&s1, "remove")).native(&token))
        .await;
    let body = resp.ok();
    assert_eq!(body["response"]["id"], s1.as_str());
    assert_eq!(body["response"]["status"], "removed");
    assert_eq!(body["client"]["last_active_session_id"], s2.as_str());
    let sessions = body["client"]["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"], s2.as_str());

    let resp = app
        .send(Req::post(session_path(&s2, "remove")).native(&token))
        .await;
    let body = resp.ok();
    assert_eq!(body["response"]["status"], "removed");
    assert_eq!(body["client"]["last_active_session_id"], Value::Null);
    assert_eq!(body["client"]["sessions"], serde_json::json!([]));

    // The Backend API still knows both, as removed.
    for sid in [&s1, &s2] {
        assert_eq!(app.bapi_session(sid).await["status"], "removed");
    }
}

/// Current behaviour: a removed session stays readable by id through its own client
/// (status `removed`), though it is no longer listed in `client.sessions`.
#[tokio::test]
async fn a_removed_session_is_still_readable_by_its_client() {
    let app = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    app.send(Req::post(session_path(&sid, "remove")).native(&token))
        .await
        .ok();
    let resp = app
        .send(Req::get(session_path(&sid, "")).native(&token))
        .await;
    let body = resp.ok();
    assert_eq!(body["response"]["status"], "removed");
    assert_eq!(body["client"]["sessions"], serde_json::json!([]));
}

/// A mint writes nothing but activity, and that at most once per activity interval
/// (an hour by default): the stored session stays as it was between intervals.
#[tokio::test]
async fn minting_writes_only_activity_once_per_interval() {
    let app = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    let mint = || Req::post(session_path(&sid, "tokens")).native(&token);
    let signed_in = app.stored_session(&sid).await;
    let first = app.send(mint()).await;
    assert_eq!(
        first.ok().as_object().unwrap().keys().collect::<Vec<_>>(),
        ["jwt", "object"]
    );
    app.clock.advance_secs(50);
    let second = app.send(mint().form("")).await;
    assert_ne!(first.body["jwt"], second.ok()["jwt"]);
    assert_eq!(app.stored_session(&sid).await, signed_in, "no write");
    // Tokens are not stored: a session read shows one minted for its own answer.
    let read = app
        .send(Req::get(session_path(&sid, "")).native(&token))
        .await;
    let shown = &read.ok()["response"]["last_active_token"]["jwt"];
    assert!(shown.is_string() && *shown != first.body["jwt"] && *shown != second.body["jwt"]);

    // Past the interval, the next mint records the activity, once.
    app.clock.advance_secs(3600);
    let at = app.now_ms();
    app.send(mint()).await.ok();
    let recorded = app.stored_session(&sid).await;
    assert_eq!(recorded.last_active_at, at);
    assert_eq!(recorded.abandon_at, at + THIRTY_DAYS_MS);
    app.clock.advance_secs(50);
    app.send(mint()).await.ok();
    assert_eq!(app.stored_session(&sid).await, recorded, "no write");
}

#[tokio::test]
async fn template_tokens_are_unknown_until_templates_exist() {
    let app = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    let before = app.stored_session(&sid).await;
    for template in ["supabase", "hasura", "a.b-c_d"] {
        let resp = app
            .send(Req::post(session_path(&sid, &format!("tokens/{template}"))).native(&token))
            .await;
        resp.assert_error(404, "resource_not_found");
    }
    // clerk-js sends an empty form.
    let resp = app
        .send(
            Req::post(session_path(&sid, "tokens/supabase"))
                .native(&token)
                .form(""),
        )
        .await;
    resp.assert_error(404, "resource_not_found");
    assert_eq!(app.stored_session(&sid).await, before);
    // The session is checked before the template: an unknown session is named as such.
    let resp = app
        .send(Req::post(session_path("sess_unknown", "tokens/supabase")).native(&token))
        .await;
    resp.assert_error(404, "resource_not_found");
    assert_eq!(resp.body["errors"][0]["meta"]["session_id"], "sess_unknown");
}

#[tokio::test]
async fn expired_and_abandoned_are_reported_on_read_without_any_write() {
    for (status, env, advance) in [
        ("expired", &[][..], WEEK_SECS),
        ("abandoned", &abandon_env()[..], INACTIVITY_SECS),
    ] {
        let app = TestApp::with_env(env).await;
        let (token, sid, user) = app.native_session().await;
        let stored = app.stored_session(&sid).await;
        let client_id = stored.client_id.clone();
        let client_before = app.stored_client(&client_id).await.client;

        // One millisecond short of the deadline it is still active.
        app.clock.advance_secs(advance - 1);
        let resp = app
            .send(Req::get(session_path(&sid, "")).native(&token))
            .await;
        assert_eq!(resp.ok()["response"]["status"], "active");
        app.clock.advance_secs(1);

        let resp = app
            .send(Req::get(session_path(&sid, "")).native(&token))
            .await;
        let body = resp.ok();
        assert_eq!(body["response"]["status"], status);
        assert_eq!(body["client"]["sessions"][0]["status"], status);
        let client = app.send(Req::get("/v1/client").native(&token)).await;
        assert_eq!(client.ok()["response"]["sessions"][0]["status"], status);
        assert_eq!(app.bapi_session(&sid).await["status"], status);
        let listed = app
            .send(Req::get(format!("/v1/sessions?user_id={user}&status={status}")).secret())
            .await;
        assert_eq!(listed.ok().as_array().unwrap().len(), 1);
        let listed = app
            .send(Req::get(format!("/v1/sessions?user_id={user}&status=active")).secret())
            .await;
        assert_eq!(listed.ok().as_array().unwrap().len(), 0);

        // Nothing was written: the store still holds the session as it was signed in.
        assert_eq!(app.stored_session(&sid).await, stored, "{status}");
        assert_eq!(
            app.stored_client(&client_id).await.client,
            client_before,
            "{status}"
        );
    }
}

#[tokio::test]
async fn an_ended_session_stays_ended_past_its_lifetime() {
    let app = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    app.send(Req::post(session_path(&sid, "end")).native(&token))
        .await
        .ok();
    app.clock.advance_secs(WEEK_SECS * 5);
    let resp = app
        .send(Req::get(session_path(&sid, "")).native(&token))
        .await;
    assert_eq!(resp.ok()["response"]["status"], "ended");
}

async fn remove_all_sessions(tunnel: bool) {
    let app = TestApp::new().await;
    let (token, s1, _) = app.native_session().await;
    let (token, s2) = app.native_sign_in(&token, &app.create_user().await).await;
    let (token, s3) = app.native_sign_in(&token, &app.create_user().await).await;
    app.send(Req::post(session_path(&s2, "end")).native(&token))
        .await
        .ok();
    app.revoke(&s3).await.ok();

    let req = if tunnel {
        Req::post("/v1/client/sessions?_method=DELETE")
    } else {
        Req::delete("/v1/client/sessions")
    };
    let resp = app.send(req.native(&token)).await;
    let body = resp.ok();
    assert_eq!(body["response"]["object"], "client");
    assert_eq!(body["response"]["sessions"], serde_json::json!([]));
    assert_eq!(body["response"]["last_active_session_id"], Value::Null);
    assert_eq!(body["client"], body["response"]);
    for sid in [&s1, &s2, &s3] {
        assert_eq!(app.bapi_session(sid).await["status"], "removed");
        let resp = app
            .send(Req::post(session_path(sid, "tokens")).native(&token))
            .await;
        resp.assert_error(401, "signed_out");
    }
    // The client itself lives on, with the same token.
    let client = app.send(Req::get("/v1/client").native(&token)).await;
    assert_eq!(client.ok()["response"]["sessions"], serde_json::json!([]));
    // Signing out again is harmless.
    app.send(Req::delete("/v1/client/sessions").native(&token))
        .await
        .ok();
}

#[tokio::test]
async fn delete_client_sessions_removes_every_session() {
    remove_all_sessions(false).await;
}

#[tokio::test]
async fn delete_client_sessions_through_the_post_tunnel() {
    remove_all_sessions(true).await;
}

#[tokio::test]
async fn delete_client_sessions_tunnel_is_case_insensitive_and_post_alone_is_405() {
    let app = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    let resp = app
        .send(Req::post("/v1/client/sessions").native(&token))
        .await;
    resp.assert_error(405, "method_not_allowed");
    assert_eq!(app.bapi_session(&sid).await["status"], "active");
    app.send(Req::post("/v1/client/sessions?_method=delete").native(&token))
        .await
        .ok();
    assert_eq!(app.bapi_session(&sid).await["status"], "removed");
}

#[tokio::test]
async fn without_a_client_every_session_endpoint_is_signed_out() {
    let app = TestApp::new().await;
    let (_, sid, _) = app.native_session().await;
    for (method, suffix) in [
        ("GET", ""),
        ("POST", "touch"),
        ("POST", "end"),
        ("POST", "remove"),
        ("POST", "tokens"),
        ("POST", "tokens/supabase"),
    ] {
        let resp = app.send(Req::new(method, session_path(&sid, suffix))).await;
        resp.assert_error(401, "signed_out");
        // Native callers with no token yet are signed out too.
        let resp = app
            .send(Req::new(method, session_path(&sid, suffix)).query("_is_native", "1"))
            .await;
        resp.assert_error(401, "signed_out");
    }
    let resp = app.send(Req::delete("/v1/client/sessions")).await;
    resp.assert_error(401, "signed_out");
    assert_eq!(app.bapi_session(&sid).await["status"], "active");
}

#[tokio::test]
async fn an_unknown_session_is_404_on_every_endpoint() {
    let app = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    let before = app.stored_session(&sid).await;
    for id in ["sess_doesnotexist", "x", "..", &"a".repeat(128)] {
        for (method, suffix) in [
            ("GET", ""),
            ("POST", "touch"),
            ("POST", "end"),
            ("POST", "remove"),
            ("POST", "tokens"),
            ("POST", "tokens/supabase"),
        ] {
            let resp = app
                .send(Req::new(method, session_path(id, suffix)).native(&token))
                .await;
            resp.assert_error(404, "resource_not_found");
        }
    }
    assert_eq!(app.stored_session(&sid).await, before);
}

#[tokio::test]
async fn session_endpoints_accept_an_empty_body_and_refuse_other_content_types() {
    let app = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    // No body, no content type.
    app.send(Req::post(session_path(&sid, "touch")).native(&token))
        .await
        .ok();
    // A form with a charset parameter.
    app.send(
        Req::post(session_path(&sid, "touch"))
            .native(&token)
            .raw_body(
                "application/x-www-form-urlencoded; charset=UTF-8",
                b"intent=focus",
            ),
    )
    .await
    .ok();
    let before = app.stored_session(&sid).await;
    for suffix in ["touch", "end", "remove", "tokens"] {
        let resp = app
            .send(
                Req::post(session_path(&sid, suffix))
                    .native(&token)
                    .raw_body("application/json", br#"{"intent":"focus"}"#),
            )
            .await;
        resp.assert_error(415, "unsupported_content_type");
    }
    assert_eq!(app.stored_session(&sid).await, before);
}

/// Sessions on one client are not bounded, while a DynamoDB transaction holds 100 items:
/// 60 sessions, each removed with its webhook event, are 120 writes. Sign-out commits them
/// in parts, and three sign-outs of the client race (clerk-js in three tabs): each answers
/// the signed-out client, every session is removed, each with exactly one event.
async fn a_client_with_more_sessions_than_one_transaction_holds_signs_out(store: Arc<dyn Store>) {
    const SESSIONS: usize = 60;
    let config = test_config(&[("WEBHOOKS", "on"), ("MAX_SESSIONS_PER_CLIENT", "60")]);
    let app = Arc::new(TestApp::with_store(config, Arc::clone(&store)).await);
    app.send(
        Req::post("/v1/webhooks/endpoints").secret().json(
            &json!({"url": "https://hooks.example.com/clerk", "events": ["session.removed"]}),
        ),
    )
    .await
    .ok();
    let user = app.create_user().await;
    let (mut token, first) = app.native_sign_in("", &user).await;
    let mut sids = vec![first];
    while sids.len() < SESSIONS {
        let (next, sid) = app.native_sign_in(&token, &app.create_user().await).await;
        token = next;
        sids.push(sid);
    }
    let mut sign_outs = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let (app, token) = (Arc::clone(&app), token.clone());
        sign_outs.spawn(async move {
            let resp = app
                .send(Req::delete("/v1/client/sessions").native(&token))
                .await;
            resp.ok()["response"]["sessions"].clone()
        });
    }
    while let Some(shown) = sign_outs.join_next().await {
        assert_eq!(shown.unwrap(), json!([]));
    }
    for sid in &sids {
        assert_eq!(app.bapi_session(sid).await["status"], "removed");
    }
    // On the embedded stores the outbox shows the events (on DynamoDB they are items the
    // stream hands on): one `session.removed` per session, and nothing else was wanted.
    if store.outbox().is_some() {
        let deliveries = testkit::stores::drain_outbox(store.as_ref(), app.now_ms()).await;
        assert!(deliveries
            .iter()
            .all(|d| d.event.kind.as_str() == "session.removed"));
        let mut removed: Vec<String> = deliveries.into_iter().map(|d| d.event.key).collect();
        removed.sort();
        sids.sort();
        assert_eq!(removed, sids);
    }
}
