//! Every function binary, run as Lambda runs it: started against the Lambda Runtime API
//! emulator of `testkit`, fed each of its fixtures from `events/` as the file stands, on
//! a fresh copy of the fixtures' data (`local-api seed --fixtures`), and held to the
//! fixture's `.expected.json`. This proves the binaries start, read their configuration,
//! parse API Gateway events and answer in Lambda's response format, with no Docker and no
//! AWS.
//!
//! The binaries are the test profile's (what `cargo test` builds); the release profile
//! for Lambda is built by `cargo lambda build --release` / `sam build`.

use std::path::{Path, PathBuf};

use serde_json::Value;
use testkit::{emulator, fixtures};

fn binary(function: &str) -> PathBuf {
    // Cargo names one binary of this package for us; the others sit beside it.
    let any = Path::new(env!("CARGO_BIN_EXE_bapi"));
    any.with_file_name(function)
}

/// Runs `function` once on `event`: what it answered the runtime.
async fn invoke(function: &str, event: &str, data_file: &Path) -> Result<Value, String> {
    emulator::invoke(
        &binary(function),
        function,
        event,
        &fixtures::function_env(data_file),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_binary_answers_its_fixtures_under_a_runtime_emulator() {
    let dir = std::env::temp_dir().join(format!("emulator-{}", std::process::id()));
    let seed = fixtures::seed(&dir).await;
    let mut failures = Vec::new();
    let mut functions_seen = std::collections::BTreeSet::new();
    for (i, fixture) in fixtures::all().into_iter().enumerate() {
        let (function, case) = (&fixture.function, &fixture.case);
        functions_seen.insert(function.clone());
        let data_file = seed.copy_to(&dir.join(format!("case-{i}.sqlite3")));
        let event = std::fs::read_to_string(&fixture.event).expect("event");
        match invoke(function, &event, &data_file).await {
            Ok(lambda) => {
                // An API Gateway answer: statusCode, and the body as a string of JSON.
                let status = lambda["statusCode"].as_u64().unwrap_or(0) as u16;
                let body = lambda["body"]
                    .as_str()
                    .and_then(|b| serde_json::from_str(b).ok())
                    .unwrap_or(Value::Null);
                if let Err(why) = fixtures::compare(&fixture.expected, status, &body) {
                    failures.push(format!("{function}/{case}: {why}"));
                }
            }
            Err(why) => failures.push(format!("{function}/{case}: {why}")),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{} invocation(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let all: std::collections::BTreeSet<String> = shared::routes::functions()
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(functions_seen, all, "every function binary ran");
}

/// The scheduled rotation: EventBridge Scheduler invokes `key-rotation` with a rotation
/// request; it rotates the keyring of its store and answers its lifecycle. A malformed
/// request is reported as a failed invocation and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_rotation_function_rotates_the_keyring_of_its_store() {
    let dir = std::env::temp_dir().join(format!("emulator-rotation-{}", std::process::id()));
    let seed = fixtures::seed(&dir).await;
    let data_file = seed.copy_to(&dir.join("rotation.sqlite3"));
    let keyring = fixtures::stored_keyring;
    let before = keyring(&data_file);

    let refused = invoke("key-rotation", r#"{"keys":"everything"}"#, &data_file).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(keyring(&data_file), before);

    let answer = invoke("key-rotation", r#"{"keys":"all"}"#, &data_file)
        .await
        .expect("rotated");
    assert_eq!(answer["object"], "instance_keys");
    let states: Vec<&str> = answer["session_signing_keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["state"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(states, ["current", "next"]);
    let after = keyring(&data_file);
    assert_eq!(after["version"], before["version"].as_u64().unwrap() + 1);
    assert_eq!(after["client_token_secrets"].as_array().unwrap().len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}
