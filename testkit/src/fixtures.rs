//! The fixtures in `events/` (API Gateway events, one folder per function, each beside its
//! `.expected.json`), the data they are played against (seeded by the product's own
//! `shared::fixtures::seed`, as `local-api seed --fixtures` seeds it), the environment a
//! function process gets, and how an answer is held to what is expected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use shared::clock::SystemClock;
use shared::config::Config;
use shared::keyring::service::KeyAccess;
use shared::keyring::Sealer;
use shared::state::AppState;
use shared::store::SqliteStore;

use crate::app::{TestApp, FAPI_URL};

/// The environment of a function process on the embedded store in `data_file`, as
/// template.yaml configures one (`RUST_LOG=info`), with what the fixtures need
/// (`shared::fixtures::FUNCTION_ENV`: their secret key, a development instance, so that
/// every route is served, the dev browser's included).
pub fn function_env(data_file: &Path) -> Vec<(String, String)> {
    with_fixture_settings(&[
        ("STORE_BACKEND", "embedded"),
        ("EMBEDDED_STORE_PATH", &data_file.to_string_lossy()),
    ])
}

/// The environment of a function process on the DynamoDB table `table` (the endpoint,
/// region and credentials come from the inherited environment), with what the fixtures
/// need.
pub fn function_env_dynamodb(table: &str) -> Vec<(String, String)> {
    with_fixture_settings(&[
        ("STORE_BACKEND", "dynamodb"),
        ("DYNAMODB_TABLE_NAME", table),
    ])
}

/// `store` settings, beside what every function playing the fixtures gets.
fn with_fixture_settings(store: &[(&str, &str)]) -> Vec<(String, String)> {
    let common = [("FRONTEND_API_URL", FAPI_URL), ("RUST_LOG", "info")];
    common
        .iter()
        .chain(store)
        .chain(shared::fixtures::FUNCTION_ENV.iter())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Creates the DynamoDB table `table` at `endpoint` and seeds it with
/// `shared::fixtures::seed`.
pub async fn seed_dynamodb(table: &str, endpoint: &str) -> Result<(), String> {
    let store =
        shared::store::DynamoDbStore::new(table.to_string(), Some(endpoint.to_string())).await;
    store.ensure_table().await.map_err(|e| e.to_string())?;
    let env: BTreeMap<String, String> = function_env_dynamodb(table).into_iter().collect();
    let config = Config::from_lookup(|k| env.get(k).cloned()).map_err(|e| e.to_string())?;
    let state = AppState::build(
        config,
        Arc::new(store),
        Arc::new(SystemClock),
        Sealer::Plain,
        KeyAccess::None,
    )
    .await
    .map_err(|e| e.to_string())?;
    shared::fixtures::seed(&state)
        .await
        .map_err(|e| e.to_string())
}

fn config(data_file: &Path) -> Config {
    let env: BTreeMap<String, String> = function_env(data_file).into_iter().collect();
    Config::from_lookup(|k| env.get(k).cloned()).expect("fixture config")
}

/// The service in process on `data_file`, configured as [`function_env`] configures a
/// function, on the system clock (the function processes that read the file use it too).
pub async fn open(data_file: &Path) -> TestApp {
    let store = Arc::new(SqliteStore::open(data_file).expect("data file"));
    TestApp::with_system_clock(config(data_file), store).await
}

/// The data every fixture is played against, in a data file: see `shared::fixtures`.
pub struct Seed {
    pub data_file: PathBuf,
}

/// Seeds `dir/seed.sqlite3` (made anew) with `shared::fixtures::seed`, on the system clock.
pub async fn seed(dir: &Path) -> Seed {
    std::fs::create_dir_all(dir).expect("dir");
    let data_file = dir.join("seed.sqlite3");
    for stale in ["", "-wal", "-shm", ".kek"] {
        let _ = std::fs::remove_file(format!("{}{stale}", data_file.display()));
    }
    reseed(&data_file).await;
    Seed { data_file }
}

/// Seeds `data_file` again, in place (processes may have it open): the fixture records
/// are put back as seeded, as `local-api seed --fixtures` does, and the JWT templates and
/// webhook endpoints other fixtures made are deleted (the seed leaves records it did not
/// write), so that every fixture meets the data it was written against.
pub async fn reseed(data_file: &Path) {
    let store = Arc::new(SqliteStore::open(data_file).expect("data file"));
    {
        use shared::store::{Store, Write};
        let templates = store.list_jwt_templates().await.expect("templates");
        let endpoints = store.list_webhook_endpoints().await.expect("endpoints");
        let made: Vec<Write> = templates
            .into_iter()
            .filter(|t| t.id != shared::fixtures::TEMPLATE_ID)
            .map(|t| Write::DeleteJwtTemplate {
                name: t.name,
                version: t.version,
            })
            .chain(
                endpoints
                    .into_iter()
                    .filter(|e| e.id != shared::fixtures::WEBHOOK_ENDPOINT_ID)
                    .map(|e| Write::DeleteWebhookEndpoint {
                        id: e.id,
                        version: e.version,
                    }),
            )
            .collect();
        if !made.is_empty() {
            store
                .commit(made)
                .await
                .expect("delete the records fixtures made");
        }
    }
    // No keyring access: the seed writes the fixtures' own keyring, sealed as the product
    // seals it on this database (its local key-encryption key, beside it).
    let config = config(data_file);
    let sealer = shared::state::configured_sealer(&config, store.as_ref())
        .await
        .expect("sealer");
    let state = AppState::build(
        config,
        store,
        Arc::new(SystemClock),
        sealer,
        KeyAccess::None,
    )
    .await
    .expect("state");
    shared::fixtures::seed(&state)
        .await
        .expect("seed the fixtures' data");
}

impl Seed {
    /// A fresh copy of the seeded data file, so each fixture starts from the same data.
    pub fn copy_to(&self, path: &Path) -> PathBuf {
        copy_data_file(&self.data_file, path).expect("copy the data file");
        path.to_path_buf()
    }
}

/// Copies the embedded store's database `from` to `to` (replaced), with SQLite's own
/// copy: whole even while `from` is open in WAL mode; and its local key-encryption key
/// file beside it, without which the copy's keys cannot be opened.
pub fn copy_data_file(from: &Path, to: &Path) -> Result<(), String> {
    use shared::keyring::local_kek::key_file;
    let _ = std::fs::remove_file(to);
    let _ = std::fs::remove_file(key_file(to));
    let dest = to.to_str().ok_or("the copy's path is not UTF-8")?;
    rusqlite::Connection::open(from)
        .and_then(|db| db.execute("VACUUM INTO ?1", [dest]))
        .map(|_| ())
        .map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))?;
    if key_file(from).exists() {
        // `fs::copy` keeps the mode (0600).
        std::fs::copy(key_file(from), key_file(to))
            .map_err(|e| format!("copy the key file of {}: {e}", from.display()))?;
    }
    Ok(())
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
        // `webhooks/` holds DynamoDB Streams batches (functions/tests/webhooks.rs), not
        // API Gateway events.
        if function == "webhooks" {
            continue;
        }
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

/// Compares an answer with a fixture's expected file.
pub fn compare(expected_file: &Path, status: u16, body: &Value) -> Result<(), String> {
    let text = std::fs::read_to_string(expected_file)
        .map_err(|e| format!("{}: {e}", expected_file.display()))?;
    let expected: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    if expected["status"] != json!(status) {
        return Err(format!(
            "status: expected {}, got {status}; body {body}",
            expected["status"]
        ));
    }
    check(&expected["body"], body, "body")
}

/// Plays a fixture's event as it stands, as an HTTP request to the server at `base_url`
/// (its method, path, query, headers, cookies and body), and holds the answer to its
/// `.expected.json`.
pub async fn play_over_http(
    http: &crate::local_api::Http,
    base_url: &str,
    fixture: &Fixture,
) -> Result<(), String> {
    let text = std::fs::read_to_string(&fixture.event)
        .map_err(|e| format!("{}: {e}", fixture.event.display()))?;
    let event: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let field = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let method = field(&event["requestContext"]["http"]["method"]);
    let query = field(&event["rawQueryString"]);
    let mut url = format!("{base_url}{}", field(&event["rawPath"]));
    if !query.is_empty() {
        url = format!("{url}?{query}");
    }
    let mut content_type = None;
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in event["headers"].as_object().into_iter().flatten() {
        match name.as_str() {
            // The server's own address is the host; the body carries its type.
            "host" => {}
            "content-type" => content_type = Some(field(value)),
            _ => headers.push((name.clone(), field(value))),
        }
    }
    let cookies: Vec<String> = event["cookies"]
        .as_array()
        .into_iter()
        .flatten()
        .map(field)
        .collect();
    if !cookies.is_empty() {
        headers.push(("cookie".into(), cookies.join("; ")));
    }
    let body = event["body"].as_str().filter(|b| !b.is_empty());
    let body = match (body, content_type.as_deref()) {
        (Some(b), ct) => Some((ct.unwrap_or("text/plain"), b.to_string())),
        (None, _) => None,
    };
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let answer = http.send(&method, &url, &headers, body).await;
    compare(&fixture.expected, answer.status, &answer.body)
        .map_err(|why| format!("{}/{}: {why}", fixture.function, fixture.case))
}
