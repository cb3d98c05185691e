//! Sessions per client (docs/sessions.md, "Sessions per client"): a user is signed in at
//! most once on a client, multi-session mode caps the signed-in sessions of one client,
//! single-session mode allows one. Every refusal writes nothing (the ticket stays unused),
//! and the rules hold with sign-ins racing from many connections, on every store.

use std::sync::Arc;

use serde_json::json;
use shared::store::Store;
use testkit::app::*;

testkit::each_store!(
    one_user_signs_in_once_per_client_however_often_it_tries,
    a_client_holds_no_more_accounts_than_the_cap,
);

/// moto serves one call at a time: the DynamoDB runs try fewer, so as not to starve the
/// tests that share it. (The DynamoDB store is the one without an outbox.)
fn scaled(store: &Arc<dyn Store>, embedded: usize, dynamodb: usize) -> usize {
    if store.outbox().is_some() {
        embedded
    } else {
        dynamodb
    }
}

/// Signs in with `ticket` on the client of `token`.
fn sign_in(token: &str, ticket: &str) -> Req {
    Req::post("/v1/client/sign_ins")
        .native(token)
        .form(&format!("strategy=ticket&ticket={ticket}"))
}

/// The cost an answer pays grows with the client's sessions (each shown, some signed): a
/// user signing in again and again on one client must not pile them up. The attempts race
/// 50 at once with the client's current token; a refusal spends nothing, so one ticket
/// serves them all.
async fn one_user_signs_in_once_per_client_however_often_it_tries(store: Arc<dyn Store>) {
    let attempts = scaled(&store, 1_000, 100);
    const AT_ONCE: usize = 50;
    let app = Arc::new(TestApp::on(store).await);
    let (token, sid, user) = app.native_session().await;
    let ticket = app.ticket(&user).await;
    let mut refused = 0;
    for wave in 0..attempts.div_ceil(AT_ONCE) {
        let mut racing = tokio::task::JoinSet::new();
        for _ in 0..AT_ONCE.min(attempts - wave * AT_ONCE) {
            let (app, req) = (Arc::clone(&app), sign_in(&token, &ticket));
            racing.spawn(async move { app.send(req).await });
        }
        while let Some(resp) = racing.join_next().await {
            let resp = resp.unwrap();
            resp.assert_error(400, "identifier_already_signed_in");
            // The refusal names the session the user has, for clerk-js to make active.
            assert_eq!(resp.body["errors"][0]["meta"]["session_id"], sid.as_str());
            refused += 1;
        }
    }
    assert_eq!(refused, attempts);
    // One session on the client, and for the user.
    let client_id = app.stored_session(&sid).await.client_id;
    assert_eq!(app.stored_client(&client_id).await.sessions.len(), 1);
    assert_eq!(app.user_sessions(&user).await.len(), 1);
    // Nothing was spent: the ticket still signs in on another client.
    let resp = app
        .send(Req::post("/v1/client/sign_ins").form(&format!("strategy=ticket&ticket={ticket}")))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(app.user_sessions(&user).await.len(), 2);
}

/// Users signing in on one client, each with the client's current token: exactly as many
/// as the cap sign in, the others are refused (`too_many_sessions`). Then, one below the
/// cap, 20 users race with the same token: one takes the last place; the others, whose
/// token that sign-in superseded, start over on new clients (as any caller with a
/// superseded token does), so the client never holds more than the cap.
async fn a_client_holds_no_more_accounts_than_the_cap(store: Arc<dyn Store>) {
    let users = scaled(&store, 200, 40);
    const CAP: usize = 10;
    const AT_ONCE: usize = 20;
    let app = Arc::new(TestApp::on(store).await);
    let (mut token, first, _) = app.native_session().await;
    let client_id = app.stored_session(&first).await.client_id;
    let mut signed_in = 1;
    for _ in 1..users {
        let ticket = app.ticket(&app.create_user().await).await;
        let resp = app.send(sign_in(&token, &ticket)).await;
        match resp.status {
            200 => {
                token = resp.signed_in().0;
                signed_in += 1;
            }
            _ => resp.assert_error(400, "too_many_sessions"),
        }
    }
    assert_eq!(signed_in, CAP, "the default cap of multi-session mode");
    assert_eq!(app.stored_client(&client_id).await.sessions.len(), CAP);

    // Sign one out, and race for its place.
    let resp = app.send(Req::get("/v1/client").native(&token)).await;
    let sid = resp.ok()["response"]["sessions"][0]["id"].as_str().unwrap();
    app.send(Req::post(session_path(sid, "end")).native(&token))
        .await
        .ok();
    let mut racing = tokio::task::JoinSet::new();
    for _ in 0..AT_ONCE {
        let ticket = app.ticket(&app.create_user().await).await;
        let (app, req) = (Arc::clone(&app), sign_in(&token, &ticket));
        racing.spawn(async move { app.send(req).await });
    }
    let mut landed_here = 0;
    while let Some(resp) = racing.join_next().await {
        let (_, sid) = resp.unwrap().signed_in();
        if app.stored_session(&sid).await.client_id == client_id {
            landed_here += 1;
        }
    }
    assert_eq!(landed_here, 1, "one of the racing sign-ins takes the place");
    let now_signed_in = app
        .stored_client(&client_id)
        .await
        .sessions
        .iter()
        .filter(|s| s.status == shared::domain::SessionStatus::Active)
        .count();
    assert_eq!(now_signed_in, CAP);
}

#[tokio::test]
async fn single_session_mode_refuses_a_second_account() {
    let app = TestApp::with_env(&[("SESSION_MODE", "single")]).await;
    let env = app.send(Req::get("/v1/environment")).await;
    assert_eq!(env.ok()["auth_config"]["single_session_mode"], true);
    let (token, sid, user) = app.native_session().await;
    let other = app.create_user().await;
    let ticket = app.ticket(&other).await;
    let sign_in = |ticket: &str| {
        Req::post("/v1/client/sign_ins")
            .native(&token)
            .form(&format!("strategy=ticket&ticket={ticket}"))
    };
    app.send(sign_in(&ticket))
        .await
        .assert_error(400, "session_exists");
    // The same user is told which session it has, as in multi-session mode.
    let again = app.ticket(&user).await;
    let resp = app.send(sign_in(&again)).await;
    resp.assert_error(400, "identifier_already_signed_in");
    assert_eq!(resp.body["errors"][0]["meta"]["session_id"], sid.as_str());
    // Signed out, the other account signs in with the ticket the refusal left unused.
    app.send(Req::delete("/v1/client/sessions").native(&token))
        .await
        .ok();
    let resp = app.send(sign_in(&ticket)).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
}

#[tokio::test]
async fn a_user_signed_out_on_a_client_signs_in_there_again() {
    let app = TestApp::new().await;
    let (token, sid, user) = app.native_session().await;
    app.send(Req::post(session_path(&sid, "end")).native(&token))
        .await
        .ok();
    let (token, again) = app.native_sign_in(&token, &user).await;
    assert_ne!(again, sid);
    let resp = app.send(Req::get("/v1/client").native(&token)).await;
    let statuses: Vec<_> = resp.ok()["response"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("ended"), json!("active")]);
}

#[tokio::test]
async fn the_cap_and_the_mode_are_settings() {
    for (name, value) in [
        ("SESSION_MODE", "several"),
        ("MAX_SESSIONS_PER_CLIENT", "0"),
        ("MAX_SESSIONS_PER_CLIENT", "101"),
        ("MAX_SESSIONS_PER_CLIENT", "ten"),
    ] {
        let err = shared::config::Config::from_lookup(|k| match k {
            "FRONTEND_API_URL" => Some("https://clerk.example.com".into()),
            k if k == name => Some(value.into()),
            _ => None,
        })
        .expect_err(value);
        assert!(err.to_string().contains(name), "{err}");
    }
    let app = TestApp::with_env(&[("MAX_SESSIONS_PER_CLIENT", "2")]).await;
    let (token, _, _) = app.native_session().await;
    let (token, _) = app.native_sign_in(&token, &app.create_user().await).await;
    let ticket = app.ticket(&app.create_user().await).await;
    app.send(
        Req::post("/v1/client/sign_ins")
            .native(&token)
            .form(&format!("strategy=ticket&ticket={ticket}")),
    )
    .await
    .assert_error(400, "too_many_sessions");
}
