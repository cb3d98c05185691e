//! Holds every endpoint to the DynamoDB calls and request units that `docs/dynamodb.md`
//! says it makes: the table between the `calls:start` and `calls:end` markers is parsed and
//! compared with what an SDK interceptor counted, so a change that adds a round trip or a
//! write fails here. The units assume the item sizes the table keeps to, and this checks
//! those sizes on the items the run wrote.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use shared::store::dynamodb::calls::Calls;
use shared::store::DynamoDbStore;
use testkit::app::*;
use testkit::stores;

/// `Operation N, …` or `none`, as the doc writes it.
fn parse_counts(cell: &str) -> BTreeMap<String, u32> {
    cell.split(',')
        .map(str::trim)
        // `?`: a pasted row not measured yet (every_route_has_a_calls_row… fails on it).
        .filter(|p| !p.is_empty() && *p != "none" && *p != "?")
        .map(|part| {
            let (op, count) = part.rsplit_once(' ').expect("`Name N`");
            (op.to_string(), count.parse().expect("a count"))
        })
        .collect()
}

fn format_counts(counts: &BTreeMap<String, u32>) -> String {
    let text: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(op, n)| format!("{op} {n}"))
        .collect();
    if text.is_empty() {
        "none".into()
    } else {
        text.join(", ")
    }
}

fn units(calls: &Calls) -> BTreeMap<String, u32> {
    BTreeMap::from([
        ("RRU".to_string(), calls.read_units),
        ("WRU".to_string(), calls.write_units),
    ])
}

/// The documented calls: endpoint (as written in the doc's first column) → calls.
fn documented() -> BTreeMap<String, Calls> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/dynamodb.md"))
        .expect("docs/dynamodb.md");
    let table = doc
        .split("<!-- calls:start -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- calls:end -->").next())
        .expect("the calls table markers");
    let mut out = BTreeMap::new();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let endpoint = cells[1].trim_matches('`').to_string();
        let units = parse_counts(cells[3]);
        let calls = Calls {
            operations: parse_counts(cells[2]),
            read_units: units.get("RRU").copied().unwrap_or(0),
            write_units: units.get("WRU").copied().unwrap_or(0),
        };
        out.insert(endpoint, calls);
    }
    out
}

/// `{session_id}`, `{template_name}`… as the doc writes them: `{id}`, `{template}`.
fn doc_path(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{template_name}" | "{template}" => "{template}",
            s if s.starts_with('{') => "{id}",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Always run (no DynamoDB needed): every route has a row in docs/dynamodb.md's calls
/// table, and every row is measured by [`every_endpoint_makes_the_documented_calls`]
/// (which compares them on the test command's moto), so neither can be left out silently.
#[test]
fn every_route_has_a_calls_row_and_every_row_a_measurement() {
    let documented = documented();
    let rows: BTreeSet<(String, String)> = documented
        .keys()
        .map(|label| {
            let label = label.split(" (").next().unwrap_or(label);
            let (method, path) = label.split_once(' ').expect("`METHOD path`");
            let path = path.split('?').next().unwrap_or(path);
            (method.to_string(), doc_path(path))
        })
        .collect();
    let missing_rows: Vec<String> = shared::routes::routes()
        .map(|(_, r)| (r.method.to_string(), doc_path(r.path)))
        .filter(|key| !rows.contains(key))
        .map(|(method, path)| format!("| `{method} {path}` | ? | ? |"))
        .collect();
    // The labels this file measures under are its string literals.
    let source = include_str!("dynamodb_calls.rs");
    let unmeasured: Vec<String> = documented
        .keys()
        .filter(|label| !source.contains(&format!("\"{label}\"")))
        .map(|label| {
            let (method, path) = label.split_once(' ').unwrap_or(("GET", label));
            let path = path.split(" (").next().unwrap_or(path);
            let req = req_snippet(method, path);
            format!("    run.measure(\"{label}\", {req}.secret()).await;")
        })
        .collect();
    assert!(
        missing_rows.is_empty(),
        "docs/dynamodb.md's calls table (between `<!-- calls:start -->` and \
         `<!-- calls:end -->`) has no row for {} route(s); paste:\n{}\nthen measure each \
         (see the next failure, once the rows are in) and fill in what `PRINT_CALLS=1 cargo \
         test -p shared --test suite every_endpoint_makes_the_documented_calls -- \
         --nocapture` prints (with moto running: `.venv/bin/python scripts/moto_server.py \
         127.0.0.1 5055` and `AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:5055`)",
        missing_rows.len(),
        missing_rows.join("\n")
    );
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/dynamodb.md"))
        .expect("docs/dynamodb.md");
    let unfilled: Vec<&str> = doc
        .lines()
        .filter(|l| l.starts_with("| `") && l.split('|').any(|cell| cell.trim() == "?"))
        .collect();
    assert!(
        unmeasured.is_empty(),
        "shared/tests/suite/dynamodb_calls.rs measures no request for {} row(s) of \
         docs/dynamodb.md; add to `every_endpoint_makes_the_documented_calls`, with a real id \
         for each `{{id}}` (a client route: `.native(&token)` instead of `.secret()`):\n{}",
        unmeasured.len(),
        unmeasured.join("\n")
    );
    assert!(
        unfilled.is_empty(),
        "docs/dynamodb.md has rows not measured yet:\n{}\nreplace each with the row that \
         `PRINT_CALLS=1 cargo test -p shared --test suite every_endpoint_makes_the_documented_calls \
         -- --nocapture` prints (with moto running: `.venv/bin/python scripts/moto_server.py \
         127.0.0.1 5055` and `AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:5055`)",
        unfilled.join("\n")
    );
}

struct Run {
    app: TestApp,
    store: Arc<DynamoDbStore>,
    measured: BTreeMap<String, Calls>,
}

impl Run {
    /// Redeems `ticket` on the native client of `token` (`""`: a new one), recording the
    /// calls under `endpoint`: (client token, session id).
    async fn sign_in(&mut self, endpoint: &str, token: &str, ticket: &str) -> (String, String) {
        let req = if token.is_empty() {
            Req::post("/v1/client/sign_ins?_is_native=1")
        } else {
            Req::post("/v1/client/sign_ins").native(token)
        };
        let form = req.form(&format!("strategy=ticket&ticket={ticket}"));
        self.measure(endpoint, form).await.signed_in()
    }

    /// Sends `req` and records the calls it made under `endpoint`.
    async fn measure(&mut self, endpoint: &str, req: Req) -> TestResponse {
        self.store.take_calls();
        let resp = self.app.send(req).await;
        assert!(
            resp.status < 500,
            "{endpoint}: {} {}",
            resp.status,
            resp.body
        );
        self.measured
            .insert(endpoint.to_string(), self.store.take_calls());
        resp
    }
}

#[tokio::test]
async fn every_endpoint_makes_the_documented_calls() {
    let Some(store) = stores::dynamodb().await else {
        return;
    };
    // A development instance, so that the dev-browser route is measured too.
    // Webhooks off, as the template deploys by default; measured on below.
    let app = TestApp::with_store(
        test_config(&[("INSTANCE_TYPE", "development"), ("WEBHOOKS", "off")]),
        store.clone(),
    )
    .await;
    let mut run = Run {
        app,
        store,
        measured: BTreeMap::new(),
    };

    let resp = run
        .measure(
            "POST /v1/users",
            Req::post("/v1/users")
                .secret()
                .json(&json!({"first_name": "Ada", "email_address": ["ada@example.com"]})),
        )
        .await;
    let user = resp.body["id"].as_str().unwrap().to_string();
    run.measure(
        "GET /v1/users/{id}",
        Req::get(format!("/v1/users/{user}")).secret(),
    )
    .await;
    run.measure(
        "PATCH /v1/users/{id}",
        Req::new("PATCH", format!("/v1/users/{user}"))
            .secret()
            .json(&json!({"public_metadata": {"plan": "pro"}})),
    )
    .await;
    let resp = run
        .measure(
            "POST /v1/sign_in_tokens",
            Req::post("/v1/sign_in_tokens")
                .secret()
                .json(&json!({"user_id": user})),
        )
        .await;
    let ticket = resp.body["token"].as_str().unwrap().to_string();

    let resp = run
        .measure(
            "POST /v1/jwt_templates",
            Req::post("/v1/jwt_templates").secret().json(&json!({"name": "hasura", "claims": {"role": "{{user.public_metadata.role || 'user'}}"}})),
        )
        .await;
    let template = resp.body["id"].as_str().unwrap().to_string();
    run.measure(
        "GET /v1/jwt_templates",
        Req::get("/v1/jwt_templates").secret(),
    )
    .await;
    run.measure(
        "GET /v1/jwt_templates/{id}",
        Req::get(format!("/v1/jwt_templates/{template}")).secret(),
    )
    .await;
    run.measure(
        "PATCH /v1/jwt_templates/{id}",
        Req::new("PATCH", format!("/v1/jwt_templates/{template}"))
            .secret()
            .json(&json!({"lifetime": 120})),
    )
    .await;
    run.measure(
        "PATCH /v1/jwt_templates/{id} (rename)",
        Req::new("PATCH", format!("/v1/jwt_templates/{template}"))
            .secret()
            .json(&json!({"name": "spare"})),
    )
    .await;
    run.measure(
        "DELETE /v1/jwt_templates/{id}",
        Req::new("DELETE", format!("/v1/jwt_templates/{template}")).secret(),
    )
    .await;
    let resp = run
        .app
        .send(
            Req::post("/v1/jwt_templates")
                .secret()
                .json(&json!({"name": "hasura", "claims": {"uid": "{{user.id}}"}})),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let resp = run
        .measure("POST /v1/client", Req::post("/v1/client?_is_native=1"))
        .await;
    let anonymous = resp.header("authorization").unwrap().to_string();
    run.measure(
        "GET /v1/client (no session)",
        Req::get("/v1/client").native(&anonymous),
    )
    .await;
    run.measure("POST /v1/dev_browser", Req::post("/v1/dev_browser"))
        .await;
    let (token, sid) = run
        .sign_in("POST /v1/client/sign_ins (ticket, new client)", "", &ticket)
        .await;
    // The same user on the client made above (a user is signed in once per client).
    let ticket = run.app.ticket(&user).await;
    let (_, second) = run
        .sign_in(
            "POST /v1/client/sign_ins (ticket, existing client)",
            &anonymous,
            &ticket,
        )
        .await;
    // A second user on the same client: the answer also needs the first user.
    let other = run
        .app
        .create_user_from(&json!({"first_name": "Grace", "email_address": ["grace@example.com"]}))
        .await;
    let ticket = run.app.ticket(&other).await;
    let (token, third) = run
        .sign_in(
            "POST /v1/client/sign_ins (ticket, client with another user)",
            &token,
            &ticket,
        )
        .await;

    run.measure("GET /v1/client", Req::get("/v1/client").native(&token))
        .await;
    // A server-rendered app's handshake for the same client, its nonce redeemed, and a
    // refresh with the grant it set.
    let resp = run
        .measure(
            "GET /v1/client/handshake",
            Req::get("/v1/client/handshake?format=nonce")
                .query("redirect_url", "https%3A%2F%2Fapp.example.com%2F")
                .cookie(&token),
        )
        .await;
    assert_eq!(resp.status, 307, "{}", resp.body);
    let location = resp.header("location").unwrap().to_string();
    let nonce = location.split("__clerk_handshake_nonce=").nth(1).unwrap();
    let resp = run
        .measure(
            "GET /v1/clients/handshake_payload",
            Req::get(format!("/v1/clients/handshake_payload?nonce={nonce}")).secret(),
        )
        .await;
    let directives: Vec<String> = serde_json::from_value(resp.ok()["directives"].clone()).unwrap();
    let cookie = |name: &str| {
        directives
            .iter()
            .find_map(|d| d.strip_prefix(&format!("{name}=")))
            .and_then(|rest| rest.split(';').next())
            .unwrap()
            .to_string()
    };
    let refresh_name = directives
        .iter()
        .find_map(|d| d.split('=').next().filter(|n| n.starts_with("__refresh_")))
        .unwrap()
        .to_string();
    let resp = run
        .measure(
            "POST /v1/sessions/{id}/refresh",
            Req::post(format!("/v1/sessions/{third}/refresh"))
                .secret()
                .json(&json!({
                    "expired_token": cookie("__session"),
                    "refresh_token": cookie(&refresh_name),
                    "request_origin": APP_ORIGIN,
                })),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    run.measure(
        "GET /v1/client/sessions/{id}",
        Req::get(format!("/v1/client/sessions/{sid}")).native(&token),
    )
    .await;
    run.measure(
        "POST /v1/client/sessions/{id}/touch",
        Req::post(format!("/v1/client/sessions/{sid}/touch"))
            .native(&token)
            .form("intent=select_session"),
    )
    .await;
    run.measure(
        "POST /v1/client/sessions/{id}/touch (already last active)",
        Req::post(format!("/v1/client/sessions/{sid}/touch"))
            .native(&token)
            .form("intent=focus"),
    )
    .await;
    run.measure(
        "POST /v1/client/sessions/{id}/tokens",
        Req::post(format!("/v1/client/sessions/{sid}/tokens")).native(&token),
    )
    .await;
    run.measure(
        "POST /v1/client/sessions/{id}/tokens/{template}",
        Req::post(format!("/v1/client/sessions/{sid}/tokens/hasura")).native(&token),
    )
    .await;
    run.measure(
        "POST /v1/client/sessions/{id}/end",
        Req::post(format!("/v1/client/sessions/{sid}/end")).native(&token),
    )
    .await;
    run.measure(
        "POST /v1/client/sessions/{id}/remove",
        Req::post(format!("/v1/client/sessions/{sid}/remove")).native(&token),
    )
    .await;
    run.measure("GET /v1/environment", Req::get("/v1/environment"))
        .await;
    run.measure(
        "PATCH /v1/environment",
        Req::post("/v1/environment?_method=PATCH"),
    )
    .await;
    run.measure(
        "GET /.well-known/jwks.json",
        Req::get("/.well-known/jwks.json"),
    )
    .await;

    run.measure(
        "GET /v1/sessions?user_id=",
        Req::get(format!("/v1/sessions?user_id={user}")).secret(),
    )
    .await;
    run.measure(
        "GET /v1/sessions?client_id=",
        Req::get(format!(
            "/v1/sessions?client_id={}",
            run.app.stored_session(&second).await.client_id
        ))
        .secret(),
    )
    .await;
    run.measure("GET /v1/sessions", Req::get("/v1/sessions").secret())
        .await;
    run.measure(
        "GET /v1/sessions/{id}",
        Req::get(format!("/v1/sessions/{second}")).secret(),
    )
    .await;
    run.measure(
        "POST /v1/sessions/{id}/tokens",
        Req::post(format!("/v1/sessions/{second}/tokens")).secret(),
    )
    .await;
    run.measure(
        "POST /v1/sessions/{id}/tokens/{template}",
        Req::post(format!("/v1/sessions/{second}/tokens/hasura")).secret(),
    )
    .await;
    run.measure(
        "POST /v1/sessions/{id}/revoke",
        Req::post(format!("/v1/sessions/{second}/revoke")).secret(),
    )
    .await;
    run.measure("GET /v1/jwks", Req::get("/v1/jwks").secret())
        .await;
    run.measure(
        "GET /v1/instance/keys",
        Req::get("/v1/instance/keys").secret(),
    )
    .await;
    run.measure(
        "POST /v1/instance/keys/rotate",
        Req::post("/v1/instance/keys/rotate").secret(),
    )
    .await;
    // Past the activity interval, one request records the activity. Moving the clock also
    // makes the keyring refresh due (one GetItem per refresh interval per process, on
    // whichever request comes first): an unmeasured request takes it.
    run.app.clock.advance_secs(2 * 3600);
    run.app.send(Req::get("/v1/environment")).await;
    run.measure(
        "POST /v1/client/sessions/{id}/tokens (activity due)",
        Req::post(format!("/v1/client/sessions/{third}/tokens")).native(&token),
    )
    .await;
    run.app.clock.advance_secs(2 * 3600);
    run.app.send(Req::get("/v1/environment")).await;
    run.measure(
        "POST /v1/client/sessions/{id}/tokens/{template} (activity due)",
        Req::post(format!("/v1/client/sessions/{third}/tokens/hasura")).native(&token),
    )
    .await;
    // The signed-in user's sessions on every device, and revoking one of them.
    let me = format!("_clerk_session_id={third}");
    let resp = run
        .measure(
            "GET /v1/me/sessions",
            Req::get(format!("/v1/me/sessions?{me}")).native(&token),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let resp = run
        .measure(
            "GET /v1/me/sessions/active",
            Req::get(format!("/v1/me/sessions/active?{me}")).native(&token),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let resp = run
        .measure(
            "POST /v1/me/sessions/{id}/revoke",
            Req::post(format!("/v1/me/sessions/{third}/revoke?{me}")).native(&token),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    run.measure(
        "DELETE /v1/client/sessions",
        Req::post("/v1/client/sessions?_method=DELETE").native(&token),
    )
    .await;

    let with_password = run
        .app
        .create_user_from(&serde_json::json!({"password": "correct horse battery staple"}))
        .await;
    let resp = run
        .measure(
            "POST /v1/users/{id}/verify_password",
            Req::post(format!("/v1/users/{with_password}/verify_password"))
                .secret()
                .json(&serde_json::json!({"password": "correct horse battery staple"})),
        )
        .await;
    assert_eq!(resp.ok()["verified"], true);
    sign_in_and_sign_up(&mut run).await;

    // A user signed in once: a ban revokes that session, a deletion ends the next one.
    let banned = run
        .app
        .create_user_from(&json!({"first_name": "Lin", "email_address": ["lin@example.com"]}))
        .await;
    let fresh = run.app.send(Req::post("/v1/client?_is_native=1")).await;
    let fresh = fresh.header("authorization").unwrap().to_string();
    let (fresh, _) = run.app.native_sign_in(&fresh, &banned).await;
    let resp = run
        .measure(
            "POST /v1/users/{id}/ban",
            Req::post(format!("/v1/users/{banned}/ban")).secret(),
        )
        .await;
    assert_eq!(resp.ok()["banned"], true);
    let resp = run
        .measure(
            "POST /v1/users/{id}/unban",
            Req::post(format!("/v1/users/{banned}/unban")).secret(),
        )
        .await;
    assert_eq!(resp.ok()["banned"], false);
    run.app.native_sign_in(&fresh, &banned).await;
    let resp = run
        .measure(
            "DELETE /v1/users/{id}",
            Req::delete(format!("/v1/users/{banned}")).secret(),
        )
        .await;
    assert_eq!(resp.ok()["deleted"], true);

    // With webhooks on (`WEBHOOKS=on`; template.yaml `Webhooks=true`): the endpoints'
    // routes, and what recording an event adds to the changes that send one.
    run.app = TestApp::with_store(test_config(&[("WEBHOOKS", "on")]), run.store.clone()).await;
    let resp = run
        .measure(
            "POST /v1/webhooks/endpoints",
            Req::post("/v1/webhooks/endpoints")
                .secret()
                .json(&json!({"url": "https://hooks.example.com/clerk"})),
        )
        .await;
    let endpoint = resp.ok()["id"].as_str().unwrap().to_string();
    run.measure(
        "GET /v1/webhooks/endpoints",
        Req::get("/v1/webhooks/endpoints").secret(),
    )
    .await;
    run.measure(
        "POST /v1/webhooks/endpoints/{id}/rotate_secret",
        Req::post(format!("/v1/webhooks/endpoints/{endpoint}/rotate_secret")).secret(),
    )
    .await;
    let ticket = run.app.ticket(&user).await;
    let (token, sid) = run
        .sign_in(
            "POST /v1/client/sign_ins (ticket, new client, webhooks on)",
            "",
            &ticket,
        )
        .await;
    run.measure(
        "POST /v1/client/sessions/{id}/end (webhooks on)",
        Req::post(format!("/v1/client/sessions/{sid}/end")).native(&token),
    )
    .await;
    let resp = run
        .measure(
            "DELETE /v1/webhooks/endpoints/{id}",
            Req::delete(format!("/v1/webhooks/endpoints/{endpoint}")).secret(),
        )
        .await;
    assert_eq!(resp.ok()["deleted"], true);

    if std::env::var_os("PRINT_CALLS").is_some() {
        for (endpoint, calls) in &run.measured {
            println!(
                "| `{endpoint}` | {} | {} |",
                format_counts(&calls.operations),
                format_counts(&units(calls))
            );
        }
    }
    item_sizes_stay_within_the_billed_units(&run.store).await;
    let documented = documented();
    assert_eq!(
        documented.keys().collect::<Vec<_>>(),
        run.measured.keys().collect::<Vec<_>>(),
        "the doc's table and this test must name the same endpoints"
    );
    for (endpoint, calls) in &run.measured {
        assert_eq!(
            documented[endpoint].operations, calls.operations,
            "DynamoDB calls of {endpoint}"
        );
        assert_eq!(
            units(&documented[endpoint]),
            units(calls),
            "request units of {endpoint}"
        );
    }
}

/// The request units above hold while every item stays within 1 KB (one write unit) and
/// a client's partition within 4 KB (one read unit for the Query of every request).
async fn item_sizes_stay_within_the_billed_units(store: &DynamoDbStore) {
    let items = store
        .client()
        .scan()
        .table_name(store.table_name())
        .send()
        .await
        .expect("scan")
        .items
        .unwrap_or_default();
    let mut largest = BTreeMap::<String, usize>::new();
    let mut partitions = BTreeMap::<String, usize>::new();
    for item in &items {
        let Some(AttributeValue::S(pk)) = item.get("pk") else {
            panic!("item without pk")
        };
        let Some(AttributeValue::S(sk)) = item.get("sk") else {
            panic!("item without sk")
        };
        let kind = sk.split('#').next().unwrap_or(sk).to_string();
        let size = shared::store::dynamodb::calls::item_bytes(item);
        let entry = largest.entry(kind).or_default();
        *entry = (*entry).max(size);
        if pk.starts_with("CLIENT#") {
            *partitions.entry(pk.clone()).or_default() += size;
        }
    }
    if std::env::var_os("PRINT_CALLS").is_some() {
        println!("largest item by kind (bytes): {largest:?}");
        println!(
            "largest client partition (bytes): {:?}",
            partitions.values().max()
        );
    }
    for (kind, size) in &largest {
        // The keyring is read once per refresh interval (at most a minute) per process,
        // and written only by rotations: a few read units a minute. Its public half is
        // what the JWKS function reads, as often.
        let limit = match kind.as_str() {
            "KEYRING" => 16 * 1024,
            "JWKS" => 4096,
            // A webhook event (its payload holds the session and its user), written once in
            // the transaction of its change, read only through the stream (free): the
            // "(webhooks on)" rows bill it by its size.
            "EVENT" => 4096,
            _ => 1024,
        };
        assert!(
            *size <= limit,
            "a {kind} item of {size} bytes costs more units"
        );
    }
    for size in partitions.values() {
        assert!(
            *size <= 4096,
            "a client partition of {size} bytes costs more than one read unit"
        );
    }
}

/// The table the store creates on a local endpoint is the table `template.yaml` defines:
/// both come from `shared::store::dynamodb::table`, and this reads the created one back.
#[tokio::test]
async fn the_created_table_matches_the_definition() {
    let Some(store) = stores::dynamodb().await else {
        return;
    };
    let definition = shared::store::dynamodb::table::cloudformation_properties();
    let described = store
        .client()
        .describe_table()
        .table_name(store.table_name())
        .send()
        .await
        .unwrap();
    let table = described.table.unwrap();
    let keys = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| -> serde_json::Value {
        schema
            .iter()
            .map(|k| json!({"AttributeName": k.attribute_name(), "KeyType": k.key_type().as_str()}))
            .collect()
    };
    assert_eq!(keys(table.key_schema()), definition["KeySchema"]);
    let attributes: serde_json::Value = table
        .attribute_definitions()
        .iter()
        .map(|a| json!({"AttributeName": a.attribute_name(), "AttributeType": a.attribute_type().as_str()}))
        .collect();
    let mut attributes = attributes.as_array().unwrap().clone();
    let mut expected = definition["AttributeDefinitions"]
        .as_array()
        .unwrap()
        .clone();
    attributes.sort_by_key(|a| a.to_string());
    expected.sort_by_key(|a| a.to_string());
    assert_eq!(attributes, expected);
    let gsis: serde_json::Value = table
        .global_secondary_indexes()
        .iter()
        .map(|g| {
            json!({
                "IndexName": g.index_name(),
                "KeySchema": keys(g.key_schema()),
                "Projection": {"ProjectionType": g.projection().and_then(|p| p.projection_type()).map(|p| p.as_str())},
            })
        })
        .collect();
    assert_eq!(gsis, definition["GlobalSecondaryIndexes"]);
    let ttl = store
        .client()
        .describe_time_to_live()
        .table_name(store.table_name())
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description.unwrap();
    assert_eq!(
        ttl.attribute_name(),
        definition["TimeToLiveSpecification"]["AttributeName"].as_str()
    );
}

/// The sign-in by identifier and sign-up routes, and the Backend API's unlock.
async fn sign_in_and_sign_up(run: &mut Run) {
    const PASSWORD: &str = "plum-tractor-vinegar-42";
    let user = run
        .app
        .create_user_from(&json!({"password": PASSWORD, "email_address": ["pat@example.com"]}))
        .await;
    let resp = run
        .measure(
            "POST /v1/client/sign_ins (password, new client)",
            Req::post("/v1/client/sign_ins")
                .native("")
                .form(&format!("identifier=pat@example.com&password={PASSWORD}")),
        )
        .await;
    assert_eq!(resp.ok()["response"]["status"], "complete");
    let signed_in = resp.header("authorization").unwrap().to_string();
    // A sign-up on a client someone is signed in on (multi-session): its answer shows
    // that session, with its user.
    let resp = run
        .measure(
            "POST /v1/client/sign_ups (client with a session)",
            Req::post("/v1/client/sign_ups")
                .native(&signed_in)
                .form(&format!(
                    "email_address=kim@example.com&password={PASSWORD}"
                )),
        )
        .await;
    assert_eq!(resp.ok()["response"]["status"], "missing_requirements");
    let resp = run
        .measure(
            "POST /v1/client/sign_ins (identifier, new client)",
            Req::post("/v1/client/sign_ins")
                .native("")
                .form("identifier=pat@example.com"),
        )
        .await;
    let token = resp.header("authorization").unwrap().to_string();
    let id = resp.ok()["response"]["id"].as_str().unwrap().to_string();
    let step = |action: &str, body: &str| {
        Req::post(format!("/v1/client/sign_ins/{id}/{action}"))
            .native(&token)
            .form(body)
    };
    run.measure(
        "GET /v1/client/sign_ins/{id}",
        Req::get(format!("/v1/client/sign_ins/{id}")).native(&token),
    )
    .await;
    run.measure(
        "POST /v1/client/sign_ins/{id}/prepare_first_factor",
        step("prepare_first_factor", "strategy=reset_password_email_code"),
    )
    .await;
    let code = run.app.mail.code("pat@example.com").unwrap();
    let resp = run
        .measure(
            "POST /v1/client/sign_ins/{id}/attempt_first_factor",
            step(
                "attempt_first_factor",
                &format!("strategy=reset_password_email_code&code={code}"),
            ),
        )
        .await;
    assert_eq!(resp.ok()["response"]["status"], "needs_new_password");
    let resp = run
        .measure(
            "POST /v1/client/sign_ins/{id}/reset_password",
            step("reset_password", "password=a-brand-new-secret-77"),
        )
        .await;
    assert_eq!(resp.ok()["response"]["status"], "complete");

    // A failed attempt, and its count cleared.
    let failed = run
        .app
        .send(
            Req::post("/v1/client/sign_ins")
                .native("")
                .form("identifier=pat@example.com&password=not-it"),
        )
        .await;
    assert_eq!(failed.status, 422, "{}", failed.body);
    run.measure(
        "POST /v1/users/{id}/unlock",
        Req::post(format!("/v1/users/{user}/unlock")).secret(),
    )
    .await;

    let resp = run
        .measure(
            "POST /v1/client/sign_ups",
            Req::post("/v1/client/sign_ups").native("").form(&format!(
                "email_address=sam@example.com&password={PASSWORD}"
            )),
        )
        .await;
    let token = resp.header("authorization").unwrap().to_string();
    let id = resp.ok()["response"]["id"].as_str().unwrap().to_string();
    run.measure(
        "GET /v1/client/sign_ups/{id}",
        Req::get(format!("/v1/client/sign_ups/{id}")).native(&token),
    )
    .await;
    run.measure(
        "PATCH /v1/client/sign_ups/{id}",
        Req::new("PATCH", format!("/v1/client/sign_ups/{id}"))
            .native(&token)
            .form("first_name=Sam"),
    )
    .await;
    run.measure(
        "POST /v1/client/sign_ups/{id}/prepare_verification",
        Req::post(format!("/v1/client/sign_ups/{id}/prepare_verification"))
            .native(&token)
            .form("strategy=email_code"),
    )
    .await;
    let code = run.app.mail.code("sam@example.com").unwrap();
    let resp = run
        .measure(
            "POST /v1/client/sign_ups/{id}/attempt_verification",
            Req::post(format!("/v1/client/sign_ups/{id}/attempt_verification"))
                .native(&token)
                .form(&format!("strategy=email_code&code={code}")),
        )
        .await;
    assert_eq!(resp.ok()["response"]["status"], "complete");
}
