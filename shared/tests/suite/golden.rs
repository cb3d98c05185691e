//! Golden answers: every endpoint's whole JSON (status and body, in the success case and
//! its usual error), recorded once and compared on every run, so that a change to how
//! answers are rendered cannot change what is on the wire. Only what is random per run is
//! normalised: ids become `<prefix>_#n` (numbered by first appearance), a JWT becomes its
//! decoded header and claims, and key material and secrets become placeholders. The clock is the
//! harness's fixed one, so every timestamp is exact.
//!
//! After an intended change of the wire format, rewrite the files with
//! `UPDATE_GOLDEN=1 cargo test -p shared --test suite golden` and review the diff.

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine;
use serde_json::{json, Map, Value};

use testkit::app::*;

/// Turns what differs between runs into stable placeholders.
#[derive(Default)]
struct Normaliser {
    ids: HashMap<String, String>,
    per_prefix: HashMap<String, usize>,
}

impl Normaliser {
    fn id(&mut self, s: &str) -> Option<String> {
        let (prefix, rest) = s.split_once('_')?;
        let is_id = !prefix.is_empty()
            && prefix.bytes().all(|b| b.is_ascii_lowercase())
            && rest.len() == 26
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
        if !is_id {
            return None;
        }
        if let Some(known) = self.ids.get(s) {
            return Some(known.clone());
        }
        let n = self.per_prefix.entry(prefix.to_string()).or_default();
        *n += 1;
        let placeholder = format!("{prefix}_#{n}");
        self.ids.insert(s.to_string(), placeholder.clone());
        Some(placeholder)
    }

    /// `s` with every id in it (alone, or inside a message) replaced.
    fn ids_within(&mut self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut word = String::new();
        for c in s.chars().chain(std::iter::once(' ')) {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                word.push(c);
                continue;
            }
            match self.id(&word) {
                Some(id) => out.push_str(&id),
                None => out.push_str(&word),
            }
            word.clear();
            out.push(c);
        }
        out.pop();
        out
    }

    fn jwt(&mut self, s: &str) -> Option<Value> {
        let mut parts = s.split('.');
        let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !header.starts_with("eyJ") || signature.is_empty() {
            return None;
        }
        let decode = |part: &str| -> Option<Value> {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .ok()?;
            serde_json::from_slice(&bytes).ok()
        };
        let (header, claims) = (decode(header)?, decode(claims)?);
        Some(json!({"jwt_header": self.value(&header), "jwt_claims": self.value(&claims)}))
    }

    fn value(&mut self, v: &Value) -> Value {
        match v {
            Value::String(s) => {
                if let Some(decoded) = self.jwt(s) {
                    decoded
                } else {
                    Value::String(self.ids_within(s))
                }
            }
            Value::Array(items) => Value::Array(items.iter().map(|i| self.value(i)).collect()),
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    let v = match k.as_str() {
                        // RSA moduli and PEM documents of freshly generated keys.
                        "n" | "public_key" | "public_key_pem" if v.is_string() => {
                            Value::String("<key material>".into())
                        }
                        // Random secrets: a ticket, a client token's rotating part, a
                        // webhook endpoint's signing secret.
                        "token" | "rotating_token" | "secret"
                            if v.as_str().is_some_and(|s| self.jwt(s).is_none()) =>
                        {
                            Value::String("<secret>".into())
                        }
                        _ => self.value(v),
                    };
                    out.insert(k.clone(), v);
                }
                Value::Object(out)
            }
            other => other.clone(),
        }
    }
}

struct Recorder {
    app: TestApp,
    normaliser: Normaliser,
    answers: Vec<(String, Value)>,
    /// (method, path) of every recorded request.
    requested: Vec<(String, String)>,
}

impl Recorder {
    async fn record(&mut self, name: &str, req: Req) -> TestResponse {
        let (method, uri) = (req.method(), req.uri().to_string());
        let path = uri.split('?').next().unwrap_or(&uri);
        // A tunnelled DELETE or PATCH is its route's.
        let method = match uri.split_once("_method=") {
            Some((_, m)) => m.split('&').next().unwrap_or(m).to_uppercase(),
            None => method.to_string(),
        };
        self.requested.push((method, path.to_string()));
        let resp = self.app.send(req).await;
        self.keep(name, resp)
    }

    fn keep(&mut self, name: &str, resp: TestResponse) -> TestResponse {
        let body = self.normaliser.value(&resp.body);
        self.answers.push((
            name.to_string(),
            json!({"status": resp.status, "body": body}),
        ));
        resp
    }
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[tokio::test]
async fn every_endpoint_answers_its_golden_json() {
    let app = TestApp::new().await;
    let mut r = Recorder {
        app,
        normaliser: Normaliser::default(),
        answers: Vec::new(),
        requested: Vec::new(),
    };
    let origin = APP_ORIGIN;

    // Public documents.
    r.record("fapi_environment", Req::get("/v1/environment"))
        .await;
    r.record("fapi_jwks", Req::get("/.well-known/jwks.json"))
        .await;
    r.record(
        "fapi_update_environment",
        Req::new("PATCH", "/v1/environment"),
    )
    .await;

    // A development instance: the dev-browser token, and a client found through it.
    let dev_app = TestApp::development().await;
    let dev = dev_app.send(Req::post("/v1/dev_browser")).await;
    let dev = r.keep("fapi_dev_browser", dev);
    let dev_token = dev.body["token"].as_str().unwrap_or_default().to_string();
    let dev_client = dev_app.send(Req::get("/v1/client").dev(&dev_token)).await;
    r.keep("fapi_dev_get_client", dev_client);
    let dev_environment = dev_app.send(Req::get("/v1/environment")).await;
    r.keep("fapi_dev_environment", dev_environment);
    r.record(
        "fapi_dev_browser_on_production",
        Req::post("/v1/dev_browser"),
    )
    .await;

    // Backend API: a user, a template, tickets.
    let user = r
        .record(
            "bapi_create_user",
            Req::post("/v1/users").secret().json(&json!({
                "first_name": "Ada", "last_name": "Lovelace", "username": "ada_l",
                "email_address": ["ada@example.com"], "phone_number": ["+15555550100"],
                "public_metadata": {"plan": "pro"}, "private_metadata": {"secret": 1},
                "unsafe_metadata": {"theme": "dark"}, "external_id": "ext-1",
            })),
        )
        .await;
    let user_id = user.body["id"].as_str().unwrap_or_default().to_string();
    r.record(
        "bapi_create_user_error",
        Req::post("/v1/users")
            .secret()
            .json(&json!({"email_address": ["not an email"]})),
    )
    .await;
    r.record(
        "bapi_get_user",
        Req::get(format!("/v1/users/{user_id}")).secret(),
    )
    .await;
    r.record(
        "bapi_update_user",
        Req::new("PATCH", format!("/v1/users/{user_id}"))
            .secret()
            .json(&json!({"first_name": "Augusta"})),
    )
    .await;
    // A password: verified, and refused.
    let with_password = r
        .app
        .create_user_from(&json!({"password": "correct horse battery staple"}))
        .await;
    r.record(
        "bapi_verify_password",
        Req::post(format!("/v1/users/{with_password}/verify_password"))
            .secret()
            .json(&json!({"password": "correct horse battery staple"})),
    )
    .await;
    r.record(
        "bapi_verify_password_incorrect",
        Req::post(format!("/v1/users/{with_password}/verify_password"))
            .secret()
            .json(&json!({"password": "correct horse battery stapler"})),
    )
    .await;
    r.record(
        "bapi_get_user_unknown",
        Req::get("/v1/users/user_missing").secret(),
    )
    .await;
    let template = r
        .record(
            "bapi_create_jwt_template",
            Req::post("/v1/jwt_templates").secret().json(&json!({
                "name": "hasura", "lifetime": 120, "allowed_clock_skew": 5,
                "claims": {"role": "{{user.public_metadata.plan}}", "email": "{{user.primary_email_address}}"},
            })),
        )
        .await;
    let template_id = template.body["id"].as_str().unwrap_or_default().to_string();
    r.record(
        "bapi_list_jwt_templates",
        Req::get("/v1/jwt_templates").secret(),
    )
    .await;
    r.record(
        "bapi_get_jwt_template",
        Req::get(format!("/v1/jwt_templates/{template_id}")).secret(),
    )
    .await;
    r.record(
        "bapi_update_jwt_template",
        Req::new("PATCH", format!("/v1/jwt_templates/{template_id}"))
            .secret()
            .json(&json!({"name": "hasura", "lifetime": 90, "claims": {"role": "admin"}})),
    )
    .await;
    let ticket = r
        .record(
            "bapi_create_sign_in_token",
            Req::post("/v1/sign_in_tokens")
                .secret()
                .json(&json!({"user_id": user_id})),
        )
        .await;
    let ticket = ticket.body["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    r.record(
        "bapi_create_sign_in_token_unknown_user",
        Req::post("/v1/sign_in_tokens")
            .secret()
            .json(&json!({"user_id": "user_missing"})),
    )
    .await;
    r.record("bapi_jwks", Req::get("/v1/jwks").secret()).await;
    r.record("bapi_instance_keys", Req::get("/v1/instance/keys").secret())
        .await;
    r.record("bapi_without_secret", Req::get("/v1/jwks")).await;

    // A browser client: created, signed in with the ticket, a second session.
    let client = r
        .record("fapi_create_client", Req::post("/v1/client").origin(origin))
        .await;
    let cookie = client.cookie("__client").unwrap_or_default();
    r.record(
        "fapi_get_client_signed_out",
        Req::get("/v1/client").cookie(&cookie).origin(origin),
    )
    .await;
    let signed = r
        .record(
            "fapi_sign_in",
            Req::post("/v1/client/sign_ins")
                .cookie(&cookie)
                .origin(origin)
                .form(&format!("strategy=ticket&ticket={ticket}")),
        )
        .await;
    let cookie = signed.cookie("__client").unwrap_or(cookie);
    let sid = signed.body["response"]["created_session_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    r.record(
        "fapi_sign_in_used_ticket",
        Req::post("/v1/client/sign_ins")
            .cookie(&cookie)
            .origin(origin)
            .form(&format!("strategy=ticket&ticket={ticket}")),
    )
    .await;
    r.app.clock.advance_secs(1);
    // The same user again on the same client: refused, naming the session it has.
    let again_ticket = r.app.ticket(&user_id).await;
    r.record(
        "fapi_sign_in_already_signed_in",
        Req::post("/v1/client/sign_ins")
            .cookie(&cookie)
            .origin(origin)
            .form(&format!("strategy=ticket&ticket={again_ticket}")),
    )
    .await;
    // A second account on the client.
    let second_user = r
        .app
        .create_user_from(&json!({"first_name": "Grace", "email_address": ["grace@example.com"]}))
        .await;
    let second_ticket = r.app.ticket(&second_user).await;
    let second = r
        .record(
            "fapi_sign_in_second_session",
            Req::post("/v1/client/sign_ins")
                .cookie(&cookie)
                .origin(origin)
                .form(&format!("strategy=ticket&ticket={second_ticket}")),
        )
        .await;
    let cookie = second.cookie("__client").unwrap_or(cookie);
    let second_sid = second.body["response"]["created_session_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    r.app.clock.advance_secs(1);

    let fapi = |path: String| Req::get(path).cookie(&cookie).origin(origin);
    let post = |path: String| Req::post(path).cookie(&cookie).origin(origin);
    r.record("fapi_get_client", fapi("/v1/client".into())).await;
    r.record("fapi_get_session", fapi(session_path(&sid, "")))
        .await;
    r.record(
        "fapi_get_session_unknown",
        fapi(session_path("sess_2b4f0000000000000000000000", "")),
    )
    .await;
    r.record(
        "fapi_get_session_no_client",
        Req::get(session_path(&sid, "")),
    )
    .await;
    r.record("fapi_touch", post(session_path(&sid, "touch")))
        .await;
    r.record(
        "fapi_touch_focus",
        post(session_path(&sid, "touch")).form("intent=focus"),
    )
    .await;
    r.record("fapi_tokens", post(session_path(&sid, "tokens")))
        .await;
    r.record(
        "fapi_template_token",
        post(session_path(&sid, "tokens/hasura")),
    )
    .await;
    r.record(
        "fapi_template_token_unknown",
        post(session_path(&sid, "tokens/missing")),
    )
    .await;
    r.record(
        "fapi_native_get_session",
        Req::get(session_path(&sid, "")).native("Bearer not-a-token"),
    )
    .await;
    r.record("fapi_my_sessions", fapi("/v1/me/sessions".into()))
        .await;
    r.record(
        "fapi_my_active_sessions",
        fapi("/v1/me/sessions/active".into()),
    )
    .await;
    r.record(
        "fapi_revoke_my_session_unknown",
        post("/v1/me/sessions/sess_2b4f0000000000000000000000/revoke".into()),
    )
    .await;
    r.record(
        "fapi_handshake_to_another_origin",
        fapi("/v1/client/handshake?redirect_url=https%3A%2F%2Felsewhere.example%2F".into()),
    )
    .await;

    // The Backend API's view of the sessions.
    r.record(
        "bapi_list_sessions",
        Req::get(format!("/v1/sessions?user_id={user_id}")).secret(),
    )
    .await;
    r.record(
        "bapi_get_session",
        Req::get(format!("/v1/sessions/{sid}")).secret(),
    )
    .await;
    r.record(
        "bapi_session_token",
        Req::post(format!("/v1/sessions/{sid}/tokens")).secret(),
    )
    .await;
    r.record(
        "bapi_template_token",
        Req::post(format!("/v1/sessions/{sid}/tokens/hasura")).secret(),
    )
    .await;
    r.record(
        "bapi_refresh_session_without_token",
        Req::post(format!("/v1/sessions/{sid}/refresh"))
            .secret()
            .json(&json!({})),
    )
    .await;
    r.record(
        "bapi_handshake_payload_unknown",
        Req::get("/v1/clients/handshake_payload?nonce=unknown").secret(),
    )
    .await;

    // Ending, removing, revoking.
    r.app.clock.advance_secs(1);
    r.record("fapi_end", post(session_path(&sid, "end"))).await;
    r.record("fapi_end_again", post(session_path(&sid, "end")))
        .await;
    r.record("fapi_tokens_ended", post(session_path(&sid, "tokens")))
        .await;
    r.record("fapi_remove", post(session_path(&sid, "remove")))
        .await;
    r.record(
        "bapi_revoke_session",
        Req::post(format!("/v1/sessions/{second_sid}/revoke")).secret(),
    )
    .await;
    r.record(
        "bapi_session_token_revoked",
        Req::post(format!("/v1/sessions/{second_sid}/tokens")).secret(),
    )
    .await;
    r.record(
        "fapi_remove_client_sessions",
        Req::delete("/v1/client/sessions")
            .cookie(&cookie)
            .origin(origin),
    )
    .await;
    r.record(
        "bapi_delete_jwt_template",
        Req::delete(format!("/v1/jwt_templates/{template_id}")).secret(),
    )
    .await;
    r.record(
        "bapi_delete_jwt_template_unknown",
        Req::delete(format!("/v1/jwt_templates/{template_id}")).secret(),
    )
    .await;

    sign_ins_and_sign_ups(&mut r).await;

    // A user's life after sign-in: banned, unbanned, deleted.
    let banned = r
        .app
        .create_user_from(&json!({"first_name": "Lin", "email_address": ["lin@example.com"]}))
        .await;
    r.record(
        "bapi_ban_user",
        Req::post(format!("/v1/users/{banned}/ban")).secret(),
    )
    .await;
    r.record(
        "bapi_unban_user",
        Req::post(format!("/v1/users/{banned}/unban")).secret(),
    )
    .await;
    r.record(
        "bapi_delete_user",
        Req::delete(format!("/v1/users/{banned}")).secret(),
    )
    .await;

    // Webhook endpoints (an extension of the Backend API).
    let endpoint = r
        .record(
            "bapi_create_webhook_endpoint",
            Req::post("/v1/webhooks/endpoints")
                .secret()
                .json(&json!({"url": "https://hooks.example.com/clerk"})),
        )
        .await;
    let endpoint_id = endpoint.body["id"].as_str().unwrap_or_default().to_string();
    r.record(
        "bapi_list_webhook_endpoints",
        Req::get("/v1/webhooks/endpoints").secret(),
    )
    .await;
    r.record(
        "bapi_rotate_webhook_secret",
        Req::post(format!(
            "/v1/webhooks/endpoints/{endpoint_id}/rotate_secret"
        ))
        .secret(),
    )
    .await;
    r.record(
        "bapi_delete_webhook_endpoint",
        Req::delete(format!("/v1/webhooks/endpoints/{endpoint_id}")).secret(),
    )
    .await;

    // Last, as it changes the keys every answer above was signed with.
    r.record(
        "bapi_rotate_instance_keys",
        Req::post("/v1/instance/keys/rotate").secret(),
    )
    .await;

    let dir = golden_dir();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for (name, answer) in &r.answers {
        let file = dir.join(format!("{name}.json"));
        let text = serde_json::to_string_pretty(answer).expect("JSON") + "\n";
        if update {
            std::fs::create_dir_all(&dir).expect("golden dir");
            std::fs::write(&file, text).expect("write golden");
            continue;
        }
        match std::fs::read_to_string(&file) {
            Ok(expected) if expected == text => {}
            Ok(expected) => failures.push(format!(
                "{name}: answer differs from {}\nexpected:\n{expected}\nactual:\n{text}\n\
                 If the change is meant, rerun with UPDATE_GOLDEN=1 and review the diff.",
                file.display()
            )),
            Err(e) => failures.push(format!(
                "{name}: no golden file {} ({e}): rerun with UPDATE_GOLDEN=1 to write it \
                 (`UPDATE_GOLDEN=1 cargo test -p shared --test suite golden`), and review it",
                file.display()
            )),
        }
    }
    // Every golden file is still produced: none is left behind by a renamed case.
    if !update {
        for entry in std::fs::read_dir(&dir).expect("golden dir") {
            let name = entry.expect("entry").file_name();
            let name = name.to_string_lossy();
            let case = name.trim_end_matches(".json");
            if !r.answers.iter().any(|(n, _)| n == case) {
                failures.push(format!("{name}: no case produces it"));
            }
        }
    }
    // Every route has a golden case.
    for (_, route) in shared::routes::routes() {
        let pattern: Vec<&str> = route.path.split('/').collect();
        let covered = r.requested.iter().any(|(method, path)| {
            let segments: Vec<&str> = path.split('/').collect();
            *method == route.method.as_str()
                && segments.len() == pattern.len()
                && pattern
                    .iter()
                    .zip(&segments)
                    .all(|(p, s)| p.starts_with('{') || p == s)
        });
        if !covered {
            let api = if route.endpoint.is_frontend() {
                "fapi"
            } else {
                "bapi"
            };
            let req = req_snippet(route.method.as_str(), route.path);
            let auth = if route.endpoint.is_frontend() {
                ".cookie(&cookie).origin(origin)"
            } else {
                ".secret()"
            };
            failures.push(format!(
                "{} {}: no golden case; add one to every_endpoint_answers_its_golden_json (a real \
                 id for each path parameter), then write its file with \
                 `UPDATE_GOLDEN=1 cargo test -p shared --test suite golden`:\n    \
                 r.record(\"{api}_{}\", {req}{auth}).await;",
                route.method,
                route.path,
                snake(route.endpoint.name())
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `GetSession` → `get_session`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Sign-in by identifier (password, email code, reset), sign-up, and the Backend API's
/// unlock, on native clients.
async fn sign_ins_and_sign_ups(r: &mut Recorder) {
    const PASSWORD: &str = "plum-tractor-vinegar-42";
    let pat = r
        .app
        .create_user_from(&json!({
            "first_name": "Pat", "email_address": ["pat@example.com"], "password": PASSWORD,
        }))
        .await;
    let new_client = || Req::post("/v1/client/sign_ins").native("");
    r.record(
        "fapi_sign_in_password",
        new_client().form(&format!("identifier=pat@example.com&password={PASSWORD}")),
    )
    .await;
    r.record(
        "fapi_sign_in_identifier_not_found",
        new_client().form("identifier=nobody@example.com"),
    )
    .await;
    let started = r
        .record(
            "fapi_sign_in_identifier",
            new_client().form("identifier=pat@example.com"),
        )
        .await;
    let token = started
        .header("authorization")
        .unwrap_or_default()
        .to_string();
    let id = started.body["response"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let step = |action: &str, body: &str| {
        Req::post(format!("/v1/client/sign_ins/{id}/{action}"))
            .native(&token)
            .form(body)
    };
    r.record(
        "fapi_get_sign_in",
        Req::get(format!("/v1/client/sign_ins/{id}")).native(&token),
    )
    .await;
    r.record(
        "fapi_prepare_first_factor",
        step("prepare_first_factor", "strategy=email_code"),
    )
    .await;
    let code = r.app.mail.code("pat@example.com").unwrap_or_default();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    r.record(
        "fapi_attempt_first_factor_incorrect",
        step(
            "attempt_first_factor",
            &format!("strategy=email_code&code={wrong}"),
        ),
    )
    .await;
    r.record(
        "fapi_reset_password_too_early",
        step("reset_password", "password=a-brand-new-secret-77"),
    )
    .await;
    r.record(
        "fapi_prepare_reset_password_code",
        step("prepare_first_factor", "strategy=reset_password_email_code"),
    )
    .await;
    let code = r.app.mail.code("pat@example.com").unwrap_or_default();
    r.record(
        "fapi_attempt_first_factor",
        step(
            "attempt_first_factor",
            &format!("strategy=reset_password_email_code&code={code}"),
        ),
    )
    .await;
    r.record(
        "fapi_reset_password",
        step("reset_password", "password=a-brand-new-secret-77"),
    )
    .await;
    r.record(
        "bapi_unlock_user",
        Req::post(format!("/v1/users/{pat}/unlock")).secret(),
    )
    .await;

    let new_client = || Req::post("/v1/client/sign_ups").native("");
    r.record(
        "fapi_sign_up_taken",
        new_client().form(&format!(
            "email_address=pat@example.com&password={PASSWORD}"
        )),
    )
    .await;
    let started = r
        .record(
            "fapi_sign_up",
            new_client().form(&format!(
                "email_address=sam@example.com&password={PASSWORD}"
            )),
        )
        .await;
    let token = started
        .header("authorization")
        .unwrap_or_default()
        .to_string();
    let id = started.body["response"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    r.record(
        "fapi_get_sign_up",
        Req::get(format!("/v1/client/sign_ups/{id}")).native(&token),
    )
    .await;
    r.record(
        "fapi_update_sign_up",
        Req::new("PATCH", format!("/v1/client/sign_ups/{id}"))
            .native(&token)
            .form("first_name=Sam&last_name=Sample"),
    )
    .await;
    r.record(
        "fapi_prepare_sign_up_verification",
        Req::post(format!("/v1/client/sign_ups/{id}/prepare_verification"))
            .native(&token)
            .form("strategy=email_code"),
    )
    .await;
    let code = r.app.mail.code("sam@example.com").unwrap_or_default();
    r.record(
        "fapi_attempt_sign_up_verification",
        Req::post(format!("/v1/client/sign_ups/{id}/attempt_verification"))
            .native(&token)
            .form(&format!("strategy=email_code&code={code}")),
    )
    .await;
}
