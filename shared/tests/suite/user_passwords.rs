//! Users' passwords through the Backend API, on every store: a password given on create or
//! update is checked against the rules, kept as an argon2id digest and verified by
//! `POST /v1/users/{id}/verify_password`; imported digests verify with their own
//! algorithm; what is refused writes nothing; a password or digest is never shown.

use std::sync::Arc;

use serde_json::{json, Value};
use shared::domain::password::Hasher;
use shared::store::Store;
use testkit::app::*;

testkit::each_store!(
    a_password_set_on_create_verifies_and_is_never_shown,
    passwords_the_rules_refuse_write_nothing,
    imported_digests_verify_with_their_own_algorithm,
    digests_in_the_wrong_form_are_refused,
    an_update_sets_a_password_and_may_sign_out_every_session,
    verifying_answers_clerks_errors,
    racing_password_updates_leave_one_of_the_answered_passwords,
);

const PASSWORD: &str = "correct horse battery staple";

fn verify(user: &str, password: &str) -> Req {
    Req::post(format!("/v1/users/{user}/verify_password"))
        .secret()
        .json(&json!({ "password": password }))
}

/// Nothing of a digest or a password in an answer.
#[track_caller]
fn shows_no_secret(body: &Value, password: &str) {
    let text = body.to_string();
    for secret in [password, "argon2", "$2", "pbkdf2", "digest"] {
        assert!(!text.contains(secret), "{secret:?} in {text}");
    }
}

async fn a_password_set_on_create_verifies_and_is_never_shown(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let resp = app
        .send(Req::post("/v1/users").secret().json(&json!({
            "email_address": ["grace@example.com"], "password": PASSWORD,
        })))
        .await;
    let body = resp.ok().clone();
    assert_eq!(body["password_enabled"], true);
    assert!(body["password_last_updated_at"].is_i64(), "{body}");
    shows_no_secret(&body, PASSWORD);
    let user = body["id"].as_str().unwrap();
    let read = app
        .send(Req::get(format!("/v1/users/{user}")).secret())
        .await;
    assert_eq!(read.ok()["password_enabled"], true);
    shows_no_secret(&read.body, PASSWORD);

    // Kept as an argon2id digest.
    let stored = app.store.get_user(user).await.unwrap().unwrap();
    assert_eq!(
        stored.password.as_ref().map(|p| p.hasher),
        Some(Hasher::Argon2id)
    );

    let right = app.send(verify(user, PASSWORD)).await;
    assert_eq!(right.ok(), &json!({ "verified": true }));
    app.send(verify(user, "correct horse battery stapler"))
        .await
        .assert_param_error(422, "form_password_incorrect", "password");

    // A user created without one has none.
    let plain = app.create_user().await;
    let read = app
        .send(Req::get(format!("/v1/users/{plain}")).secret())
        .await;
    assert_eq!(read.ok()["password_enabled"], false);
    assert!(read.body["password_last_updated_at"].is_null());
}

async fn passwords_the_rules_refuse_write_nothing(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let user = app.create_user().await;
    let before = app.store.get_user(&user).await.unwrap().unwrap();
    for (password, code) in [
        ("short", "form_password_length_too_short"),
        ("", "form_password_length_too_short"),
        ("password", "form_password_pwned"),
        ("Password", "form_password_pwned"),
        (&"x".repeat(73) as &str, "form_password_length_too_long"),
    ] {
        let created = app
            .send(
                Req::post("/v1/users")
                    .secret()
                    .json(&json!({ "password": password })),
            )
            .await;
        created.assert_param_error(422, code, "password");
        if password.len() > 8 {
            shows_no_secret(&created.body, password);
        }
        let updated = app
            .send(
                Req::new("PATCH", format!("/v1/users/{user}"))
                    .secret()
                    .json(&json!({ "password": password, "first_name": "Changed" })),
            )
            .await;
        updated.assert_param_error(422, code, "password");
    }
    // The largest password a caller can send (a body at its 64 KB limit): refused by its
    // length, hashed never.
    let huge = "p".repeat(65_000);
    app.send(
        Req::post("/v1/users")
            .secret()
            .json(&json!({ "password": huge })),
    )
    .await
    .assert_param_error(422, "form_password_length_too_long", "password");
    assert_eq!(app.store.get_user(&user).await.unwrap().unwrap(), before);

    // `skip_password_checks`, for a migration: the rules but the maximum are skipped.
    let migrated = app
        .create_user_from(&json!({ "password": "abc", "skip_password_checks": true }))
        .await;
    app.send(verify(&migrated, "abc")).await.ok();
    app.send(
        Req::post("/v1/users")
            .secret()
            .json(&json!({ "password": "y".repeat(73), "skip_password_checks": true })),
    )
    .await
    .assert_param_error(422, "form_password_length_too_long", "password");
}

async fn imported_digests_verify_with_their_own_algorithm(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    // PBKDF2-SHA256 of "migrated-passphrase-42", 1000 iterations, salt "importedsalt"
    // (Python's hashlib), in both encodings; bcrypt of "U*U" (a published test vector).
    let hash = "4z2S90ScIgyoGpmrl+IycF5yJGPypJBHQckLGnJayW0=";
    for (hasher, digest, password) in [
        (
            "pbkdf2_sha256",
            format!("pbkdf2_sha256$1000$aW1wb3J0ZWRzYWx0${hash}"),
            "migrated-passphrase-42",
        ),
        (
            "pbkdf2_sha256_django",
            format!("pbkdf2_sha256$1000$importedsalt${hash}"),
            "migrated-passphrase-42",
        ),
        (
            "bcrypt",
            "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW".to_string(),
            "U*U",
        ),
    ] {
        let resp = app
            .send(Req::post("/v1/users").secret().json(&json!({
                "password_digest": digest, "password_hasher": hasher,
            })))
            .await;
        assert_eq!(resp.ok()["password_enabled"], true, "{hasher}");
        shows_no_secret(&resp.body, password);
        let user = resp.body["id"].as_str().unwrap();
        app.send(verify(user, password)).await.ok();
        app.send(verify(user, "migrated-passphrase-43"))
            .await
            .assert_error(422, "form_password_incorrect");
        // Kept as it came (the sign-in replaces it with argon2id on the next success).
        let stored = app.store.get_user(user).await.unwrap().unwrap();
        assert_eq!(
            stored.password.map(|p| p.hasher),
            Hasher::parse(hasher),
            "{hasher}"
        );
    }
}

async fn digests_in_the_wrong_form_are_refused(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let bcrypt = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    for (body, status, code, param) in [
        (
            json!({ "password_digest": "not a digest", "password_hasher": "bcrypt" }),
            422,
            "form_param_format_invalid",
            "password_digest",
        ),
        (
            json!({ "password_digest": bcrypt, "password_hasher": "argon2id" }),
            422,
            "form_param_format_invalid",
            "password_digest",
        ),
        (
            // bcrypt at cost 15: more work per sign-in than this service allows.
            json!({ "password_digest": bcrypt.replace("$05$", "$15$"), "password_hasher": "bcrypt" }),
            422,
            "form_param_value_invalid",
            "password_digest",
        ),
        (
            json!({ "password_digest": bcrypt }),
            422,
            "form_param_missing",
            "password_hasher",
        ),
        (
            json!({ "password_hasher": "bcrypt" }),
            422,
            "form_param_missing",
            "password_digest",
        ),
        (
            json!({ "password_digest": bcrypt, "password_hasher": "md5" }),
            422,
            "form_param_value_invalid",
            "password_hasher",
        ),
        (
            json!({ "password": PASSWORD, "password_digest": bcrypt, "password_hasher": "bcrypt" }),
            422,
            "form_param_value_invalid",
            "password",
        ),
        (
            json!({ "password_digest": "$2a$".repeat(16_000), "password_hasher": "bcrypt" }),
            422,
            "form_param_format_invalid",
            "password_digest",
        ),
    ] {
        app.send(Req::post("/v1/users").secret().json(&body))
            .await
            .assert_param_error(status, code, param);
    }
}

async fn an_update_sets_a_password_and_may_sign_out_every_session(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let user = app.create_user().await;
    let (token, sid) = app.native_sign_in("", &user).await;
    let patch = |body: Value| {
        Req::new("PATCH", format!("/v1/users/{user}"))
            .secret()
            .json(&body)
    };
    // Only with a new password.
    app.send(patch(json!({ "sign_out_of_other_sessions": true })))
        .await
        .assert_param_error(
            422,
            "form_param_value_invalid",
            "sign_out_of_other_sessions",
        );

    let set = app.send(patch(json!({ "password": PASSWORD }))).await;
    assert_eq!(set.ok()["password_enabled"], true);
    app.send(verify(&user, PASSWORD)).await.ok();
    assert_eq!(app.bapi_session(&sid).await["status"], "active");

    let changed = app
        .send(patch(
            json!({ "password": "a different passphrase", "sign_out_of_other_sessions": true }),
        ))
        .await;
    changed.ok();
    app.send(verify(&user, PASSWORD))
        .await
        .assert_error(422, "form_password_incorrect");
    app.send(verify(&user, "a different passphrase")).await.ok();
    assert_eq!(app.bapi_session(&sid).await["status"], "revoked");
    app.send(Req::post(session_path(&sid, "tokens")).native(&token))
        .await
        .assert_error(401, "signed_out");

    // An update that leaves the password alone keeps it.
    app.send(patch(json!({ "first_name": "Grace" }))).await.ok();
    app.send(verify(&user, "a different passphrase")).await.ok();
}

async fn verifying_answers_clerks_errors(store: Arc<dyn Store>) {
    let app = TestApp::on(store).await;
    let without = app.create_user().await;
    app.send(verify(&without, PASSWORD))
        .await
        .assert_error(400, "password_not_set");
    app.send(verify("user_unknown", PASSWORD))
        .await
        .assert_error(404, "resource_not_found");
    let with = app.create_user_from(&json!({ "password": PASSWORD })).await;
    app.send(
        Req::post(format!("/v1/users/{with}/verify_password"))
            .secret()
            .json(&json!({})),
    )
    .await
    .assert_param_error(422, "form_param_missing", "password");
    // The largest password a caller can send is no match, and is refused unhashed.
    app.send(verify(&with, &"q".repeat(65_000)))
        .await
        .assert_error(422, "form_password_incorrect");
    // The secret key comes first: without it, nothing is read.
    app.send(
        Req::post(format!("/v1/users/{with}/verify_password"))
            .json(&json!({ "password": PASSWORD })),
    )
    .await
    .assert_error(401, "authentication_invalid");
}

async fn racing_password_updates_leave_one_of_the_answered_passwords(store: Arc<dyn Store>) {
    let app = Arc::new(TestApp::on(store).await);
    let user = app.create_user().await;
    let mut racing = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (app, user) = (Arc::clone(&app), user.clone());
        racing.spawn(async move {
            let password = format!("racing passphrase number {i}");
            let resp = app
                .send(
                    Req::new("PATCH", format!("/v1/users/{user}"))
                        .secret()
                        .json(&json!({ "password": password })),
                )
                .await;
            resp.assert_no_server_error();
            (resp.status, password)
        });
    }
    let mut answered = Vec::new();
    while let Some(done) = racing.join_next().await {
        let (status, password) = done.unwrap();
        assert!(status == 200 || status == 409, "{status}");
        if status == 200 {
            answered.push(password);
        }
    }
    assert!(!answered.is_empty());
    let mut matching = 0;
    for password in &answered {
        if app.send(verify(&user, password)).await.status == 200 {
            matching += 1;
        }
    }
    assert_eq!(matching, 1, "exactly one of {answered:?} is the password");
}
