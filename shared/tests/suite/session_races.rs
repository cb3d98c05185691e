//! Many requests on one session at once, on both stores: minting is a read and a
//! signature, activity and status are field writes with their own conditions, so no
//! request answers 409, and no token is handed out for a signed-out session.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;
use shared::domain::SessionStatus;
use shared::store::Store;
use testkit::app::*;

testkit::each_store!(
    mints_and_touches_on_one_session_all_succeed,
    no_mint_that_starts_after_an_end_succeeds,
    touches_ends_and_removes_never_conflict,
    signed_out_sessions_hand_out_no_token,
);

fn mint(sid: &str, token: &str) -> Req {
    Req::post(session_path(sid, "tokens")).native(token)
}

/// 64 mints and 16 touches at once, with activity due (so every one of them may try to
/// record it): every answer is 200, and the activity is recorded.
async fn mints_and_touches_on_one_session_all_succeed(store: Arc<dyn Store>) {
    let app = Arc::new(TestApp::on(store).await);
    let (token, sid, _) = app.native_session().await;
    let before = app.stored_session(&sid).await;
    app.clock.advance_secs(2 * 3600);
    let now = app.now_ms();

    let mut tasks = Vec::new();
    for i in 0..80 {
        let (app, token, sid) = (Arc::clone(&app), token.clone(), sid.clone());
        tasks.push(tokio::spawn(async move {
            let req = if i % 5 == 4 {
                Req::post(session_path(&sid, "touch")).native(&token)
            } else {
                mint(&sid, &token)
            };
            let resp = app.send(req).await;
            (i % 5 == 4, resp)
        }));
    }
    for task in tasks {
        let (touch, resp) = task.await.unwrap();
        assert_eq!(resp.status, 200, "touch: {touch}: {}", resp.body);
        if !touch {
            assert_eq!(
                jwt_claims(resp.body["jwt"].as_str().unwrap())["sid"],
                sid.as_str()
            );
        }
    }
    let after = app.stored_session(&sid).await;
    assert_eq!(after.status, SessionStatus::Active);
    assert_eq!(
        after.last_active_at, now,
        "activity recorded at the current time"
    );
    assert!(after.abandon_at > before.abandon_at, "abandon_at slid");
}

/// End a session while mints race it: a mint that starts after the end has answered is
/// refused (401 signed_out); one already under way may still finish.
async fn no_mint_that_starts_after_an_end_succeeds(store: Arc<dyn Store>) {
    let app = Arc::new(TestApp::on(store).await);
    let (token, sid, _) = app.native_session().await;
    let end_answered = Arc::new(AtomicBool::new(false));

    let spawn_mint = |app: &Arc<TestApp>, i: u64| {
        let (app, token, sid) = (Arc::clone(app), token.clone(), sid.clone());
        let end_answered = Arc::clone(&end_answered);
        tokio::spawn(async move {
            // Spread the starts around the end.
            tokio::time::sleep(std::time::Duration::from_millis(i % 8)).await;
            let started_after_end = end_answered.load(Ordering::SeqCst);
            let resp = app.send(mint(&sid, &token)).await;
            (started_after_end, resp)
        })
    };
    // Mints that certainly start (and finish) before the end all succeed.
    for _ in 0..4 {
        let resp = app.send(mint(&sid, &token)).await;
        assert_eq!(resp.status, 200, "{}", resp.body);
    }
    // Then a wave around the end: how many start before it is up to the scheduler.
    let mut tasks: Vec<_> = (0..48).map(|i| spawn_mint(&app, i)).collect();
    let end = {
        let (app, token, sid) = (Arc::clone(&app), token.clone(), sid.clone());
        let end_answered = Arc::clone(&end_answered);
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
            let end = app
                .send(Req::post(session_path(&sid, "end")).native(&token))
                .await;
            end_answered.store(true, Ordering::SeqCst);
            end
        })
    };
    let end = end.await.unwrap();
    assert_eq!(end.status, 200, "{}", end.body);
    // And a wave that certainly starts after the end.
    tasks.extend((0..16).map(|i| spawn_mint(&app, i)));

    let (mut refused_after, mut before) = (0, 0);
    for task in tasks {
        let (started_after_end, resp) = task.await.unwrap();
        if started_after_end {
            resp.assert_error(401, "signed_out");
            refused_after += 1;
        } else {
            assert!(
                resp.status == 200 || resp.error_code() == "signed_out",
                "{} {}",
                resp.status,
                resp.body
            );
            before += 1;
        }
    }
    assert!(
        refused_after >= 16,
        "{refused_after} mints started after the end"
    );
    assert_eq!(before + refused_after, 64);
}

/// 64 touches, ends and removes at once on one session: each answers 200 or the
/// transition's own 400, never 409; exactly one end and one remove win.
async fn touches_ends_and_removes_never_conflict(store: Arc<dyn Store>) {
    let app = Arc::new(TestApp::on(store).await);
    let (token, sid, _) = app.native_session().await;
    app.clock.advance_secs(2 * 3600); // activity due: touches write too
    let mut tasks = Vec::new();
    for i in 0..64 {
        let action = ["touch", "end", "remove", "touch"][i % 4];
        let (app, token, sid) = (Arc::clone(&app), token.clone(), sid.clone());
        tasks.push(tokio::spawn(async move {
            let resp = app
                .send(Req::post(session_path(&sid, action)).native(&token))
                .await;
            (action, resp)
        }));
    }
    let mut wins = std::collections::HashMap::<&str, usize>::new();
    for task in tasks {
        let (action, resp) = task.await.unwrap();
        match resp.status {
            200 => *wins.entry(action).or_default() += 1,
            400 => assert_eq!(resp.error_code(), "invalid_action_for_session"),
            _ => panic!("{action}: {} {}", resp.status, resp.body),
        }
    }
    assert_eq!(wins.get("remove"), Some(&1), "{wins:?}");
    assert!(wins.get("end").copied().unwrap_or(0) <= 1, "{wins:?}");
    assert_eq!(
        app.stored_session(&sid).await.status,
        SessionStatus::Removed
    );
}

/// The `last_active_token` of an answer or a client read is fresh and only ever for a
/// signed-in session: never after end, remove or revoke.
async fn signed_out_sessions_hand_out_no_token(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let (token, sid, _) = app.native_session().await;
    let client = |token: String| Req::get("/v1/client").native(&token);

    // Signed in: GET /v1/client carries a token for the session, minted now.
    let read = app.send(client(token.clone())).await;
    let jwt = read.ok()["response"]["sessions"][0]["last_active_token"]["jwt"]
        .as_str()
        .expect("a fresh token")
        .to_string();
    let c = jwt_claims(&jwt);
    assert_eq!(c["sid"], sid.as_str());
    assert_eq!(c["iat"], app.now_ms() / 1000);

    // End: neither the answer nor a later read has one.
    let ended = app
        .send(Req::post(session_path(&sid, "end")).native(&token))
        .await;
    assert_eq!(ended.ok()["response"]["last_active_token"], Value::Null);
    for s in ended.ok()["client"]["sessions"].as_array().unwrap() {
        assert_eq!(s["last_active_token"], Value::Null);
    }
    let read = app.send(client(token.clone())).await;
    assert_eq!(read.ok()["response"]["sessions"][0]["status"], "ended");
    assert_eq!(
        read.ok()["response"]["sessions"][0]["last_active_token"],
        Value::Null
    );
    assert_eq!(read.ok()["response"]["last_active_session_id"], Value::Null);

    // Remove: the answer has none, and the client no longer shows the session.
    let (token, sid2) = app.native_sign_in(&token, &app.create_user().await).await;
    let removed = app
        .send(Req::post(session_path(&sid2, "remove")).native(&token))
        .await;
    assert_eq!(removed.ok()["response"]["last_active_token"], Value::Null);
    let read = app.send(client(token.clone())).await;
    let sessions = read.ok()["response"]["sessions"]
        .as_array()
        .unwrap()
        .clone();
    assert!(sessions.iter().all(|s| s["id"] != sid2.as_str()));
    assert!(sessions
        .iter()
        .all(|s| s["last_active_token"] == Value::Null));

    // Revoke (Backend API): the next client read has no token and no last active session.
    let (token, sid3) = app.native_sign_in(&token, &app.create_user().await).await;
    let read = app.send(client(token.clone())).await;
    assert_eq!(
        read.ok()["response"]["last_active_session_id"],
        sid3.as_str()
    );
    app.revoke(&sid3).await.ok();
    let read = app.send(client(token.clone())).await;
    assert_eq!(read.ok()["response"]["last_active_session_id"], Value::Null);
    for s in read.ok()["response"]["sessions"].as_array().unwrap() {
        assert_eq!(s["last_active_token"], Value::Null, "{s}");
    }
    app.send(mint(&sid3, &token))
        .await
        .assert_error(401, "signed_out");
}
