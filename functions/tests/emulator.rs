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

/// On Lambda the metrics are CloudWatch Embedded Metric Format lines on standard output.
/// A session read and a ticket sign-in, each run as Lambda runs them: every EMF line they
/// write is valid by the format's specification, in the configured namespace, with the
/// catalogue's names and dimensions, tied to the request and its trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_write_their_metrics_as_embedded_metric_format() {
    let dir = std::env::temp_dir().join(format!("emulator-emf-{}", std::process::id()));
    let seed = fixtures::seed(&dir).await;
    let cases = [
        ("fapi-session-get", "get-session", "GetSession"),
        ("fapi-sign-ins", "sign-in-with-ticket", "CreateSignIn"),
    ];
    let mut by_function = Vec::new();
    for (i, (function, case, endpoint)) in cases.into_iter().enumerate() {
        let data_file = seed.copy_to(&dir.join(format!("emf-{i}.sqlite3")));
        let mut env = fixtures::function_env(&data_file);
        env.push(("METRICS_NAMESPACE".into(), "emf-test-stack".into()));
        let event = std::fs::read_to_string(format!(
            "{}/../events/{function}/{case}.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("event");
        let (answer, stdout) =
            emulator::invoke_with_output(&binary(function), function, &event, &env)
                .await
                .expect("answers");
        assert_eq!(answer["statusCode"], 200, "{function}/{case}: {answer}");
        let documents: Vec<Value> = stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|doc| doc.get("_aws").is_some())
            .collect();
        assert!(
            !documents.is_empty(),
            "{function}: no EMF lines in {stdout}"
        );
        for doc in &documents {
            let violations = emf_violations(doc);
            assert!(violations.is_empty(), "{function}: {violations:?} in {doc}");
            let directive = &doc["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(directive["Namespace"], "emf-test-stack");
            assert_eq!(doc["function"], function, "the function dimension: {doc}");
            assert_eq!(directive["Dimensions"][0][0], "function");
            assert!(doc["request_id"].is_string(), "tied to the request: {doc}");
            assert!(doc["trace_id"].is_string(), "tied to the trace: {doc}");
        }
        // Each metric, by name: its dimension set, and its document.
        let metric = |name: &str| {
            documents.iter().find_map(|doc| {
                let directive = &doc["_aws"]["CloudWatchMetrics"][0];
                let defined = directive["Metrics"]
                    .as_array()?
                    .iter()
                    .find(|m| m["Name"] == name)?;
                let dimensions: Vec<&str> = directive["Dimensions"][0]
                    .as_array()?
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                Some((dimensions, defined["Unit"].clone(), doc.clone()))
            })
        };
        let (dims, unit, doc) = metric("http_responses_total").expect("answers counted");
        assert_eq!(dims, ["function", "endpoint", "class"]);
        assert_eq!(
            (doc["endpoint"].as_str(), doc["class"].as_str()),
            (Some(endpoint), Some("2xx"))
        );
        assert_eq!(
            (unit.as_str(), doc["http_responses_total"].as_u64()),
            (Some("Count"), Some(1))
        );
        let (dims, unit, doc) = metric("store_call_duration_seconds").expect("store timed");
        assert_eq!(dims, ["function", "operation"]);
        assert_eq!(unit, "Seconds");
        assert!(doc["store_call_duration_seconds"].is_array());
        let (dims, _, _) = metric("store_calls_total").expect("store calls counted");
        assert_eq!(dims, ["function", "operation"]);
        assert!(
            metric("store_errors_total").is_none(),
            "no store call failed"
        );
        by_function.push((function, documents));
    }
    let _ = std::fs::remove_dir_all(&dir);

    // The sign-in counts itself, its new session and its answer's session token.
    let (_, sign_in) = &by_function[1];
    let value = |name: &str, label: (&str, &str)| {
        sign_in
            .iter()
            .find(|doc| doc[label.0] == label.1 && doc.get(name).is_some())
            .and_then(|doc| doc[name].as_u64())
    };
    assert_eq!(value("sign_ins_total", ("strategy", "ticket")), Some(1));
    assert_eq!(
        value("session_transitions_total", ("action", "sign_in")),
        Some(1)
    );
    assert_eq!(
        value("tokens_minted_total", ("kind", "last_active_token")),
        Some(1)
    );
}

/// What in `doc` breaks the Embedded Metric Format specification
/// (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
/// a root `_aws` with an integer `Timestamp` and `CloudWatchMetrics` directives; each with a
/// non-blank `Namespace`, `Dimensions` (sets of at most 30 names of string members, each
/// value at most 1,024 characters) and `Metrics` (at most 100, each a `Name` of a member
/// holding a number or at most 100 numbers, and an optional known `Unit`).
fn emf_violations(doc: &Value) -> Vec<String> {
    const UNITS: &[&str] = &[
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];
    let mut out = Vec::new();
    let mut fail = |why: String| out.push(why);
    let aws = &doc["_aws"];
    if !aws.is_object() {
        fail("_aws is not an object".into());
        return out;
    }
    if !aws["Timestamp"].is_u64() {
        fail("_aws.Timestamp is not an integer".into());
    }
    let Some(directives) = aws["CloudWatchMetrics"].as_array() else {
        fail("_aws.CloudWatchMetrics is not an array".into());
        return out;
    };
    for directive in directives {
        let namespace = directive["Namespace"].as_str().unwrap_or("");
        if namespace.trim().is_empty() || namespace.len() > 1024 {
            fail(format!("bad Namespace {:?}", directive["Namespace"]));
        }
        for set in directive["Dimensions"].as_array().into_iter().flatten() {
            let names = set.as_array().cloned().unwrap_or_default();
            if !set.is_array() || names.len() > 30 {
                fail(format!("bad dimension set {set}"));
            }
            for name in names {
                let value = name.as_str().map(|n| &doc[n]);
                match value.and_then(Value::as_str) {
                    Some(v) if !v.is_empty() && v.len() <= 1024 => {}
                    _ => fail(format!("dimension {name} is not a string member")),
                }
            }
        }
        if !directive["Dimensions"].is_array() {
            fail("Dimensions is not an array".into());
        }
        let metrics = directive["Metrics"].as_array().cloned().unwrap_or_default();
        if !directive["Metrics"].is_array() || metrics.len() > 100 {
            fail("Metrics is not an array of at most 100".into());
        }
        for metric in metrics {
            let name = metric["Name"].as_str().unwrap_or("");
            if name.is_empty() || name.len() > 1024 {
                fail(format!("bad metric Name in {metric}"));
            }
            match &doc[name] {
                Value::Number(_) => {}
                Value::Array(values)
                    if values.len() <= 100 && values.iter().all(Value::is_number) => {}
                other => fail(format!("metric {name} holds {other}")),
            }
            if let Some(unit) = metric.get("Unit") {
                if !unit.as_str().is_some_and(|u| UNITS.contains(&u)) {
                    fail(format!("metric {name} has unit {unit}"));
                }
            }
        }
    }
    out
}
