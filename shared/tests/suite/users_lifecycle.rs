//! A user's lifecycle through the Backend API, on every store: a ban revokes every
//! signed-in session (on every client) and refuses sign-ins until an unban; a deletion
//! ends the sessions and removes the user; unknown users are 404 and change nothing.

use std::sync::Arc;

use shared::store::Store;
use testkit::app::*;

testkit::each_store!(
    a_ban_revokes_every_session_and_refuses_sign_ins_until_unbanned,
    a_deletion_ends_the_sessions_and_removes_the_user,
    many_sessions_are_signed_out_across_several_commits,
    unknown_users_are_404_and_nothing_changes,
    sign_ins_racing_a_ban_leave_nothing_signed_in,
);

/// Signs `user` in on `clients` new native clients: (client token, session id) each.
async fn signed_in(app: &TestApp, user: &str, clients: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for _ in 0..clients {
        let resp = app.send(Req::post("/v1/client?_is_native=1")).await;
        let token = resp.header("authorization").unwrap().to_string();
        out.push(app.native_sign_in(&token, user).await);
    }
    out
}

fn sign_in_with(token: &str, ticket: &str) -> Req {
    Req::post("/v1/client/sign_ins")
        .native(token)
        .form(&format!("strategy=ticket&ticket={ticket}"))
}

async fn a_ban_revokes_every_session_and_refuses_sign_ins_until_unbanned(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let user = app.create_user().await;
    let bystander = app.create_user().await;
    let sessions = signed_in(&app, &user, 2).await;
    let (other_token, other_sid) = signed_in(&app, &bystander, 1).await.remove(0);
    // One session already ended stays ended (a ban does not rewrite it).
    let (ended_token, ended_sid) = signed_in(&app, &user, 1).await.remove(0);
    app.send(Req::post(session_path(&ended_sid, "end")).native(&ended_token))
        .await
        .ok();
    let ticket = app.ticket(&user).await;

    let resp = app
        .send(Req::post(format!("/v1/users/{user}/ban")).secret())
        .await;
    assert_eq!(resp.ok()["banned"], true);
    assert_eq!(resp.body["id"], user.as_str());
    for (token, sid) in &sessions {
        assert_eq!(app.bapi_session(sid).await["status"], "revoked");
        app.send(Req::post(session_path(sid, "tokens")).native(token))
            .await
            .assert_error(401, "signed_out");
    }
    assert_eq!(app.bapi_session(&ended_sid).await["status"], "ended");
    assert_eq!(
        app.bapi_session(&other_sid).await["status"],
        "active",
        "another user's session"
    );
    let fresh = app
        .send(Req::post(session_path(&other_sid, "tokens")).native(&other_token))
        .await;
    assert_eq!(fresh.status, 200);
    // The user reads as banned, on the Backend API and in public user data.
    let read = app
        .send(Req::get(format!("/v1/users/{user}")).secret())
        .await;
    assert_eq!(read.ok()["banned"], true);

    // A sign-in is refused, and the ticket is not spent by the refusal.
    let client = app.send(Req::post("/v1/client?_is_native=1")).await;
    let token = client.header("authorization").unwrap().to_string();
    app.send(sign_in_with(&token, &ticket))
        .await
        .assert_error(403, "user_banned");
    // Banning again changes nothing more.
    let again = app
        .send(Req::post(format!("/v1/users/{user}/ban")).secret())
        .await;
    assert_eq!(again.ok()["banned"], true);

    let resp = app
        .send(Req::post(format!("/v1/users/{user}/unban")).secret())
        .await;
    assert_eq!(resp.ok()["banned"], false);
    let signed = app.send(sign_in_with(&token, &ticket)).await;
    assert_eq!(
        signed.status, 200,
        "the same ticket works once unbanned: {}",
        signed.body
    );
    // Revoked sessions stay revoked.
    assert_eq!(app.bapi_session(&sessions[0].1).await["status"], "revoked");
}

async fn a_deletion_ends_the_sessions_and_removes_the_user(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let user = app.create_user().await;
    let sessions = signed_in(&app, &user, 2).await;
    let ticket = app.ticket(&user).await;
    let resp = app
        .send(Req::delete(format!("/v1/users/{user}")).secret())
        .await;
    assert_eq!(resp.ok()["object"], "user");
    assert_eq!(resp.body["id"], user.as_str());
    assert_eq!(resp.body["deleted"], true);
    app.send(Req::get(format!("/v1/users/{user}")).secret())
        .await
        .assert_error(404, "resource_not_found");
    for (token, sid) in &sessions {
        assert_eq!(app.bapi_session(sid).await["status"], "ended");
        app.send(Req::post(session_path(sid, "tokens")).native(token))
            .await
            .assert_error(401, "signed_out");
        // The client still reads, its session signed out and without its user.
        let client = app.send(Req::get("/v1/client").native(token)).await;
        assert_eq!(
            client.ok()["response"]["last_active_session_id"],
            serde_json::Value::Null
        );
    }
    let client = app.send(Req::post("/v1/client?_is_native=1")).await;
    let token = client.header("authorization").unwrap().to_string();
    app.send(sign_in_with(&token, &ticket))
        .await
        .assert_error(400, "ticket_invalid");
    app.send(Req::delete(format!("/v1/users/{user}")).secret())
        .await
        .assert_error(404, "resource_not_found");
}

async fn many_sessions_are_signed_out_across_several_commits(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let user = app.create_user().await;
    // More than one commit's worth (25 status writes per commit).
    signed_in(&app, &user, 30).await;
    let resp = app
        .send(Req::post(format!("/v1/users/{user}/ban")).secret())
        .await;
    assert_eq!(resp.ok()["banned"], true);
    let listed = app.user_sessions(&user).await;
    assert_eq!(listed.len(), 30);
    assert!(
        listed.iter().all(|s| s["status"] == "revoked"),
        "{listed:?}"
    );
}

async fn unknown_users_are_404_and_nothing_changes(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let user = app.create_user().await;
    let (_, sid) = signed_in(&app, &user, 1).await.remove(0);
    for req in [
        Req::post("/v1/users/user_unknown/ban"),
        Req::post("/v1/users/user_unknown/unban"),
        Req::delete("/v1/users/user_unknown"),
    ] {
        app.send(req.secret())
            .await
            .assert_error(404, "resource_not_found");
    }
    for req in [
        Req::post(format!("/v1/users/{user}/ban")),
        Req::delete(format!("/v1/users/{user}")),
    ] {
        app.send(req)
            .await
            .assert_error(401, "authentication_invalid");
    }
    assert_eq!(app.bapi_session(&sid).await["status"], "active");
    let read = app
        .send(Req::get(format!("/v1/users/{user}")).secret())
        .await;
    assert_eq!(read.ok()["banned"], false);
}

async fn sign_ins_racing_a_ban_leave_nothing_signed_in(store: Arc<dyn Store>) {
    let app = Arc::new(TestApp::on(store).await);
    let user = app.create_user().await;
    let mut tickets = Vec::new();
    for _ in 0..8 {
        tickets.push(app.ticket(&user).await);
    }
    let mut tasks = Vec::new();
    for ticket in tickets {
        let app = Arc::clone(&app);
        tasks.push(tokio::spawn(async move {
            let client = app.send(Req::post("/v1/client?_is_native=1")).await;
            let token = client.header("authorization").unwrap().to_string();
            app.send(sign_in_with(&token, &ticket)).await.status
        }));
    }
    let ban = {
        let (app, user) = (Arc::clone(&app), user.clone());
        tokio::spawn(async move {
            app.send(Req::post(format!("/v1/users/{user}/ban")).secret())
                .await
        })
    };
    for task in tasks {
        let status = task.await.unwrap();
        assert!(
            status == 200 || status == 403,
            "a sign-in lands or is refused: {status}"
        );
    }
    assert_eq!(ban.await.unwrap().ok()["banned"], true);
    // Whichever sign-ins landed before the ban, none is signed in after it.
    let listed = app.user_sessions(&user).await;
    assert!(
        listed.iter().all(|s| s["status"] == "revoked"),
        "{listed:?}"
    );
}
