//! Sign-up on every store (`/v1/client/sign_ups`): an email address and a password, the
//! address verified by a code, then the user and its session made in one commit; every
//! error a sign-up answers, and two sign-ups racing for one address.

use std::sync::Arc;

use serde_json::Value;
use shared::store::Store;
use testkit::app::*;

testkit::each_store!(
    a_verified_sign_up_makes_the_user_and_its_session,
    what_a_sign_up_refuses_writes_no_user,
    a_sign_up_belongs_to_its_client,
    two_sign_ups_racing_for_one_address_make_one_user,
);

const PASSWORD: &str = "plum-tractor-vinegar-42";

fn sign_up(token: &str, body: &str) -> Req {
    Req::post("/v1/client/sign_ups").native(token).form(body)
}

fn step(token: &str, id: &str, action: &str, body: &str) -> Req {
    Req::post(format!("/v1/client/sign_ups/{id}/{action}"))
        .native(token)
        .form(body)
}

fn token_of(resp: &TestResponse) -> String {
    resp.header("authorization")
        .expect("client token")
        .to_string()
}

/// Starts a sign-up for `email` on a new client and sends its code: (token, id, code).
async fn started(app: &TestApp, email: &str) -> (String, String, String) {
    let resp = app
        .send(sign_up(
            "",
            &format!("email_address={email}&password={PASSWORD}&first_name=Ada"),
        ))
        .await;
    let body = resp.ok().clone();
    let id = body["response"]["id"].as_str().unwrap().to_string();
    let token = token_of(&resp);
    app.send(step(
        &token,
        &id,
        "prepare_verification",
        "strategy=email_code",
    ))
    .await
    .ok();
    let code = app.mail.code(email).expect("a code sent");
    (token, id, code)
}

async fn a_verified_sign_up_makes_the_user_and_its_session(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let resp = app
        .send(sign_up(
            "",
            &format!("email_address=Ada@Example.com&password={PASSWORD}"),
        ))
        .await;
    let body = resp.ok().clone();
    let r = &body["response"];
    assert_eq!(r["object"], "sign_up_attempt");
    assert_eq!(r["status"], "missing_requirements");
    assert_eq!(r["email_address"], "ada@example.com");
    assert_eq!(r["password_enabled"], true);
    assert_eq!(r["missing_fields"], Value::Array(vec![]));
    assert_eq!(r["unverified_fields"][0], "email_address");
    assert_eq!(
        r["verifications"]["email_address"]["next_action"],
        "needs_prepare"
    );
    assert_eq!(body["client"]["sign_up"]["id"], r["id"]);
    assert!(!body.to_string().contains(PASSWORD));
    let (token, id) = (token_of(&resp), r["id"].as_str().unwrap().to_string());

    // More fields on the way.
    let patched = app
        .send(
            Req::new("PATCH", format!("/v1/client/sign_ups/{id}"))
                .native(&token)
                .form("first_name=Ada&last_name=Lovelace"),
        )
        .await;
    assert_eq!(patched.ok()["response"]["last_name"], "Lovelace");

    let prepared = app
        .send(step(
            &token,
            &id,
            "prepare_verification",
            "strategy=email_code",
        ))
        .await;
    assert_eq!(
        prepared.ok()["response"]["verifications"]["email_address"]["status"],
        "unverified"
    );
    let mail = app.mail.sent_to("ada@example.com");
    assert_eq!(mail.len(), 1);
    let code = app.mail.code("ada@example.com").unwrap();
    let done = app
        .send(step(
            &token,
            &id,
            "attempt_verification",
            &format!("strategy=email_code&code={code}"),
        ))
        .await;
    let body = done.ok();
    let r = &body["response"];
    assert_eq!(r["status"], "complete", "{body}");
    assert!(body["client"]["sign_up"].is_null());
    let (user, sid) = (
        r["created_user_id"].as_str().unwrap(),
        r["created_session_id"].as_str().unwrap(),
    );
    assert_eq!(body["client"]["last_active_session_id"], sid);
    let read = app
        .send(Req::get(format!("/v1/users/{user}")).secret())
        .await;
    let u = read.ok();
    assert_eq!(u["password_enabled"], true);
    assert_eq!(u["first_name"], "Ada");
    assert_eq!(u["email_addresses"][0]["email_address"], "ada@example.com");
    assert_eq!(
        u["email_addresses"][0]["verification"]["status"],
        "verified"
    );
    // And the new user signs in with the password on another client.
    let again = app
        .send(
            Req::post("/v1/client/sign_ins")
                .native("")
                .form(&format!("identifier=ada@example.com&password={PASSWORD}")),
        )
        .await;
    assert_eq!(again.ok()["response"]["status"], "complete");
}

async fn what_a_sign_up_refuses_writes_no_user(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    app.create_user_from(&serde_json::json!({ "email_address": ["taken@example.com"] }))
        .await;
    for (body, code, param) in [
        (
            format!("email_address=taken@example.com&password={PASSWORD}"),
            "form_identifier_exists",
            "email_address",
        ),
        (
            "email_address=new@example.com&password=password".to_string(),
            "form_password_pwned",
            "password",
        ),
        (
            "email_address=new@example.com&password=short".to_string(),
            "form_password_length_too_short",
            "password",
        ),
        (
            format!(
                "email_address=new@example.com&password={}",
                "p".repeat(65_000)
            ),
            "form_password_length_too_long",
            "password",
        ),
        (
            format!("email_address=not-an-address&password={PASSWORD}"),
            "form_param_value_invalid",
            "email_address",
        ),
        (
            format!(
                "email_address={}@example.com&password={PASSWORD}",
                "a".repeat(10_000)
            ),
            "form_param_value_invalid",
            "email_address",
        ),
        (
            format!("email_address=new@example.com&username=ada_l&password={PASSWORD}"),
            "form_param_value_invalid",
            "username",
        ),
    ] {
        app.send(sign_up("", &body))
            .await
            .assert_param_error(422, code, param);
    }

    // A wrong code, then the right one after ten minutes.
    let (token, id, code) = started(&app, "late@example.com").await;
    let attempt = |code: &str| {
        step(
            &token,
            &id,
            "attempt_verification",
            &format!("strategy=email_code&code={code}"),
        )
    };
    let wrong = if code == "000000" { "111111" } else { "000000" };
    app.send(attempt(wrong))
        .await
        .assert_param_error(422, "form_code_incorrect", "code");
    app.clock.advance_secs(10 * 60);
    app.send(attempt(&code))
        .await
        .assert_error(422, "verification_expired");
    app.send(step(
        &token,
        &id,
        "prepare_verification",
        "strategy=phone_code",
    ))
    .await
    .assert_param_error(422, "form_param_value_invalid", "strategy");

    // Sign-ups closed: refused before anything is read.
    let closed = TestApp::with_env(&[("SIGN_UP_MODE", "restricted")]).await;
    closed
        .send(sign_up(
            "",
            &format!("email_address=new@example.com&password={PASSWORD}"),
        ))
        .await
        .assert_error(403, "sign_up_restricted");
}

async fn a_sign_up_belongs_to_its_client(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let (_, id, code) = started(&app, "own@example.com").await;
    let other = app.send(Req::post("/v1/client").native("")).await;
    let other_token = token_of(&other);
    app.send(Req::get(format!("/v1/client/sign_ups/{id}")).native(&other_token))
        .await
        .assert_error(404, "resource_not_found");
    app.send(step(
        &other_token,
        &id,
        "attempt_verification",
        &format!("strategy=email_code&code={code}"),
    ))
    .await
    .assert_error(404, "resource_not_found");
}

async fn two_sign_ups_racing_for_one_address_make_one_user(store: Arc<dyn Store>) {
    let app = Arc::new(TestApp::on(store).await);
    // Two clients, each with a verified code for the same address.
    let (a_token, a_id, a_code) = started(&app, "race@example.com").await;
    app.mail.clear();
    let (b_token, b_id, b_code) = started(&app, "race@example.com").await;
    let attempt = |token: String, id: String, code: String| {
        let app = app.clone();
        tokio::spawn(async move {
            app.send(step(
                &token,
                &id,
                "attempt_verification",
                &format!("strategy=email_code&code={code}"),
            ))
            .await
        })
    };
    let first = attempt(a_token, a_id, a_code);
    let second = attempt(b_token, b_id, b_code);
    let answers = [first.await.unwrap(), second.await.unwrap()];
    let made: Vec<_> = answers.iter().filter(|r| r.status == 200).collect();
    assert_eq!(made.len(), 1, "{answers:?}");
    let refused = answers.iter().find(|r| r.status != 200).unwrap();
    refused.assert_param_error(422, "form_identifier_exists", "email_address");
}
