//! The repository's Docker-free `sam local invoke -e`: every fixture in `events/`, read as
//! it stands, goes through lambda_http's own event parsing into the real handler of its
//! function, against a fresh copy of the fixtures' data (seeded as `local-api seed
//! --fixtures` seeds it: `testkit::fixtures::seed`), and its answer must match the
//! `.expected.json` beside it.

use lambda_http::Body;
use serde_json::Value;
use testkit::fixtures;

#[tokio::test]
async fn every_fixture_answers_as_expected() {
    let dir = std::env::temp_dir().join(format!("fixtures-{}", std::process::id()));
    let seed = fixtures::seed(&dir).await;
    let all = fixtures::all();
    assert!(all.len() >= 50, "fixtures: {}", all.len());
    let mut failures = Vec::new();
    for (i, fixture) in all.iter().enumerate() {
        let (function, case) = (&fixture.function, &fixture.case);
        let data_file = seed.copy_to(&dir.join(format!("case-{i}.sqlite3")));
        let app = fixtures::open(&data_file).await;
        let event = std::fs::read_to_string(&fixture.event).expect("event");
        let request =
            lambda_http::request::from_str(&event).expect("lambda_http parses the fixture");
        let resp = functions::handle(
            &app.state,
            shared::routes::function(function).expect("function"),
            request,
        )
        .await;
        let status = resp.status().as_u16();
        let body: Value = match resp.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        if let Err(why) = fixtures::compare(&fixture.expected, status, &body) {
            failures.push(format!("{function}/{case}: {why}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Routes a client cannot get wrong: public documents and creating a client.
const NO_CLIENT_ERROR: [&str; 4] = [
    "GET /v1/environment",
    "GET /.well-known/jwks.json",
    "POST /v1/dev_browser",
    "POST /v1/client",
];

/// Every route of the template has a success fixture and, unless a caller cannot get it
/// wrong, an error fixture.
#[test]
fn every_route_has_fixtures() {
    let mut statuses: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for fixture in fixtures::all() {
        let event: Value =
            serde_json::from_str(&std::fs::read_to_string(&fixture.event).unwrap()).unwrap();
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(&fixture.expected).unwrap()).unwrap();
        let key = event["routeKey"].as_str().unwrap_or_default().to_string();
        statuses
            .entry(key)
            .or_default()
            .push(expected["status"].as_u64().unwrap_or(0));
    }
    let mut missing = Vec::new();
    for (method, path, _) in shared::routes::gateway_routes() {
        let key = format!("{method} {path}");
        let found = statuses.get(&key).cloned().unwrap_or_default();
        // A 307 is the handshake's success.
        if !found.iter().any(|s| *s < 400) {
            missing.push(format!("{key}: no success fixture"));
        }
        if !found.iter().any(|s| *s >= 400) && !NO_CLIENT_ERROR.contains(&key.as_str()) {
            missing.push(format!("{key}: no error fixture"));
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}
