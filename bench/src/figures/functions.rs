//! What figures 3 to 6 run: each function binary on one of its fixtures from `events/`,
//! against data seeded as the tests seed it, beside the `hello-lambda` floor.

use std::path::{Path, PathBuf};

use serde_json::Value;
use testkit::fixtures::{self, Seed};

use super::data_dir;

/// The cold-start and steady-state floor: a hello-world `lambda_runtime` function.
pub const HELLO: &str = "hello-lambda";

/// Per function: the fixture (from `events/`) played for its cold start and steady state,
/// and the row of `docs/dynamodb.md` for its endpoint. Each event can be replayed 10,000
/// times with the same answer; see docs/benchmarks.md for why these.
const CASES: &[(&str, &str, &str)] = &[
    ("bapi", "get-session", "GET /v1/sessions/{id}"),
    ("fapi-client", "get-client-native", "GET /v1/client"),
    (
        "fapi-dev-browser",
        "create-dev-browser",
        "POST /v1/dev_browser",
    ),
    ("fapi-environment", "get-environment", "GET /v1/environment"),
    ("fapi-jwks", "get-jwks", "GET /.well-known/jwks.json"),
    (
        "fapi-session-end",
        "end-ended-session",
        "POST /v1/client/sessions/{id}/end",
    ),
    (
        "fapi-session-get",
        "get-session",
        "GET /v1/client/sessions/{id}",
    ),
    (
        "fapi-session-remove",
        "remove-unknown-session",
        "POST /v1/client/sessions/{id}/remove",
    ),
    (
        "fapi-session-template-tokens",
        "mint-template-token",
        "POST /v1/client/sessions/{id}/tokens/{template}",
    ),
    (
        "fapi-session-tokens",
        "mint-session-token",
        "POST /v1/client/sessions/{id}/tokens",
    ),
    (
        "fapi-session-touch",
        "touch-session",
        "POST /v1/client/sessions/{id}/touch",
    ),
    (
        "fapi-sign-ins",
        "sign-in-with-unknown-ticket",
        "POST /v1/client/sign_ins (ticket, new client)",
    ),
];

pub struct Case {
    pub function: &'static str,
    pub event_name: &'static str,
    pub dynamodb_row: &'static str,
    /// The event, as the file holds it.
    pub event: String,
    pub expected_status: u16,
    /// The binary's file size.
    pub size: u64,
}

/// The function binaries of `bin_dir`, their events, and the seeded data they run on.
pub struct Functions {
    pub bin_dir: PathBuf,
    pub cases: Vec<Case>,
    /// `hello-lambda`'s file size.
    pub hello_size: u64,
    /// The event `hello-lambda` gets (it reads none of it).
    pub hello_event: String,
    dir: PathBuf,
    seed: Seed,
}

fn size(binary: &Path) -> Result<u64, String> {
    Ok(std::fs::metadata(binary)
        .map_err(|e| format!("{}: {e} (build it first)", binary.display()))?
        .len())
}

impl Functions {
    /// Seeds the data and reads each case's event from `repo/events`.
    pub async fn prepare(bin_dir: &Path, repo: &Path) -> Result<Self, String> {
        let dir = data_dir();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let seed = fixtures::seed(&dir).await;
        let mut cases = Vec::new();
        for &(function, event_name, dynamodb_row) in CASES {
            let events = repo.join("events").join(function);
            let read = |name: String| {
                std::fs::read_to_string(events.join(&name))
                    .map_err(|e| format!("events/{function}/{name}: {e}"))
            };
            let event = read(format!("{event_name}.json"))?;
            let expected: Value =
                serde_json::from_str(&read(format!("{event_name}.expected.json"))?)
                    .map_err(|e| e.to_string())?;
            cases.push(Case {
                function,
                event_name,
                dynamodb_row,
                event,
                expected_status: expected["status"].as_u64().unwrap_or(0) as u16,
                size: size(&bin_dir.join(function))?,
            });
        }
        let hello_event = cases
            .iter()
            .find(|c| c.function == "fapi-session-get")
            .map(|c| c.event.clone())
            .unwrap_or_else(|| "{}".into());
        Ok(Self {
            bin_dir: bin_dir.to_path_buf(),
            hello_size: size(&bin_dir.join(HELLO))?,
            hello_event,
            cases,
            dir,
            seed,
        })
    }

    pub fn binary(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// A fresh copy of the seeded data for `function`, and the environment that points
    /// the function at it.
    pub fn env(&self, function: &str) -> Result<Vec<(String, String)>, String> {
        let data_file = self.dir.join(format!("{function}.sqlite3"));
        fixtures::copy_data_file(&self.seed.data_file, &data_file)?;
        Ok(fixtures::function_env(&data_file))
    }
}

impl Drop for Functions {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
