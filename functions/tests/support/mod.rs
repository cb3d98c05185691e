//! The fixtures in `events/`, the data they are played against, and how an answer is
//! compared with its `.expected.json`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};
use shared::clock::SystemClock;
use shared::config::Config;
use shared::state::AppState;
use shared::store::EmbeddedStore;

pub const SECRET_KEY: &str = "sk_fixture_secret_key_0123456789abcdef";
pub const FAPI_URL: &str = "https://clerk.example.com";

pub fn config(data_file: &Path) -> Config {
    let path = data_file.to_string_lossy().to_string();
    Config::from_lookup(|k| match k {
        "FRONTEND_API_URL" => Some(FAPI_URL.into()),
        "BACKEND_API_SECRET_KEY" => Some(SECRET_KEY.into()),
        "EMBEDDED_STORE_PATH" => Some(path.clone()),
        // The fixtures play every route, the dev browser's included.
        "INSTANCE_TYPE" => Some("development".into()),
        _ => None,
    })
    .expect("fixture config")
}

/// The environment a function process gets, the same settings as [`config`].
pub fn env(data_file: &Path) -> Vec<(String, String)> {
    vec![
        ("FRONTEND_API_URL".into(), FAPI_URL.into()),
        ("BACKEND_API_SECRET_KEY".into(), SECRET_KEY.into()),
        ("STORE_BACKEND".into(), "embedded".into()),
        ("INSTANCE_TYPE".into(), "development".into()),
        (
            "EMBEDDED_STORE_PATH".into(),
            data_file.to_string_lossy().to_string(),
        ),
        ("RUST_LOG".into(), "warn".into()),
    ]
}

pub async fn state(data_file: &Path) -> AppState {
    let store = Arc::new(EmbeddedStore::open(data_file).expect("data file"));
    AppState::new(config(data_file), store, Arc::new(SystemClock))
        .await
        .expect("state")
}

async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (http::HeaderMap, Value) {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let bytes = match &body {
        Value::Null => Bytes::new(),
        Value::String(form) => {
            b = b.header("content-type", "application/x-www-form-urlencoded");
            Bytes::from(form.clone())
        }
        other => {
            b = b.header("content-type", "application/json");
            Bytes::from(other.to_string())
        }
    };
    let resp = shared::routes::dispatch(state, b.body(bytes).expect("request"), None).await;
    assert!(
        resp.status().is_success(),
        "seeding {method} {uri}: {}",
        resp.body()
    );
    let headers = resp.headers().clone();
    (headers, serde_json::from_str(resp.body()).expect("JSON"))
}

async fn ticket(state: &AppState, user_id: &str) -> String {
    let sk = format!("Bearer {SECRET_KEY}");
    let (_, t) = call(
        state,
        "POST",
        "/v1/sign_in_tokens",
        &[("authorization", sk.as_str())],
        json!({"user_id": user_id}),
    )
    .await;
    t["token"].as_str().expect("ticket").to_string()
}

/// The data every fixture is played against, in a data file, and the values its
/// placeholders stand for: a user with two sessions on one native client (one active and
/// last active, one ended), an unused ticket, and the JWT template `hasura`.
pub struct Seed {
    pub data_file: PathBuf,
    pub values: BTreeMap<&'static str, String>,
}

pub async fn seed(dir: &Path) -> Seed {
    std::fs::create_dir_all(dir).expect("dir");
    let data_file = dir.join("seed.json");
    let _ = std::fs::remove_file(&data_file);
    let state = state(&data_file).await;
    let sk = format!("Bearer {SECRET_KEY}");
    let auth = [("authorization", sk.as_str())];

    let (_, user) = call(&state, "POST", "/v1/users", &auth, json!({"first_name": "Ada", "email_address": ["ada@example.com"], "private_metadata": {"tier": "gold"}})).await;
    let user_id = user["id"].as_str().expect("user id").to_string();
    let first = ticket(&state, &user_id).await;
    let (h, signed) = call(
        &state,
        "POST",
        "/v1/client/sign_ins?_is_native=1",
        &[],
        json!(format!("strategy=ticket&ticket={first}")),
    )
    .await;
    let session_id = signed["response"]["created_session_id"]
        .as_str()
        .expect("sid")
        .to_string();
    let token = h["authorization"].to_str().expect("token").to_string();
    let second = ticket(&state, &user_id).await;
    let (h, signed) = call(
        &state,
        "POST",
        "/v1/client/sign_ins?_is_native=1",
        &[("authorization", token.as_str())],
        json!(format!("strategy=ticket&ticket={second}")),
    )
    .await;
    let ended = signed["response"]["created_session_id"]
        .as_str()
        .expect("sid")
        .to_string();
    let token = h["authorization"].to_str().expect("token").to_string();
    let native = [("authorization", token.as_str())];
    call(
        &state,
        "POST",
        &format!("/v1/client/sessions/{ended}/end?_is_native=1"),
        &native,
        Value::Null,
    )
    .await;
    call(
        &state,
        "POST",
        &format!("/v1/client/sessions/{session_id}/touch?_is_native=1"),
        &native,
        json!("intent=select_session"),
    )
    .await;
    let (_, template) = call(&state, "POST", "/v1/jwt_templates", &auth, json!({"name": "hasura", "claims": {"https://hasura.io/jwt/claims": {"x-hasura-user-id": "{{user.id}}"}}})).await;
    let unused = ticket(&state, &user_id).await;

    let values = BTreeMap::from([
        ("SECRET_KEY", SECRET_KEY.to_string()),
        ("USER_ID", user_id.clone()),
        ("CLIENT_TOKEN", token.clone()),
        ("SESSION_ID", session_id),
        ("ENDED_SESSION_ID", ended),
        ("TICKET", unused),
        (
            "TEMPLATE_ID",
            template["id"].as_str().expect("template id").to_string(),
        ),
    ]);
    Seed { data_file, values }
}

impl Seed {
    pub fn fill(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (name, value) in &self.values {
            out = out.replace(&format!("${{{name}}}"), value);
        }
        out
    }

    /// A fresh copy of the seeded data file, so each fixture starts from the same data.
    pub fn copy_to(&self, path: &Path) -> PathBuf {
        std::fs::copy(&self.data_file, path).expect("copy the data file");
        path.to_path_buf()
    }
}

/// Every fixture: (function, case, event file, expected file).
pub fn fixtures() -> Vec<(String, String, PathBuf, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).expect("events/").flatten() {
        if !dir.path().is_dir() {
            continue;
        }
        let function = dir.file_name().to_string_lossy().to_string();
        for file in std::fs::read_dir(dir.path())
            .expect("function folder")
            .flatten()
        {
            let name = file.file_name().to_string_lossy().to_string();
            if let Some(case) = name
                .strip_suffix(".json")
                .filter(|c| !c.ends_with(".expected"))
            {
                let expected = dir.path().join(format!("{case}.expected.json"));
                out.push((function.clone(), case.to_string(), file.path(), expected));
            }
        }
    }
    out.sort();
    out
}

/// Whether `actual` has everything `expected` names: objects by key (extra keys allowed),
/// arrays element by element, `"*"` for any non-null value.
pub fn check(expected: &Value, actual: &Value, at: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::String(s), a) if s == "*" => {
            if a.is_null() {
                Err(format!("{at}: expected a value, got null"))
            } else {
                Ok(())
            }
        }
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                check(v, a.get(k).unwrap_or(&Value::Null), &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                check(ev, av, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{at}: expected {e}, got {a}")),
    }
}

/// Compares an answer with a fixture's expected file.
pub fn compare(seed: &Seed, expected_file: &Path, status: u16, body: &Value) -> Result<(), String> {
    let text = std::fs::read_to_string(expected_file)
        .map_err(|e| format!("{}: {e}", expected_file.display()))?;
    let expected: Value = serde_json::from_str(&seed.fill(&text)).map_err(|e| e.to_string())?;
    if expected["status"] != json!(status) {
        return Err(format!(
            "status: expected {}, got {status}; body {body}",
            expected["status"]
        ));
    }
    check(&expected["body"], body, "body")
}
