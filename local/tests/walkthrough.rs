//! End to end: starts the real `local-api` binary on a free port and walks the README's
//! curl walk-through over real HTTP.

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use testkit::local_api::{client_cookie, Http, LocalApi};

/// A running `local-api`, its URL, and the secret key it made and printed.
struct Server {
    _process: LocalApi,
    url: String,
    secret: String,
}

fn start(args: &[&str]) -> Server {
    start_with(args, &[])
}

fn start_with(args: &[&str], env: &[(&str, &str)]) -> Server {
    let process = LocalApi::start(Path::new(env!("CARGO_BIN_EXE_local-api")), args, env)
        .expect("local-api starts");
    let url = process.url();
    let secret = process.secret_key.clone().unwrap_or_default();
    assert!(url.starts_with("http://127.0.0.1:"), "no ready line");
    assert!(secret.starts_with("sk_local_"));
    Server {
        _process: process,
        url,
        secret,
    }
}

#[tokio::test]
async fn readme_walkthrough_over_http() {
    walkthrough(&start(&["--in-memory"])).await;
}

/// The README's first command (a development instance: `INSTANCE_TYPE=development`, no
/// mail server) lets a newcomer sign up: the code is printed on the server's console, and
/// the new user then signs in with the password.
#[tokio::test]
async fn a_newcomer_signs_up_with_the_code_printed_on_the_console() {
    let process = LocalApi::start(
        Path::new(env!("CARGO_BIN_EXE_local-api")),
        &["--in-memory"],
        &[("INSTANCE_TYPE", "development")],
    )
    .expect("local-api starts");
    let (http, base) = (Http::new(), process.url());
    let form = |body: String| Some(("application/x-www-form-urlencoded", body));
    let password = "plum-tractor-vinegar-42";
    let created = http
        .send(
            "POST",
            &format!("{base}/v1/client/sign_ups?_is_native=1"),
            &[],
            form(format!(
                "email_address=newcomer@example.com&password={password}"
            )),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let id = created.body["response"]["id"].as_str().unwrap().to_string();
    let token = created.headers["authorization"]
        .to_str()
        .unwrap()
        .to_string();
    let native = [("authorization", token.as_str())];
    let prepared = http
        .send(
            "POST",
            &format!("{base}/v1/client/sign_ups/{id}/prepare_verification?_is_native=1"),
            &native,
            form("strategy=email_code".into()),
        )
        .await;
    assert_eq!(prepared.status, 200, "{}", prepared.body);
    // "email to newcomer@example.com (verification code for …): 123456"
    let code = loop {
        let line = process
            .next_error_line(std::time::Duration::from_secs(10))
            .expect("the code on the console");
        if let Some((_, code)) = line
            .strip_prefix("email to newcomer@example.com ")
            .and_then(|rest| rest.rsplit_once(": "))
        {
            break code.trim().to_string();
        }
    };
    assert_eq!(code.len(), 6, "{code}");
    let done = http
        .send(
            "POST",
            &format!("{base}/v1/client/sign_ups/{id}/attempt_verification?_is_native=1"),
            &native,
            form(format!("strategy=email_code&code={code}")),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["response"]["status"], "complete");
    let signed_in = http
        .send(
            "POST",
            &format!("{base}/v1/client/sign_ins?_is_native=1"),
            &[],
            form(format!(
                "identifier=newcomer@example.com&password={password}"
            )),
        )
        .await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    assert_eq!(signed_in.body["response"]["status"], "complete");
}

/// The same walk-through with the local server on DynamoDB (the moto server that
/// `scripts/test.sh` starts), on a table the server creates.
#[tokio::test]
async fn readme_walkthrough_on_dynamodb() {
    let Some(endpoint) = testkit::stores::dynamodb_endpoint() else {
        return;
    };
    let table = format!("walkthrough-{}", std::process::id());
    let server = start_with(
        &[],
        &[
            ("STORE_BACKEND", "dynamodb"),
            ("DYNAMODB_TABLE_NAME", &table),
            ("AWS_ENDPOINT_URL_DYNAMODB", &endpoint),
        ],
    );
    walkthrough(&server).await;
}

async fn walkthrough(server: &Server) {
    let http = Http::new();
    let (base, bearer) = (server.url.clone(), format!("Bearer {}", server.secret));
    let sk = [("authorization", bearer.as_str())];

    // 1. A user, and a sign-in token for it (Backend API).
    let user = http
        .send(
            "POST",
            &format!("{base}/v1/users"),
            &sk,
            Some((
                "application/json",
                json!({"first_name": "Ada", "email_address": ["ada@example.com"]}).to_string(),
            )),
        )
        .await;
    assert_eq!(user.status, 200, "{}", user.body);
    let user_id = user.body["id"].as_str().unwrap().to_string();
    let sit = http
        .send(
            "POST",
            &format!("{base}/v1/sign_in_tokens"),
            &sk,
            Some(("application/json", json!({"user_id": user_id}).to_string())),
        )
        .await;
    let ticket = sit.body["token"].as_str().unwrap().to_string();

    // 2. A browser client, then sign in with the ticket; the cookie rotates.
    let client = http
        .send("POST", &format!("{base}/v1/client"), &[], None)
        .await;
    assert_eq!(client.status, 200);
    let cookie = client_cookie(&client);
    let sign_in = http
        .send(
            "POST",
            &format!("{base}/v1/client/sign_ins"),
            &[("cookie", cookie.as_str())],
            Some((
                "application/x-www-form-urlencoded",
                format!("strategy=ticket&ticket={ticket}"),
            )),
        )
        .await;
    assert_eq!(sign_in.status, 200, "{}", sign_in.body);
    assert_eq!(sign_in.body["response"]["status"], "complete");
    let sid = sign_in.body["response"]["created_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let new_cookie = client_cookie(&sign_in);
    assert_ne!(new_cookie, cookie);
    let old = http
        .send(
            "GET",
            &format!("{base}/v1/client/sessions/{sid}"),
            &[("cookie", cookie.as_str())],
            None,
        )
        .await;
    assert_eq!(old.status, 401, "the pre-sign-in cookie must stop working");
    let cookie = [("cookie", new_cookie.as_str())];

    // 3. Read the session, mint a token, verify it against the JWKS.
    let session = http
        .send(
            "GET",
            &format!("{base}/v1/client/sessions/{sid}"),
            &cookie,
            None,
        )
        .await;
    assert_eq!(session.status, 200);
    assert_eq!(session.body["response"]["status"], "active");
    assert_eq!(session.body["response"]["user"]["id"], user_id.as_str());
    let token = http
        .send(
            "POST",
            &format!("{base}/v1/client/sessions/{sid}/tokens"),
            &cookie,
            None,
        )
        .await;
    assert_eq!(token.status, 200, "{}", token.body);
    let jwt = token.body["jwt"].as_str().unwrap();
    let jwks = http
        .send("GET", &format!("{base}/.well-known/jwks.json"), &[], None)
        .await;
    let key = &jwks.body["keys"][0];
    let decoding =
        DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap())
            .unwrap();
    let claims = jsonwebtoken::decode::<Value>(jwt, &decoding, &Validation::new(Algorithm::RS256))
        .expect("verifies")
        .claims;
    assert_eq!(claims["sid"], sid.as_str());
    assert_eq!(claims["sub"], user_id.as_str());
    assert_eq!(claims["iss"], base.as_str());

    // 4. Touch, end; an ended session mints nothing.
    let touch = http
        .send(
            "POST",
            &format!("{base}/v1/client/sessions/{sid}/touch"),
            &cookie,
            Some((
                "application/x-www-form-urlencoded",
                "active_organization_id=".into(),
            )),
        )
        .await;
    assert_eq!(touch.status, 200);
    assert_eq!(touch.body["client"]["last_active_session_id"], sid.as_str());
    let end = http
        .send(
            "POST",
            &format!("{base}/v1/client/sessions/{sid}/end"),
            &cookie,
            None,
        )
        .await;
    assert_eq!(end.status, 200);
    assert_eq!(end.body["response"]["status"], "ended");
    let after = http
        .send(
            "POST",
            &format!("{base}/v1/client/sessions/{sid}/tokens"),
            &cookie,
            None,
        )
        .await;
    assert_eq!(after.status, 401);
    assert_eq!(after.body["errors"][0]["code"], "signed_out");

    // 5. The metrics count what the walk-through did (docs/operations.md): for Backend API
    //    callers only.
    let url = format!("{base}/metrics");
    let anonymous = http.send("GET", &url, &[], None).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let wrong = http
        .send("GET", &url, &[("authorization", "Bearer sk_wrong")], None)
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let scraped = http.send("GET", &url, &sk, None).await;
    assert_eq!(scraped.status, 200);
    let text = scraped.body.as_str().expect("Prometheus text");
    let metric = |name: &str, labels: &[(&str, &str)]| prometheus_value(text, name, labels);
    assert_eq!(metric("sign_ins_total", &[("strategy", "ticket")]), 1.0);
    assert_eq!(metric("tokens_minted_total", &[("kind", "session")]), 1.0);
    assert_eq!(metric("tokens_minted_total", &[("kind", "template")]), 0.0);
    assert_eq!(
        metric("session_transitions_total", &[("action", "sign_in")]),
        1.0
    );
    assert_eq!(
        metric("session_transitions_total", &[("action", "end")]),
        1.0
    );
    assert_eq!(
        metric("session_transitions_total", &[("action", "remove")]),
        0.0
    );
    let responses = |endpoint, class| {
        metric(
            "http_responses_total",
            &[("endpoint", endpoint), ("class", class)],
        )
    };
    assert_eq!(responses("CreateSignIn", "2xx"), 1.0);
    assert_eq!(responses("GetSession", "2xx"), 1.0);
    assert_eq!(responses("GetSession", "4xx"), 1.0, "the old cookie's 401");
    assert_eq!(responses("CreateSessionToken", "2xx"), 1.0);
    assert_eq!(responses("CreateSessionToken", "4xx"), 1.0);
    assert_eq!(responses("EndSession", "2xx"), 1.0);
    assert_eq!(metric("http_responses_total", &[("class", "5xx")]), 0.0);
    let errors = |endpoint, code| {
        metric(
            "clerk_errors_total",
            &[("endpoint", endpoint), ("code", code)],
        )
    };
    assert_eq!(errors("CreateSessionToken", "signed_out"), 1.0);
    assert_eq!(errors("GetSession", "authentication_invalid"), 1.0);
    // The sign-in's one commit, the end's status write, the touch's pointer move.
    let commits = metric("store_calls_total", &[("operation", "commit")]);
    assert!(commits >= 3.0, "{commits} commits");
    assert!(
        metric(
            "store_call_duration_seconds_count",
            &[("operation", "get_client")]
        ) >= 4.0
    );
    assert_eq!(metric("store_errors_total", &[]), 0.0);
    assert_eq!(metric("retries_total", &[]), 0.0);
}

/// The sum of the samples of `name` whose labels include `labels`, in Prometheus text.
fn prometheus_value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            let has = |(k, v): &(&str, &str)| label_text.contains(&format!("{k}=\"{v}\""));
            (metric == name && labels.iter().all(has)).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}
