//! `template.yaml` and the code must agree: every route API Gateway sends to a function
//! is a route that function's binary serves, and every function has a binary.

use std::collections::BTreeSet;
use std::path::Path;

use serde_norway::Value;

fn template() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(&path).expect("template.yaml");
    serde_norway::from_str(&text).expect("template.yaml parses")
}

/// (method, path, binary) for every HttpApi event of every function in the template.
fn template_routes(t: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    let resources = t["Resources"].as_mapping().expect("Resources");
    for (_, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("Binary")
            .to_string();
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (_, event) in events {
            assert_eq!(event["Type"].as_str(), Some("HttpApi"));
            let method = event["Properties"]["Method"]
                .as_str()
                .expect("Method")
                .to_string();
            let path = event["Properties"]["Path"]
                .as_str()
                .expect("Path")
                .to_string();
            assert!(
                out.insert((method.clone(), path.clone(), binary.clone())),
                "duplicate route {method} {path}"
            );
        }
    }
    out
}

#[test]
fn template_routes_equal_the_route_table() {
    let from_template = template_routes(&template());
    let from_code: BTreeSet<(String, String, String)> = shared::routes::gateway_routes()
        .into_iter()
        .map(|(m, p, f)| (m, p.to_string(), f.to_string()))
        .collect();
    let missing: Vec<_> = from_code.difference(&from_template).collect();
    let extra: Vec<_> = from_template.difference(&from_code).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "not in template.yaml: {missing:?}\nnot in the route table: {extra:?}"
    );
}

#[test]
fn every_function_has_a_binary_and_a_template_resource() {
    let t = template();
    let binaries: BTreeSet<String> = template_routes(&t).into_iter().map(|(_, _, b)| b).collect();
    let bin_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&bin_dir)
        .expect("src/bin")
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".rs")
                .map(str::to_string)
        })
        .collect();
    let in_code: BTreeSet<String> = shared::routes::functions()
        .into_iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        binaries, in_code,
        "template functions vs route table functions"
    );
    assert_eq!(on_disk, in_code, "src/bin files vs route table functions");
    for name in &on_disk {
        let src = std::fs::read_to_string(bin_dir.join(format!("{name}.rs"))).expect("bin source");
        assert!(
            src.contains(&format!("functions::run(\"{name}\")")),
            "{name}.rs must run function {name}"
        );
    }
}

/// `{session_id}`, `{id}`, `{template}`… all become `{}`, so paths compare by shape.
fn path_shape(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "{}" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

/// The calls table of docs/dynamodb.md: (method, path shape) → operations.
fn documented_calls() -> std::collections::BTreeMap<(String, String), BTreeSet<String>> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/dynamodb.md"))
            .expect("docs/dynamodb.md");
    let table = doc
        .split("<!-- calls:start -->")
        .nth(1)
        .and_then(|r| r.split("<!-- calls:end -->").next())
        .expect("markers");
    let mut out: std::collections::BTreeMap<(String, String), BTreeSet<String>> =
        Default::default();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let endpoint = cells[1].trim_matches('`');
        let endpoint = endpoint.split(" (").next().unwrap_or(endpoint);
        let (method, path) = endpoint.split_once(' ').expect("METHOD path");
        let path = path.split('?').next().unwrap_or(path);
        let ops = out
            .entry((method.to_string(), path_shape(path)))
            .or_default();
        for part in cells[2]
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty() && *p != "none")
        {
            ops.insert(part.rsplit_once(' ').expect("Operation N").0.to_string());
        }
    }
    out
}

#[test]
fn the_table_matches_its_single_definition() {
    let t = template();
    let table = &t["Resources"]["SessionTable"];
    assert_eq!(table["Type"].as_str(), Some("AWS::DynamoDB::Table"));
    let properties: serde_json::Value = serde_json::to_value(&table["Properties"]).expect("JSON");
    let definition = shared::store::dynamodb::table::cloudformation_properties();
    for (key, expected) in definition.as_object().expect("object") {
        assert_eq!(&properties[key], expected, "SessionTable.Properties.{key}");
    }
}

/// Least privilege, checked: each function may call exactly the DynamoDB actions its
/// endpoints make (per docs/dynamodb.md, itself held to the code by a test) plus the
/// start-up reads and writes of the instance keys.
#[test]
fn each_functions_iam_actions_are_what_its_code_calls() {
    let t = template();
    let calls = documented_calls();
    for (name, resource) in t["Resources"].as_mapping().expect("Resources") {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let name = name.as_str().unwrap_or_default();
        let mut needed: BTreeSet<String> = ["dynamodb:GetItem", "dynamodb:PutItem"]
            .map(String::from)
            .into();
        let mut index_needed = false;
        for (_, event) in resource["Properties"]["Events"]
            .as_mapping()
            .expect("Events")
        {
            let method = event["Properties"]["Method"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let path = path_shape(event["Properties"]["Path"].as_str().unwrap_or_default());
            let ops = calls
                .get(&(method.clone(), path.clone()))
                .or_else(|| {
                    (method == "POST")
                        .then(|| calls.get(&("DELETE".to_string(), path.clone())))
                        .flatten()
                })
                .unwrap_or_else(|| panic!("docs/dynamodb.md has no calls row for {method} {path}"));
            for op in ops {
                // Items in a transaction are authorised by their own action
                // (`TransactWriteItems/Update` needs `UpdateItem`), not by the call itself.
                match op.split_once('/') {
                    Some((_, item)) => needed.insert(format!("dynamodb:{item}Item")),
                    None if op == "TransactWriteItems" => false,
                    None => needed.insert(format!("dynamodb:{op}")),
                };
            }
            index_needed |= path == "/v1/sessions" && method == "GET";
        }
        let mut granted = BTreeSet::new();
        let mut index_granted = false;
        for policy in resource["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            for statement in policy["Statement"].as_sequence().into_iter().flatten() {
                let on_index = serde_json::to_string(&statement["Resource"])
                    .unwrap_or_default()
                    .contains("/index/");
                for action in statement["Action"].as_sequence().into_iter().flatten() {
                    let action = action.as_str().unwrap_or_default().to_string();
                    if on_index {
                        assert_eq!(action, "dynamodb:Query", "{name}: only Query on indexes");
                        index_granted = true;
                    } else {
                        granted.insert(action);
                    }
                }
            }
        }
        assert_eq!(granted, needed, "{name}: IAM actions on the table");
        assert_eq!(index_granted, index_needed, "{name}: Query on gsi1");
    }
}

/// Per-caller limits are an option (CloudFront + WAF, off by default); the token routes and
/// anonymous client creation have API Gateway buckets of their own either way.
#[test]
fn rate_limiting_option_is_wired() {
    let t = template();
    let param = &t["Parameters"]["EdgeRateLimiting"];
    assert_eq!(param["Default"].as_str(), Some("false"));
    for name in ["EdgeWebAcl", "EdgeDistribution"] {
        assert_eq!(
            t["Resources"][name]["Condition"].as_str(),
            Some("EdgeOn"),
            "{name} exists only with the option on"
        );
    }
    let acl = &t["Resources"]["EdgeWebAcl"]["Properties"];
    assert_eq!(acl["Scope"].as_str(), Some("CLOUDFRONT"));
    let rules = acl["Rules"].as_sequence().expect("rules");
    let mut scopes = Vec::new();
    for rule in rules {
        let rate = &rule["Statement"]["RateBasedStatement"];
        assert_eq!(rate["AggregateKeyType"].as_str(), Some("IP"), "per caller");
        let block = &rule["Action"]["Block"]["CustomResponse"];
        assert_eq!(block["ResponseCode"].as_u64(), Some(429));
        scopes.push(
            serde_json::to_string(&serde_json::to_value(&rate["ScopeDownStatement"]).unwrap())
                .unwrap(),
        );
    }
    assert_eq!(rules.len(), 3);
    assert!(scopes.iter().any(|s| s.contains("/tokens")));
    assert!(scopes
        .iter()
        .any(|s| s.contains("/v1/client") && s.contains("/v1/dev_browser")));
    assert!(
        scopes.iter().any(|s| s == "null"),
        "one rule for every route"
    );
    let body = acl["CustomResponseBodies"]["too-many-requests"]["Content"]
        .as_str()
        .expect("body");
    let body: serde_json::Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(body["errors"][0]["code"], "too_many_requests");

    // Route buckets name real routes: the four token routes and the two client creators.
    let settings = t["Resources"]["HttpApi"]["Properties"]["RouteSettings"]
        .as_mapping()
        .expect("RouteSettings");
    let routes: BTreeSet<String> = shared::routes::gateway_routes()
        .into_iter()
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    let keys: BTreeSet<String> = settings
        .keys()
        .map(|k| k.as_str().expect("key").to_string())
        .collect();
    for key in &keys {
        assert!(routes.contains(key), "RouteSettings names no route: {key}");
    }
    let tokens = keys.iter().filter(|k| k.contains("/tokens")).count();
    assert_eq!(tokens, 4);
    assert!(keys.contains("POST /v1/client") && keys.contains("POST /v1/dev_browser"));

    // With the option on, CloudFront adds the secret the functions require, so the
    // execute-api URL cannot bypass the web ACL.
    let origin =
        &t["Resources"]["EdgeDistribution"]["Properties"]["DistributionConfig"]["Origins"][0];
    assert_eq!(
        origin["OriginCustomHeaders"][0]["HeaderName"].as_str(),
        Some("x-origin-verify")
    );
    let secret = &t["Globals"]["Function"]["Environment"]["Variables"]["ORIGIN_VERIFY_SECRET"];
    assert!(
        matches!(secret, Value::Tagged(tagged) if tagged.tag == "If"),
        "ORIGIN_VERIFY_SECRET is set only with the option on"
    );

    // Instance type and anonymous lifetime reach the functions.
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    let reference = |v: &Value| match v {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str().map(str::to_string),
        _ => None,
    };
    assert_eq!(
        reference(&env["INSTANCE_TYPE"]).as_deref(),
        Some("InstanceType")
    );
    assert_eq!(
        t["Parameters"]["InstanceType"]["Default"].as_str(),
        Some("production")
    );
    assert_eq!(
        reference(&env["ANONYMOUS_CLIENT_LIFETIME_SECONDS"]).as_deref(),
        Some("AnonymousClientLifetimeSeconds")
    );
}
