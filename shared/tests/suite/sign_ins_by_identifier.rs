//! Sign-in by identifier on every store (`/v1/client/sign_ins` without a ticket): a
//! password in one step, an email code, a password reset; every error the flows answer,
//! the account lockout and its unlock through the Backend API, racing attempts with one
//! code, and identifiers held by one user only.

use std::sync::Arc;

use serde_json::{json, Value};
use shared::domain::password::Hasher;
use shared::store::Store;
use testkit::app::*;

testkit::each_store!(
    a_password_signs_in_in_one_step,
    an_email_code_signs_in_once,
    wrong_expired_and_spent_codes_are_refused,
    the_eleventh_failure_is_refused_as_locked_until_unlocked,
    a_reset_code_sets_a_new_password_and_the_old_one_stops_working,
    a_sign_in_belongs_to_its_client,
    racing_attempts_with_one_code_make_one_session,
    an_email_address_belongs_to_one_user,
    imported_digests_sign_in_and_a_bcrypt_one_becomes_argon2id,
);

const PASSWORD: &str = "plum-tractor-vinegar-42";

/// A user with `email` and [`PASSWORD`]; answers its id.
async fn user_with_password(app: &TestApp, email: &str) -> String {
    app.create_user_from(&json!({
        "email_address": [email], "password": PASSWORD, "first_name": "Ada",
    }))
    .await
}

fn sign_in(token: &str, body: &str) -> Req {
    Req::post("/v1/client/sign_ins").native(token).form(body)
}

fn step(token: &str, id: &str, action: &str, body: &str) -> Req {
    Req::post(format!("/v1/client/sign_ins/{id}/{action}"))
        .native(token)
        .form(body)
}

/// The client token an answer carries.
fn token_of(resp: &TestResponse) -> String {
    resp.header("authorization")
        .expect("client token")
        .to_string()
}

/// Starts a sign-in for `identifier` on a new native client: (client token, sign-in id).
async fn identified(app: &TestApp, identifier: &str) -> (String, String, Value) {
    let resp = app
        .send(sign_in("", &format!("identifier={identifier}")))
        .await;
    let body = resp.ok().clone();
    assert_eq!(body["response"]["status"], "needs_first_factor", "{body}");
    let id = body["response"]["id"].as_str().unwrap().to_string();
    (token_of(&resp), id, body)
}

/// Sends an email code for the sign-in and answers it, as the mail carried it.
async fn send_code(app: &TestApp, token: &str, id: &str, strategy: &str, to: &str) -> String {
    app.mail.clear();
    app.send(step(
        token,
        id,
        "prepare_first_factor",
        &format!("strategy={strategy}"),
    ))
    .await
    .ok();
    app.mail.code(to).expect("a code sent")
}

fn wrong(code: &str) -> &'static str {
    if code == "000000" {
        "111111"
    } else {
        "000000"
    }
}

#[track_caller]
fn completed(resp: &TestResponse) -> String {
    let body = resp.ok();
    assert_eq!(body["response"]["status"], "complete", "{body}");
    assert!(body["client"]["sign_in"].is_null(), "{body}");
    let sid = body["response"]["created_session_id"].as_str().unwrap();
    assert_eq!(body["client"]["last_active_session_id"], sid);
    sid.to_string()
}

async fn a_password_signs_in_in_one_step(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let user = user_with_password(&app, "ada@example.com").await;

    // Any case, surrounding spaces.
    let resp = app
        .send(sign_in(
            "",
            &format!("identifier=%20ADA@example.com&password={PASSWORD}"),
        ))
        .await;
    let sid = completed(&resp);
    let body = &resp.body;
    assert_eq!(
        body["response"]["first_factor_verification"]["strategy"],
        "password"
    );
    assert_eq!(
        body["response"]["first_factor_verification"]["status"],
        "verified"
    );
    let session = app.store.get_session(&sid).await.unwrap().unwrap();
    assert_eq!(session.user_id, user);
    assert!(!body.to_string().contains(PASSWORD));
    let read = app
        .send(Req::get(format!("/v1/users/{user}")).secret())
        .await;
    assert!(read.ok()["last_sign_in_at"].is_i64());

    // The errors, none of which writes a client.
    for (body, status, code, param) in [
        (
            format!("identifier=ada@example.com&password={PASSWORD}x"),
            422,
            "form_password_incorrect",
            "password",
        ),
        (
            format!("identifier=nobody@example.com&password={PASSWORD}"),
            422,
            "form_identifier_not_found",
            "identifier",
        ),
        (
            format!("identifier={}&password=x", "a".repeat(10_000)),
            422,
            "form_identifier_not_found",
            "identifier",
        ),
        (
            format!("identifier=ada@example.com&password={}", "p".repeat(65_000)),
            422,
            "form_password_incorrect",
            "password",
        ),
        (
            format!("password={PASSWORD}"),
            422,
            "form_param_missing",
            "identifier",
        ),
    ] {
        app.send(sign_in("", &body))
            .await
            .assert_param_error(status, code, param);
    }

    // Two steps: the identifier, then the password; the factors list offers both kinds.
    let (token, id, body) = identified(&app, "ada@example.com").await;
    let factors: Vec<&str> = body["response"]["supported_first_factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["strategy"].as_str().unwrap())
        .collect();
    assert_eq!(
        factors,
        ["password", "email_code", "reset_password_email_code"]
    );
    assert_eq!(body["client"]["sign_in"]["id"], id.as_str());
    let got = app
        .send(Req::get(format!("/v1/client/sign_ins/{id}")).native(&token))
        .await;
    assert_eq!(got.ok()["response"]["status"], "needs_first_factor");
    let done = app
        .send(step(
            &token,
            &id,
            "attempt_first_factor",
            &format!("strategy=password&password={PASSWORD}"),
        ))
        .await;
    completed(&done);
    // The same user again on the same client: already signed in.
    let again = app
        .send(sign_in(
            &token_of(&done),
            &format!("identifier=ada@example.com&password={PASSWORD}"),
        ))
        .await;
    again.assert_error(400, "identifier_already_signed_in");
}

async fn an_email_code_signs_in_once(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    user_with_password(&app, "grace@example.com").await;
    let (token, id, _) = identified(&app, "grace@example.com").await;
    let code = send_code(&app, &token, &id, "email_code", "grace@example.com").await;
    let mail = app.mail.sent_to("grace@example.com");
    assert_eq!(mail.len(), 1);
    let done = app
        .send(step(
            &token,
            &id,
            "attempt_first_factor",
            &format!("strategy=email_code&code={code}"),
        ))
        .await;
    completed(&done);
    assert_eq!(
        done.body["response"]["first_factor_verification"]["status"],
        "verified"
    );
    // Spent with its sign-in: the sign-in is gone from the client.
    app.send(step(
        &token_of(&done),
        &id,
        "attempt_first_factor",
        &format!("strategy=email_code&code={code}"),
    ))
    .await
    .assert_error(404, "resource_not_found");

    // In one step: `strategy=email_code` with the identifier sends the code.
    app.mail.clear();
    let resp = app
        .send(sign_in(
            "",
            "identifier=grace@example.com&strategy=email_code",
        ))
        .await;
    let body = resp.ok();
    assert_eq!(
        body["response"]["first_factor_verification"]["status"],
        "unverified"
    );
    assert!(app.mail.code("grace@example.com").is_some());
}

async fn wrong_expired_and_spent_codes_are_refused(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    user_with_password(&app, "kat@example.com").await;
    let (token, id, _) = identified(&app, "kat@example.com").await;
    let attempt = |code: &str| {
        step(
            &token,
            &id,
            "attempt_first_factor",
            &format!("strategy=email_code&code={code}"),
        )
    };
    // Before any code was sent.
    app.send(attempt("123456")).await.assert_param_error(
        422,
        "strategy_for_user_invalid",
        "strategy",
    );

    let code = send_code(&app, &token, &id, "email_code", "kat@example.com").await;
    app.send(attempt(wrong(&code)))
        .await
        .assert_param_error(422, "form_code_incorrect", "code");
    // Five wrong attempts fail the code for good; the right one then too.
    for _ in 0..3 {
        app.send(attempt(wrong(&code))).await;
    }
    app.send(attempt(wrong(&code)))
        .await
        .assert_error(422, "verification_failed");
    app.send(attempt(&code))
        .await
        .assert_error(422, "verification_failed");

    // A new code, left for ten minutes.
    let code = send_code(&app, &token, &id, "email_code", "kat@example.com").await;
    app.clock.advance_secs(10 * 60);
    app.send(attempt(&code))
        .await
        .assert_error(422, "verification_expired");

    // A sign-in sends at most five codes.
    for _ in 0..3 {
        send_code(&app, &token, &id, "email_code", "kat@example.com").await;
    }
    app.send(step(
        &token,
        &id,
        "prepare_first_factor",
        "strategy=email_code",
    ))
    .await
    .assert_error(429, "too_many_requests");
    // A strategy this service does not have.
    app.send(step(
        &token,
        &id,
        "prepare_first_factor",
        "strategy=phone_code",
    ))
    .await
    .assert_param_error(422, "form_param_value_invalid", "strategy");
}

async fn the_eleventh_failure_is_refused_as_locked_until_unlocked(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let user = user_with_password(&app, "lin@example.com").await;
    let (token, id, _) = identified(&app, "lin@example.com").await;
    let password = |p: &str| {
        step(
            &token,
            &id,
            "attempt_first_factor",
            &format!("strategy=password&password={p}"),
        )
    };
    for _ in 0..10 {
        app.send(password("not-the-password"))
            .await
            .assert_param_error(422, "form_password_incorrect", "password");
    }
    // Locked: the right password too is refused, and says for how long.
    let locked = app.send(password(PASSWORD)).await;
    locked.assert_error(403, "user_locked");
    assert_eq!(
        locked.body["errors"][0]["meta"]["lockout_expires_in_seconds"],
        3600
    );
    // From any client.
    app.send(sign_in(
        "",
        &format!("identifier=lin@example.com&password={PASSWORD}"),
    ))
    .await
    .assert_error(403, "user_locked");
    let read = app
        .send(Req::get(format!("/v1/users/{user}")).secret())
        .await;
    assert_eq!(read.ok()["locked"], true);
    assert_eq!(read.body["lockout_expires_in_seconds"], 3600);

    let unlocked = app
        .send(Req::post(format!("/v1/users/{user}/unlock")).secret())
        .await;
    assert_eq!(unlocked.ok()["locked"], false);
    assert!(unlocked.body["lockout_expires_in_seconds"].is_null());
    completed(&app.send(password(PASSWORD)).await);
    app.send(Req::post("/v1/users/user_nobody/unlock").secret())
        .await
        .assert_error(404, "resource_not_found");
}

async fn a_reset_code_sets_a_new_password_and_the_old_one_stops_working(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let user = user_with_password(&app, "ida@example.com").await;
    // A session elsewhere, which the reset signs out.
    let (_, elsewhere) = app.native_sign_in("", &user).await;
    let (token, id, _) = identified(&app, "ida@example.com").await;
    let code = send_code(
        &app,
        &token,
        &id,
        "reset_password_email_code",
        "ida@example.com",
    )
    .await;
    // Not before the code.
    app.send(step(&token, &id, "reset_password", "password=x"))
        .await
        .assert_error(400, "status_invalid");
    let verified = app
        .send(step(
            &token,
            &id,
            "attempt_first_factor",
            &format!("strategy=reset_password_email_code&code={code}"),
        ))
        .await;
    assert_eq!(verified.ok()["response"]["status"], "needs_new_password");
    // The rules hold for the new password.
    app.send(step(&token, &id, "reset_password", "password=password"))
        .await
        .assert_param_error(422, "form_password_pwned", "password");
    let new = "a-brand-new-secret-77";
    let done = app
        .send(step(
            &token,
            &id,
            "reset_password",
            &format!("password={new}&sign_out_of_other_sessions=true"),
        ))
        .await;
    let sid = completed(&done);
    let old = app.store.get_session(&elsewhere).await.unwrap().unwrap();
    assert_eq!(old.status.as_str(), "revoked");
    let kept = app.store.get_session(&sid).await.unwrap().unwrap();
    assert_eq!(kept.status.as_str(), "active");

    let verify = |p: &str| {
        Req::post(format!("/v1/users/{user}/verify_password"))
            .secret()
            .json(&json!({ "password": p }))
    };
    app.send(verify(PASSWORD))
        .await
        .assert_param_error(422, "form_password_incorrect", "password");
    assert_eq!(app.send(verify(new)).await.ok()["verified"], true);
}

async fn a_sign_in_belongs_to_its_client(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    user_with_password(&app, "mae@example.com").await;
    let (_, id, _) = identified(&app, "mae@example.com").await;
    // Another client (a new one) asks for it.
    let other = app.send(sign_in("", "")).await;
    let other_token = token_of(&other);
    assert_eq!(other.ok()["response"]["status"], "needs_identifier");
    app.send(Req::get(format!("/v1/client/sign_ins/{id}")).native(&other_token))
        .await
        .assert_error(404, "resource_not_found");
    app.send(step(
        &other_token,
        &id,
        "attempt_first_factor",
        &format!("strategy=password&password={PASSWORD}"),
    ))
    .await
    .assert_error(404, "resource_not_found");
    // No client at all.
    app.send(Req::get(format!("/v1/client/sign_ins/{id}")).native(""))
        .await
        .assert_error(401, "signed_out");
}

async fn racing_attempts_with_one_code_make_one_session(store: Arc<dyn Store>) {
    let app = Arc::new(TestApp::on(store).await);
    let user = user_with_password(&app, "joy@example.com").await;
    let (token, id, _) = identified(&app, "joy@example.com").await;
    let code = send_code(&app, &token, &id, "email_code", "joy@example.com").await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (app, token, id, code) = (app.clone(), token.clone(), id.clone(), code.clone());
            tokio::spawn(async move {
                app.send(step(
                    &token,
                    &id,
                    "attempt_first_factor",
                    &format!("strategy=email_code&code={code}"),
                ))
                .await
            })
        })
        .collect();
    let mut signed_in = 0;
    for task in tasks {
        let resp = task.await.unwrap();
        match resp.status {
            200 => signed_in += 1,
            // The winner's sign-in rotated the client's token: 401 for those who come after.
            401 | 404 | 409 | 422 => {}
            other => panic!("{other}: {}", resp.body),
        }
    }
    assert_eq!(signed_in, 1);
    let sessions = app
        .store
        .list_sessions(&shared::store::SessionFilter {
            user_id: Some(user),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
}

async fn an_email_address_belongs_to_one_user(store: Arc<dyn Store>) {
    let app = Arc::new(TestApp::on(store).await);
    user_with_password(&app, "uma@example.com").await;
    let create = |email: &str| {
        Req::post("/v1/users")
            .secret()
            .json(&json!({ "email_address": [email] }))
    };
    app.send(create("UMA@example.com"))
        .await
        .assert_param_error(422, "form_identifier_exists", "email_address");
    // Racing creates with one new address: one user.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.send(create("vic@example.com")).await })
        })
        .collect();
    let mut made = Vec::new();
    for task in tasks {
        let resp = task.await.unwrap();
        match resp.status {
            200 => made.push(resp.body["id"].as_str().unwrap().to_string()),
            _ => resp.assert_param_error(422, "form_identifier_exists", "email_address"),
        }
    }
    assert_eq!(made.len(), 1);
    // An address given up is free again: the user moves to another, someone takes it.
    let patched = app
        .send(
            Req::new("PATCH", format!("/v1/users/{}", made[0]))
                .secret()
                .json(&json!({ "username": "victor" })),
        )
        .await;
    patched.ok();
    app.send(create("x@example.com")).await.ok();
    let deleted = app
        .send(Req::delete(format!("/v1/users/{}", made[0])).secret())
        .await;
    deleted.ok();
    app.send(create("vic@example.com")).await.ok();
    // The username the deleted user had is free too.
    app.create_user_from(&json!({ "username": "victor" })).await;
}

async fn imported_digests_sign_in_and_a_bcrypt_one_becomes_argon2id(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    // An argon2id digest as another system would export it: this service's own, read back.
    let donor = app.create_user_from(&json!({ "password": PASSWORD })).await;
    let kept = app.store.get_user(&donor).await.unwrap().unwrap().password;
    let argon2id = serde_json::to_value(kept).unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    // PBKDF2-SHA256 of "migrated-passphrase-42" (1000 iterations, salt "importedsalt",
    // Python's hashlib); bcrypt of "U*U" (a published test vector).
    let pbkdf2 = "pbkdf2_sha256$1000$aW1wb3J0ZWRzYWx0$4z2S90ScIgyoGpmrl+IycF5yJGPypJBHQckLGnJayW0=";
    let bcrypt = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    for (n, (hasher, digest, password)) in [
        ("bcrypt", bcrypt, "U*U"),
        ("argon2id", argon2id.as_str(), PASSWORD),
        ("pbkdf2_sha256", pbkdf2, "migrated-passphrase-42"),
    ]
    .into_iter()
    .enumerate()
    {
        let email = format!("imported{n}@example.com");
        let user = app
            .create_user_from(&json!({
                "email_address": [email], "password_digest": digest, "password_hasher": hasher,
            }))
            .await;
        let password: String = form_urlencoded::byte_serialize(password.as_bytes()).collect();
        let resp = app
            .send(sign_in(
                "",
                &format!("identifier={email}&password={password}"),
            ))
            .await;
        completed(&resp);
        // Kept as argon2id at this service's parameters from now on (a bcrypt or PBKDF2
        // digest is replaced; an argon2id one at these parameters is kept as it is).
        let stored = app.store.get_user(&user).await.unwrap().unwrap();
        assert_eq!(
            stored.password.as_ref().map(|p| p.hasher),
            Some(Hasher::Argon2id),
            "{hasher}"
        );
        let again = app
            .send(sign_in(
                "",
                &format!("identifier={email}&password={password}"),
            ))
            .await;
        completed(&again);
    }
}

/// Users stored on DynamoDB before identifiers existed (no identifier items) sign in by
/// email address once `local-api index-identifiers` (`DynamoDbStore::index_identifiers`)
/// has run; of two sharing an address the older keeps it; a second run writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_users_from_before_identifiers_are_indexed_once() {
    use shared::domain::password::PasswordDigest;
    use shared::domain::{NewUser, User};
    use shared::store::Write;
    let Some(store) = testkit::stores::dynamodb().await else {
        return;
    };
    let with = |email: &str, at: i64| {
        User::create(
            NewUser {
                email_addresses: vec![email.into()],
                password: Some(PasswordDigest::new(PASSWORD).unwrap()),
                ..NewUser::default()
            },
            at,
        )
    };
    let (older, newer) = (
        with("Old@Example.com", 1_000),
        with("old@example.com", 2_000),
    );
    // Written as before: the users alone.
    store
        .commit(vec![Write::user(newer.clone()), Write::user(older.clone())])
        .await
        .unwrap();
    let app = TestApp::on(store.clone()).await;
    app.send(sign_in(
        "",
        &format!("identifier=old@example.com&password={PASSWORD}"),
    ))
    .await
    .assert_param_error(422, "form_identifier_not_found", "identifier");

    assert_eq!(store.index_identifiers().await.unwrap(), (1, 1));
    assert_eq!(store.index_identifiers().await.unwrap(), (0, 1));
    let resp = app
        .send(sign_in(
            "",
            &format!("identifier=old@example.com&password={PASSWORD}"),
        ))
        .await;
    let sid = completed(&resp);
    let session = app.store.get_session(&sid).await.unwrap().unwrap();
    assert_eq!(session.user_id, older.id);
}
