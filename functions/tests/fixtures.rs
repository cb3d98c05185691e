//! The repository's Docker-free `sam local invoke -e`: every fixture in `events/`, read as
//! it stands, goes through lambda_http's own event parsing into the real handler of its
//! function, against a fresh copy of the fixtures' data (seeded as `local-api seed
//! --fixtures` seeds it: `testkit::fixtures::seed`), and its answer must match the
//! `.expected.json` beside it. `events/` itself must be what `scripts/gen-events.py` writes,
//! and every route needs its fixtures.

use std::path::Path;
use std::process::Command;

use lambda_http::Body;
use serde_json::Value;
use testkit::fixtures;

/// What brings `events/` up to date: the generator, then a commit.
const REGENERATE: &str = "run `python3 scripts/gen-events.py` (and commit events/)";

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
/// wrong, an error fixture. The failure lists what is missing, as lines for `FIXTURES` in
/// scripts/gen-events.py.
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
    let mut lines = Vec::new();
    for (method, path, function) in shared::routes::gateway_routes() {
        let key = format!("{method} {path}");
        let found = statuses.get(&key).cloned().unwrap_or_default();
        // A 307 is the handshake's success.
        if !found.iter().any(|s| *s < 400) {
            missing.push(format!("{key}: no success fixture"));
            lines.push(fixture_line(&method, path, function, false));
        }
        if !found.iter().any(|s| *s >= 400) && !NO_CLIENT_ERROR.contains(&key.as_str()) {
            missing.push(format!("{key}: no error fixture"));
            lines.push(fixture_line(&method, path, function, true));
        }
    }
    assert!(
        missing.is_empty(),
        "{} fixture(s) missing:\n  {}\n\nAdd to FIXTURES in scripts/gen-events.py (then name the \
         case, shape the request, and set the expected status and body):\n    {}\nand run:\n    \
         python3 scripts/gen-events.py\n",
        missing.len(),
        missing.join("\n  "),
        lines.join("\n    ")
    );
}

/// The path parameters of the routes, and the script's names for the fixtures' values of
/// them (which it reads from shared/src/fixtures/mod.rs): a line's concrete path is an
/// f-string of them, as the script's own are.
const PATH_VALUES: [(&str, &str); 6] = [
    ("session_id", "SESSION_ID"),
    ("user_id", "USER_ID"),
    ("client_id", "CLIENT_ID"),
    ("template_id", "TEMPLATE_ID"),
    ("template_name", "TEMPLATE_NAME"),
    ("endpoint_id", "WEBHOOK_ENDPOINT_ID"),
];

/// A line for `FIXTURES` in scripts/gen-events.py: a fixture of the route `method path`
/// of `function`, sent as the fixtures' client (Frontend API) or with the secret key
/// (Backend API), at the fixtures' records; its expected answer is a placeholder.
fn fixture_line(method: &str, path: &str, function: &str, error: bool) -> String {
    let served = |m: &str| shared::routes::routes().find(|(_, r)| r.path == path && r.method == m);
    // The POST twin of a DELETE or PATCH route (clerk-js tunnels them) is served by that route.
    let (route, tunnelled) = match served(method) {
        Some((_, route)) => (route, None),
        None => ["DELETE", "PATCH"]
            .into_iter()
            .find_map(|m| served(m).map(|(_, route)| (route, Some(m))))
            .expect("every gateway route is served"),
    };
    let frontend = route.endpoint.is_frontend();
    // A Python string; an f-string where the fixtures' values fill the path's parameters.
    let mut concrete = String::new();
    let mut case = vec![tunnelled.unwrap_or(method).to_lowercase()];
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        concrete.push('/');
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(param) => match PATH_VALUES.iter().find(|(p, _)| *p == param) {
                Some((_, name)) => concrete.push_str(&format!("{{{name}}}")),
                None => concrete.push_str(&format!("TODO_{param}")),
            },
            None => {
                concrete.push_str(segment);
                if segment != "v1" {
                    case.push(
                        segment
                            .replace(['_', '.'], "-")
                            .trim_matches('-')
                            .to_string(),
                    );
                }
            }
        }
    }
    if tunnelled.is_some() {
        case.push("tunnelled".into());
    }
    if error {
        case.push("error".into());
    }
    let mut query = Vec::new();
    if let Some(m) = tunnelled {
        query.push(format!("_method={m}"));
    }
    if frontend {
        query.push("_is_native=1".into());
    }
    let headers = if frontend { "NATIVE" } else { "SK" };
    let body = match (method, frontend) {
        ("GET", _) | (_, false) => "None",
        _ => "\"\"",
    };
    let expected = if error {
        "err(400, \"TODO\")"
    } else {
        "(200, \"*\")"
    };
    format!(
        "(\"{function}\", \"{case}\", \"{method}\", \"{path}\", {f}\"{concrete}\", \"{query}\", \
         {headers}, {body}, [], {expected}),",
        case = case.join("-"),
        f = if path.contains('{') { "f" } else { "" },
        query = query.join("&"),
    )
}

/// The committed `events/` are what `scripts/gen-events.py` writes from its list and the
/// values of `shared::fixtures` (its `--check` writes nothing and lists the files that
/// differ).
#[test]
fn events_are_what_the_generator_writes() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("python3")
        .args(["scripts/gen-events.py", "--check"])
        .current_dir(&repo)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "python3 could not be started ({e}): it is needed to check that events/ is \
                 what scripts/gen-events.py writes; install python3"
            )
        });
    // The script ends its listing with REGENERATE too; the message says it once.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said: Vec<&str> = said.lines().filter(|l| *l != REGENERATE).collect();
    let said = said.join("\n");
    match out.status.code() {
        Some(0) => {}
        Some(1) => panic!("{said}\n{REGENERATE}"),
        _ => panic!(
            "`python3 scripts/gen-events.py --check` failed ({}):\n{said}",
            out.status
        ),
    }
}
