//! A caller's own retry of a request whose answer it never got (a time-out, a dropped
//! connection; docs/api.md, "Retrying"): a ticket sign-in retried with the same ticket and
//! the client token it first sent is answered what it made, on every store; anyone else
//! presenting the ticket is told it was used.

use std::sync::Arc;

use shared::store::Store;
use testkit::app::*;

testkit::each_store!(a_sign_in_retried_by_its_caller_answers_what_it_made);

async fn a_sign_in_retried_by_its_caller_answers_what_it_made(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let user = app.create_user().await;
    let client = app.send(Req::post("/v1/client?_is_native=1")).await;
    let first_token = client.header("authorization").unwrap().to_string();
    let ticket = app.ticket(&user).await;
    let sign_in = |token: &str| {
        Req::post("/v1/client/sign_ins")
            .native(token)
            .form(&format!("strategy=ticket&ticket={ticket}"))
    };
    let (token, sid) = app.send(sign_in(&first_token)).await.signed_in();

    // The same request again: the same session, and a token of the client as it now is.
    app.clock.advance_secs(30);
    let again = app.send(sign_in(&first_token)).await;
    let (again_token, again_sid) = again.signed_in();
    assert_eq!(again_sid, sid);
    assert_eq!(
        again.body["client"]["sessions"].as_array().unwrap().len(),
        1
    );
    let resp = app
        .send(Req::get(session_path(&sid, "")).native(&again_token))
        .await;
    assert_eq!(resp.ok()["response"]["status"], "active");
    assert_eq!(
        app.user_sessions(&user).await.len(),
        1,
        "nothing made twice"
    );

    // The client's current token had its answer already: for it the ticket is used.
    app.send(sign_in(&token))
        .await
        .assert_error(400, "ticket_invalid");
    // Anyone else with the ticket: another client, or none.
    let other = app.send(Req::post("/v1/client?_is_native=1")).await;
    let other = other.header("authorization").unwrap().to_string();
    app.send(sign_in(&other))
        .await
        .assert_error(400, "ticket_invalid");
    app.send(
        Req::post("/v1/client/sign_ins?_is_native=1")
            .form(&format!("strategy=ticket&ticket={ticket}")),
    )
    .await
    .assert_error(400, "ticket_invalid");

    // Past the retry window, or once the session is signed out: used.
    app.clock.advance_secs(91);
    app.send(sign_in(&first_token))
        .await
        .assert_error(400, "ticket_invalid");
    let ticket2 = app.ticket(&app.create_user().await).await;
    let client2 = app.send(Req::post("/v1/client?_is_native=1")).await;
    let t0 = client2.header("authorization").unwrap().to_string();
    let retry = || {
        Req::post("/v1/client/sign_ins")
            .native(&t0)
            .form(&format!("strategy=ticket&ticket={ticket2}"))
    };
    let (t1, sid2) = app.send(retry()).await.signed_in();
    app.send(Req::post(session_path(&sid2, "end")).native(&t1))
        .await
        .ok();
    app.send(retry()).await.assert_error(400, "ticket_invalid");
}

/// What docs/api.md ("Retrying") says a caller's second end, remove or sign-out gets.
#[tokio::test]
async fn a_session_move_sent_twice_changes_nothing_the_second_time() {
    let app = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    let end = || Req::post(session_path(&sid, "end")).native(&token);
    assert_eq!(app.send(end()).await.ok()["response"]["status"], "ended");
    let again = app.send(end()).await;
    again.assert_error(400, "invalid_action_for_session");
    let (token, sid) = app.native_sign_in(&token, &app.create_user().await).await;
    let remove = || Req::post(session_path(&sid, "remove")).native(&token);
    assert_eq!(
        app.send(remove()).await.ok()["response"]["status"],
        "removed"
    );
    app.send(remove())
        .await
        .assert_error(400, "invalid_action_for_session");
    let out = || Req::delete("/v1/client/sessions").native(&token);
    app.send(out()).await.ok();
    let again = app.send(out()).await;
    assert_eq!(again.ok()["response"]["sessions"], serde_json::json!([]));
}
