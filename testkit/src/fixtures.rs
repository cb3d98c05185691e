//! The fixtures in `events/` (API Gateway events, one folder per function, each beside its
//! `.expected.json`), the data they are played against, the environment a function process
//! gets, and how an answer is held to what is expected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use shared::config::Config;
use shared::store::SqliteStore;

use crate::app::{Req, TestApp, FAPI_URL, SECRET};

/// The environment of a function process on the embedded store in `data_file`, as
/// template.yaml configures one (`RUST_LOG=info`), on a development instance so that every
/// route is served, the dev browser's included.
pub fn function_env(data_file: &Path) -> Vec<(String, String)> {
    vec![
        ("FRONTEND_API_URL".into(), FAPI_URL.into()),
        ("BACKEND_API_SECRET_KEY".into(), SECRET.into()),
        ("STORE_BACKEND".into(), "embedded".into()),
        ("INSTANCE_TYPE".into(), "development".into()),
        (
            "EMBEDDED_STORE_PATH".into(),
            data_file.to_string_lossy().to_string(),
        ),
        ("RUST_LOG".into(), "info".into()),
    ]
}

/// The service in process on `data_file`, configured as [`function_env`] configures a
/// function, on the system clock (the function processes that read the file use it too).
pub async fn open(data_file: &Path) -> TestApp {
    let env: BTreeMap<String, String> = function_env(data_file).into_iter().collect();
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("fixture config");
    let store = Arc::new(SqliteStore::open(data_file).expect("data file"));
    TestApp::with_system_clock(config, store).await
}

/// The data every fixture is played against, in a data file, and the values its
/// placeholders stand for: a user with two sessions on one native client (one active and
/// last active, one ended), an unused ticket, and the JWT template `hasura`.
pub struct Seed {
    pub data_file: PathBuf,
    pub values: BTreeMap<&'static str, String>,
}

/// Seeds `dir/seed.sqlite3` (made anew).
pub async fn seed(dir: &Path) -> Seed {
    std::fs::create_dir_all(dir).expect("dir");
    let data_file = dir.join("seed.sqlite3");
    for stale in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{stale}", data_file.display()));
    }
    let app = open(&data_file).await;

    let user_id = app
        .create_user_from(&json!({"first_name": "Ada", "email_address": ["ada@example.com"], "private_metadata": {"tier": "gold"}}))
        .await;
    let (token, session_id) = app.native_sign_in("", &user_id).await;
    let (token, ended) = app.native_sign_in(&token, &user_id).await;
    app.send(Req::post(format!("/v1/client/sessions/{ended}/end")).native(&token))
        .await
        .ok();
    app.send(
        Req::post(format!("/v1/client/sessions/{session_id}/touch"))
            .native(&token)
            .form("intent=select_session"),
    )
    .await
    .ok();
    let template = app
        .send(Req::post("/v1/jwt_templates").secret().json(&json!({"name": "hasura", "claims": {"https://hasura.io/jwt/claims": {"x-hasura-user-id": "{{user.id}}"}}})))
        .await;
    let template_id = template.ok()["id"]
        .as_str()
        .expect("template id")
        .to_string();
    let unused = app.ticket(&user_id).await;

    let values = BTreeMap::from([
        ("SECRET_KEY", SECRET.to_string()),
        ("USER_ID", user_id),
        ("CLIENT_TOKEN", token),
        ("SESSION_ID", session_id),
        ("ENDED_SESSION_ID", ended),
        ("TICKET", unused),
        ("TEMPLATE_ID", template_id),
    ]);
    Seed { data_file, values }
}

impl Seed {
    /// `text` with each `${NAME}` placeholder replaced by its value.
    pub fn fill(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (name, value) in &self.values {
            out = out.replace(&format!("${{{name}}}"), value);
        }
        out
    }

    /// A fresh copy of the seeded data file, so each fixture starts from the same data.
    pub fn copy_to(&self, path: &Path) -> PathBuf {
        copy_data_file(&self.data_file, path).expect("copy the data file");
        path.to_path_buf()
    }
}

/// Copies the embedded store's database `from` to `to` (replaced), with SQLite's own
/// copy: whole even while `from` is open in WAL mode.
pub fn copy_data_file(from: &Path, to: &Path) -> Result<(), String> {
    let _ = std::fs::remove_file(to);
    let dest = to.to_str().ok_or("the copy's path is not UTF-8")?;
    rusqlite::Connection::open(from)
        .and_then(|db| db.execute("VACUUM INTO ?1", [dest]))
        .map(|_| ())
        .map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))
}

/// The keyring record stored in the embedded store's database at `path`, as JSON.
pub fn stored_keyring(path: &Path) -> Value {
    rusqlite::Connection::open(path)
        .and_then(|db| db.query_row("SELECT data FROM keyring", [], |r| r.get::<_, String>(0)))
        .ok()
        .and_then(|data| serde_json::from_str(&data).ok())
        .unwrap_or(Value::Null)
}

/// Whether the embedded store's database at `path` holds the user `id` (read as another
/// process would).
pub fn stored_user(path: &Path, id: &str) -> bool {
    rusqlite::Connection::open(path)
        .and_then(|db| {
            db.query_row("SELECT count(*) FROM users WHERE id = ?1", [id], |r| {
                r.get::<_, i64>(0)
            })
        })
        .is_ok_and(|n| n == 1)
}

/// One fixture: `events/<function>/<case>.json` and its `.expected.json`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fixture {
    pub function: String,
    pub case: String,
    pub event: PathBuf,
    pub expected: PathBuf,
}

/// Every fixture of the repository's `events/`, sorted by function and case.
pub fn all() -> Vec<Fixture> {
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
                out.push(Fixture {
                    function: function.clone(),
                    case: case.to_string(),
                    event: file.path(),
                    expected: dir.path().join(format!("{case}.expected.json")),
                });
            }
        }
    }
    out.sort();
    out
}

/// Whether `actual` has everything `expected` names: objects by key (extra keys allowed),
/// arrays element by element, `"*"` for any non-null value.
fn check(expected: &Value, actual: &Value, at: &str) -> Result<(), String> {
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

/// Compares an answer with a fixture's expected file, its placeholders filled from `seed`.
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
