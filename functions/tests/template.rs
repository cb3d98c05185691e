//! `template.yaml` and the code must agree: every route API Gateway sends to a function
//! is a route that function's binary serves, and every function has a binary.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_norway::Value;

/// Serves the public keys: reads only the JWKS item, never the keyring.
const JWKS_FUNCTION: &str = "FapiJwksFunction";
/// Serves a static document: neither the table nor the keys.
const ENVIRONMENT_FUNCTION: &str = "FapiEnvironmentFunction";
/// Runs on a schedule, not behind the HTTP API.
const KEY_ROTATION_FUNCTION: &str = "KeyRotationFunction";
/// Fed by the table's stream and the delivery queue (Webhooks=true only), with a role of
/// its own.
const WEBHOOKS_FUNCTION: &str = "WebhooksFunction";

/// Every other function signs or verifies, so loads the keyring at start-up.
fn signs_or_verifies(function: &str) -> bool {
    function != JWKS_FUNCTION && function != ENVIRONMENT_FUNCTION
}

/// The target of a `!GetAtt`, e.g. `KeyringKey.Arn`.
fn get_att(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == "GetAtt" => t.value.as_str(),
        _ => None,
    }
}

/// The parameter a `!Ref` names.
fn reference(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        _ => None,
    }
}

/// The functions of the template: (logical id, resource).
fn functions(t: &Value) -> Vec<(&str, &Value)> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(name, r)| (name.as_str().expect("logical id"), r))
        .collect()
}

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
            match event["Type"].as_str() {
                Some("HttpApi") => {}
                Some("ScheduleV2" | "DynamoDB" | "SQS") => continue,
                other => panic!("{binary}: unexpected event type {other:?}"),
            }
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
    let t = template();
    let paste: Vec<String> = missing
        .iter()
        .map(|(method, path, binary)| event_block(&t, method, path, binary))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "template.yaml lacks {} route(s) of the route table (shared/src/route_table.rs); \
         paste each block below into its function's `Properties.Events`:\n\n{}\n\
         routes in template.yaml that the route table does not serve (remove them, or add \
         their rows): {extra:?}",
        missing.len(),
        paste.join("\n")
    );
}

/// The `Events` entry template.yaml needs for a route, ready to paste: named for its
/// endpoint (a tunnelled DELETE or PATCH's POST twin: `…Tunnelled`).
fn event_block(t: &Value, method: &str, path: &str, binary: &str) -> String {
    let route = shared::routes::routes()
        .find(|(f, r)| f.name == binary && r.path == path && r.method.as_str() == method)
        .or_else(|| {
            shared::routes::routes().find(|(f, r)| {
                f.name == binary
                    && r.path == path
                    && matches!(r.method.as_str(), "DELETE" | "PATCH")
            })
        });
    // The comment goes above the name, so the block is YAML as printed.
    let (comment, name) = match route {
        Some((_, r)) if r.method.as_str() == method => {
            (String::new(), r.endpoint.name().to_string())
        }
        Some((_, r)) => (
            format!(
                "        # clerk-js sends this {} as POST with `_method={}`.\n",
                r.method, r.method
            ),
            format!("{}Tunnelled", r.endpoint.name()),
        ),
        None => (String::new(), "NewRoute".to_string()),
    };
    let function = functions(t)
        .into_iter()
        .find(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary))
        .map_or_else(
            || format!("a new function with Binary: {binary}"),
            |(id, _)| id.to_string(),
        );
    format!(
        "# under {function}, Properties.Events:\n{comment}        {name}:\n          Type: HttpApi\n          \
         Properties:\n            ApiId: !Ref HttpApi\n            Method: {method}\n            \
         Path: {path}\n"
    )
}

#[test]
fn every_function_has_a_binary_and_a_template_resource() {
    let t = template();
    let binaries: BTreeSet<String> = template_routes(&t).into_iter().map(|(_, _, b)| b).collect();
    // Functions without routes (key rotation) run on a schedule and have a binary too.
    let mut all_binaries = BTreeSet::new();
    for (name, resource) in functions(&t) {
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("Binary");
        all_binaries.insert(binary.to_string());
        if !binaries.contains(binary) {
            let scheduled_or_fed = resource["Properties"]["Events"]
                .as_mapping()
                .into_iter()
                .flatten()
                .any(|(_, e)| {
                    matches!(e["Type"].as_str(), Some("ScheduleV2" | "DynamoDB" | "SQS"))
                });
            assert!(
                scheduled_or_fed,
                "{name} has neither a route, a schedule nor an event source"
            );
        }
    }
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
    assert_eq!(on_disk, all_binaries, "src/bin files vs template functions");
    for name in &in_code {
        let src = std::fs::read_to_string(bin_dir.join(format!("{name}.rs"))).expect("bin source");
        // `fapi-jwks` runs `routes::FAPI_JWKS`, whose name is `fapi-jwks`.
        let table = name.to_uppercase().replace('-', "_");
        assert!(
            src.contains(&format!("functions::run(&shared::routes::{table})")),
            "{name}.rs must run routes::{table}"
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
/// endpoints make (per docs/dynamodb.md, itself held to the code by a test) plus what it
/// does at start-up: a function that signs or verifies reads the keyring and creates it if
/// missing (GetItem + PutItem on the table, kms:Decrypt + kms:GenerateDataKey on the
/// keyring's KMS key); the JWKS function reads the public-keys item only; the environment
/// function has no policy.
#[test]
fn each_functions_iam_actions_are_what_its_code_calls() {
    let t = template();
    let calls = documented_calls();
    for (name, resource) in functions(&t) {
        if name == WEBHOOKS_FUNCTION {
            // A role of its own: the_webhooks_function_holds_exactly_what_it_calls.
            continue;
        }
        let base: &[&str] = match name {
            // Keyring read, template list (the longest token lifetime), keyring write.
            KEY_ROTATION_FUNCTION => &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
            JWKS_FUNCTION => &["dynamodb:GetItem"],
            ENVIRONMENT_FUNCTION => &[],
            _ => &["dynamodb:GetItem", "dynamodb:PutItem"],
        };
        let mut needed: BTreeSet<String> = base.iter().copied().map(String::from).collect();
        let mut index_needed = false;
        for (_, event) in resource["Properties"]["Events"]
            .as_mapping()
            .expect("Events")
        {
            // Only HTTP routes have a calls row; the schedule's calls are the base above.
            if event["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let method = event["Properties"]["Method"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let path = path_shape(event["Properties"]["Path"].as_str().unwrap_or_default());
            let ops = calls
                .get(&(method.clone(), path.clone()))
                // A POST twin carries a tunnelled DELETE or PATCH.
                .or_else(|| {
                    (method == "POST")
                        .then(|| {
                            calls
                                .get(&("DELETE".to_string(), path.clone()))
                                .or_else(|| calls.get(&("PATCH".to_string(), path.clone())))
                        })
                        .flatten()
                })
                .unwrap_or_else(|| {
                    panic!(
                        "docs/dynamodb.md has no calls row for {method} {path}: the test \
                         every_route_has_a_calls_row_and_every_row_a_measurement (cargo test -p \
                         shared --test suite) prints the row to paste"
                    )
                });
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
        let kms_needed: BTreeSet<String> = if signs_or_verifies(name) {
            ["kms:Decrypt", "kms:GenerateDataKey"]
                .map(String::from)
                .into()
        } else {
            BTreeSet::new()
        };
        if name == ENVIRONMENT_FUNCTION {
            assert!(
                resource["Properties"].get("Policies").is_none(),
                "{name}: no policy at all"
            );
        }
        let mut granted = BTreeSet::new();
        let mut kms_granted = BTreeSet::new();
        let mut index_granted = false;
        for policy in resource["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            for statement in policy["Statement"].as_sequence().into_iter().flatten() {
                let actions: Vec<String> = statement["Action"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .map(|a| a.as_str().unwrap_or_default().to_string())
                    .collect();
                // Codes by email: only the functions that send them, SES's SendEmail alone.
                if actions.iter().any(|a| a.starts_with("ses:")) {
                    assert_eq!(actions, ["ses:SendEmail"], "{name}: SES statement");
                    assert!(
                        ["FapiSignInsFunction", "FapiSignUpsFunction"].contains(&name),
                        "{name} sends no email"
                    );
                    continue;
                }
                if actions.iter().any(|a| a.starts_with("kms:")) {
                    assert!(
                        actions.iter().all(|a| a.starts_with("kms:")),
                        "{name}: KMS actions have a statement of their own"
                    );
                    let resources = statement["Resource"].as_sequence().expect("Resource");
                    assert!(
                        !resources.is_empty()
                            && resources
                                .iter()
                                .all(|r| get_att(r) == Some("KeyringKey.Arn")),
                        "{name}: KMS actions on the keyring key only"
                    );
                    kms_granted.extend(actions);
                    continue;
                }
                let on_index = serde_json::to_string(&statement["Resource"])
                    .unwrap_or_default()
                    .contains("/index/");
                if name == JWKS_FUNCTION {
                    let leading_keys: Vec<&str> = statement["Condition"]
                        ["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
                        .as_sequence()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    assert_eq!(
                        leading_keys,
                        ["JWKS"],
                        "{name}: reads the public-keys item only"
                    );
                }
                for action in actions {
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
        assert_eq!(kms_granted, kms_needed, "{name}: KMS actions");
    }
}

/// The webhooks function's role grants exactly what it calls, each on its one resource:
/// its two event sources (the table's stream; the delivery queue, which it also sends to
/// and re-times), the endpoints' Query, kms:Decrypt of their secrets, and its logs.
#[test]
fn the_webhooks_function_holds_exactly_what_it_calls() {
    let t = template();
    let function = &t["Resources"][WEBHOOKS_FUNCTION];
    assert_eq!(function["Condition"].as_str(), Some("WebhooksOn"));
    assert_eq!(
        get_att(&function["Properties"]["Role"]),
        Some("WebhooksFunctionRole.Arn")
    );
    assert!(function["Properties"].get("Policies").is_none());
    let role = &t["Resources"]["WebhooksFunctionRole"];
    let mut granted = BTreeSet::new();
    for policy in role["Properties"]["Policies"]
        .as_sequence()
        .expect("Policies")
    {
        for statement in policy["PolicyDocument"]["Statement"]
            .as_sequence()
            .expect("Statement")
        {
            assert_eq!(statement["Effect"].as_str(), Some("Allow"));
            let resources: Vec<String> = statement["Resource"]
                .as_sequence()
                .expect("Resource")
                .iter()
                .map(|r| get_att(r).expect("a resource of the template").to_string())
                .collect();
            for action in statement["Action"].as_sequence().expect("Action") {
                for resource in &resources {
                    granted.insert((action.as_str().unwrap().to_string(), resource.clone()));
                }
            }
        }
    }
    let mut expected = BTreeSet::new();
    let mut add = |actions: &[&str], resource: &str| {
        for a in actions {
            expected.insert((a.to_string(), resource.to_string()));
        }
    };
    add(
        &["logs:CreateLogStream", "logs:PutLogEvents"],
        "WebhooksLogGroup.Arn",
    );
    add(
        &[
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
            "dynamodb:ListStreams",
        ],
        "SessionTable.StreamArn",
    );
    add(&["dynamodb:Query"], "SessionTable.Arn");
    add(
        &[
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:SendMessage",
            "sqs:ChangeMessageVisibility",
        ],
        "WebhookDeliveryQueue.Arn",
    );
    add(&["kms:Decrypt"], "KeyringKey.Arn");
    assert_eq!(granted, expected);

    // The queue dead-letters after as many receives as the schedule has attempts.
    let queue = &t["Resources"]["WebhookDeliveryQueue"]["Properties"];
    assert_eq!(
        queue["RedrivePolicy"]["maxReceiveCount"].as_u64(),
        Some(u64::from(
            shared::webhooks::RetrySchedule::default().attempts()
        ))
    );
    assert_eq!(queue["FifoQueue"].as_bool(), Some(true));
    let deliveries = &function["Properties"]["Events"]["Deliveries"]["Properties"];
    assert_eq!(deliveries["BatchSize"].as_u64(), Some(1));
    // Every function records events when webhooks are on.
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(reference(&env["WEBHOOKS"]), Some("Webhooks"));
}

/// Only the Backend API checks the secret key, so only its function gets it.
#[test]
fn backend_api_secret_key_reaches_only_the_backend_api() {
    let t = template();
    let globals = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert!(
        globals.get("BACKEND_API_SECRET_KEY").is_none(),
        "not a global variable"
    );
    let json = |v: &Value| serde_json::to_string(v).expect("JSON");
    assert!(!json(&t["Globals"]).contains("BackendApiSecretKey"));
    let mut holders = Vec::new();
    for (name, resource) in t["Resources"].as_mapping().expect("Resources") {
        let name = name.as_str().expect("logical id");
        let variable =
            &resource["Properties"]["Environment"]["Variables"]["BACKEND_API_SECRET_KEY"];
        if !variable.is_null() {
            assert_eq!(reference(variable), Some("BackendApiSecretKey"), "{name}");
            holders.push(name);
        }
        if name != "BackendApiFunction" {
            assert!(
                !json(resource).contains("BackendApiSecretKey"),
                "{name} must not see the Backend API secret"
            );
        }
    }
    assert_eq!(holders, ["BackendApiFunction"]);
}

/// A scalar as CloudFormation compares it: a string.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// Evaluates the intrinsics the schedule uses (`!If`, `!Sub`, `!Ref`) for the given
/// parameter values.
fn evaluate(t: &Value, v: &Value, params: &BTreeMap<&str, String>) -> String {
    let Value::Tagged(tagged) = v else {
        return scalar(v);
    };
    let args = &tagged.value;
    if tagged.tag == "If" {
        let name = args[0].as_str().expect("condition name");
        let branch = if condition(t, name, params) { 1 } else { 2 };
        evaluate(t, &args[branch], params)
    } else if tagged.tag == "Sub" {
        let mut text = args.as_str().expect("!Sub string").to_string();
        for (param, value) in params {
            text = text.replace(&format!("${{{param}}}"), value);
        }
        assert!(!text.contains("${"), "unresolved !Sub: {text}");
        text
    } else if tagged.tag == "Ref" {
        let param = args.as_str().expect("!Ref name");
        params
            .get(param)
            .cloned()
            .unwrap_or_else(|| panic!("no value for {param}"))
    } else {
        panic!("intrinsic not evaluated here: {}", tagged.tag)
    }
}

/// A named condition of the template, for the given parameter values.
fn condition(t: &Value, name: &str, params: &BTreeMap<&str, String>) -> bool {
    fn holds(t: &Value, v: &Value, params: &BTreeMap<&str, String>) -> bool {
        let Value::Tagged(tagged) = v else {
            panic!("not a condition: {v:?}");
        };
        let args = tagged.value.as_sequence();
        if tagged.tag == "Equals" {
            let args = args.expect("!Equals list");
            evaluate(t, &args[0], params) == evaluate(t, &args[1], params)
        } else if tagged.tag == "Not" {
            !holds(t, &args.expect("!Not list")[0], params)
        } else if tagged.tag == "And" {
            args.expect("!And list").iter().all(|a| holds(t, a, params))
        } else if tagged.tag == "Or" {
            args.expect("!Or list").iter().any(|a| holds(t, a, params))
        } else if tagged.tag == "Condition" {
            condition(t, tagged.value.as_str().expect("name"), params)
        } else {
            panic!("condition function not evaluated here: {}", tagged.tag)
        }
    }
    holds(t, &t["Conditions"][name], params)
}

/// Key rotation runs on an EventBridge Scheduler schedule every KeyRotationIntervalDays
/// (`rate(1 day)`, `rate(N days)`; 0 leaves it disabled), and every function knows the
/// keyring's KMS key and the JWKS cache window.
#[test]
fn key_rotation_schedule_is_wired() {
    let t = template();
    let days = &t["Parameters"]["KeyRotationIntervalDays"];
    assert_eq!(days["Type"].as_str(), Some("Number"));
    assert_eq!(days["Default"].as_u64(), Some(90));
    assert_eq!(days["MinValue"].as_u64(), Some(0));
    assert_eq!(days["MaxValue"].as_u64(), Some(3650));
    let window = &t["Parameters"]["JwksCacheWindowSeconds"];
    assert_eq!(window["Type"].as_str(), Some("Number"));
    assert_eq!(window["Default"].as_u64(), Some(300));
    assert_eq!(window["MinValue"].as_u64(), Some(0));
    assert_eq!(window["MaxValue"].as_u64(), Some(86400));

    let function = &t["Resources"][KEY_ROTATION_FUNCTION];
    assert_eq!(
        function["Metadata"]["BuildProperties"]["Binary"].as_str(),
        Some("key-rotation")
    );
    let events: Vec<&Value> = function["Properties"]["Events"]
        .as_mapping()
        .expect("Events")
        .values()
        .collect();
    assert_eq!(events.len(), 1, "one schedule, no routes");
    let event = events[0];
    assert_eq!(event["Type"].as_str(), Some("ScheduleV2"));
    let schedule = &event["Properties"];
    // Without it SAM names the schedule after the event, and a second stack collides.
    assert_eq!(schedule["OmitName"].as_bool(), Some(true));
    let input: serde_json::Value =
        serde_json::from_str(schedule["Input"].as_str().expect("Input")).expect("JSON");
    assert_eq!(input, serde_json::json!({"keys": "all"}));
    for (value, expression, state) in [
        ("0", "rate(365 days)", "DISABLED"),
        ("1", "rate(1 day)", "ENABLED"),
        ("2", "rate(2 days)", "ENABLED"),
        ("90", "rate(90 days)", "ENABLED"),
        ("3650", "rate(3650 days)", "ENABLED"),
    ] {
        let params = BTreeMap::from([("KeyRotationIntervalDays", value.to_string())]);
        assert_eq!(
            evaluate(&t, &schedule["ScheduleExpression"], &params),
            expression,
            "KeyRotationIntervalDays={value}"
        );
        assert_eq!(
            evaluate(&t, &schedule["State"], &params),
            state,
            "KeyRotationIntervalDays={value}"
        );
    }

    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(
        get_att(&env["KEY_ENCRYPTION_KMS_KEY_ID"]),
        Some("KeyringKey.Arn")
    );
    assert_eq!(
        reference(&env["JWKS_CACHE_WINDOW_SECONDS"]),
        Some("JwksCacheWindowSeconds")
    );

    // The keyring key: symmetric, rotated by KMS, kept with the table; its policy only
    // hands control to the account's IAM.
    let key = &t["Resources"]["KeyringKey"];
    assert_eq!(key["Type"].as_str(), Some("AWS::KMS::Key"));
    assert_eq!(key["DeletionPolicy"].as_str(), Some("Retain"));
    assert_eq!(key["UpdateReplacePolicy"].as_str(), Some("Retain"));
    let properties = &key["Properties"];
    assert_eq!(properties["KeyUsage"].as_str(), Some("ENCRYPT_DECRYPT"));
    assert_eq!(properties["KeySpec"].as_str(), Some("SYMMETRIC_DEFAULT"));
    assert_eq!(properties["EnableKeyRotation"].as_bool(), Some(true));
    let statements = properties["KeyPolicy"]["Statement"]
        .as_sequence()
        .expect("key policy");
    assert_eq!(
        statements.len(),
        1,
        "the account root statement and nothing else"
    );
    let root = serde_json::to_string(&statements[0]["Principal"]["AWS"]).expect("JSON");
    assert!(
        root.contains(":root"),
        "principal is the account root: {root}"
    );
    assert_eq!(
        get_att(&t["Outputs"]["KeyringKeyArn"]["Value"]),
        Some("KeyringKey.Arn")
    );
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
    assert!(
        keys.contains("GET /v1/client/handshake")
            && keys.contains("POST /v1/sessions/{session_id}/refresh"),
        "the other routes that sign a session token"
    );
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
    assert_eq!(reference(&env["INSTANCE_TYPE"]), Some("InstanceType"));
    assert_eq!(
        t["Parameters"]["InstanceType"]["Default"].as_str(),
        Some("production")
    );
    assert_eq!(
        reference(&env["ANONYMOUS_CLIENT_LIFETIME_SECONDS"]),
        Some("AnonymousClientLifetimeSeconds")
    );
}

/// The alarms of the template: (logical id, properties).
fn alarms(t: &Value) -> Vec<(&str, &Value)> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .map(|(name, r)| (name.as_str().expect("logical id"), &r["Properties"]))
        .collect()
}

/// The text of a plain string or of a `!Sub` string.
fn text(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == "Sub" => t.value.as_str(),
        other => other.as_str(),
    }
}

/// A `Dimensions` list as (name, value) pairs, the value a `!Ref` target or a literal.
fn dimensions(metric: &Value) -> Vec<(&str, &str)> {
    metric["Dimensions"]
        .as_sequence()
        .expect("Dimensions")
        .iter()
        .map(|d| {
            let value = reference(&d["Value"])
                .or_else(|| d["Value"].as_str())
                .expect("dimension value");
            (d["Name"].as_str().expect("dimension name"), value)
        })
        .collect()
}

/// A metric an alarm reads: (id, namespace, metric name, dimensions).
type AlarmMetric<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, &'a str)>);

/// The metrics a metric-math alarm reads, and the expression it alarms on.
fn alarm_metrics(alarm: &Value) -> (Vec<AlarmMetric<'_>>, &str) {
    let mut metrics = Vec::new();
    let mut expressions = Vec::new();
    for query in alarm["Metrics"].as_sequence().expect("Metrics") {
        let id = query["Id"].as_str().expect("Id");
        if let Some(expression) = query["Expression"].as_str() {
            assert_eq!(query["ReturnData"].as_bool(), Some(true), "{id}");
            expressions.push(expression);
            continue;
        }
        assert_eq!(query["ReturnData"].as_bool(), Some(false), "{id}");
        let metric = &query["MetricStat"]["Metric"];
        metrics.push((
            id,
            metric["Namespace"].as_str().expect("Namespace"),
            metric["MetricName"].as_str().expect("MetricName"),
            dimensions(metric),
        ));
    }
    assert_eq!(expressions.len(), 1, "one expression, the one alarmed on");
    assert!(
        metrics.len() <= 10,
        "CloudWatch reads at most 10 metrics per alarm"
    );
    for (id, ..) in &metrics {
        assert!(expressions[0].contains(id), "{id} is not in the expression");
    }
    (metrics, expressions[0])
}

/// GitHub's anchor of a Markdown heading: lower case, spaces to hyphens, and only letters,
/// digits, `-` and `_` kept.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every function has three alarms, named after it, on its own Lambda metrics: errors and
/// throttles (any at all), and a p99 duration above `DurationP99AlarmMilliseconds` (the key
/// rotation, which generates RSA keys, against a fixed share of its timeout instead).
#[test]
fn every_function_has_errors_throttles_and_duration_alarms() {
    let t = template();
    let functions = functions(&t);
    // The route table's functions, plus key rotation and webhooks (no routes).
    assert_eq!(
        functions.len(),
        shared::routes::FUNCTIONS.len() + 2,
        "template.yaml's functions: one per function of the route table, plus \
         KeyRotationFunction and WebhooksFunction"
    );
    let mut expected = BTreeSet::new();
    for (name, function) in &functions {
        for (suffix, metric) in [
            ("ErrorsAlarm", "Errors"),
            ("ThrottlesAlarm", "Throttles"),
            ("DurationAlarm", "Duration"),
        ] {
            let id = format!("{name}{suffix}");
            let alarm = &t["Resources"][id.as_str()];
            assert_eq!(
                alarm["Type"].as_str(),
                Some("AWS::CloudWatch::Alarm"),
                "{id}"
            );
            let p = &alarm["Properties"];
            assert_eq!(p["Namespace"].as_str(), Some("AWS/Lambda"), "{id}");
            assert_eq!(p["MetricName"].as_str(), Some(metric), "{id}");
            assert_eq!(dimensions(p), [("FunctionName", *name)], "{id}");
            if metric == "Duration" {
                assert_eq!(p["ExtendedStatistic"].as_str(), Some("p99"), "{id}");
                assert!(p.get("Statistic").is_none(), "{id}");
                assert_eq!(
                    p["ComparisonOperator"].as_str(),
                    Some("GreaterThanThreshold"),
                    "{id}"
                );
                if *name == KEY_ROTATION_FUNCTION || *name == WEBHOOKS_FUNCTION {
                    let timeout_ms =
                        function["Properties"]["Timeout"].as_f64().expect("Timeout") * 1000.0;
                    let threshold = p["Threshold"].as_f64().expect("Threshold");
                    assert!(threshold < timeout_ms, "{id}: under the timeout");
                } else {
                    assert_eq!(
                        reference(&p["Threshold"]),
                        Some("DurationP99AlarmMilliseconds"),
                        "{id}"
                    );
                }
            } else {
                assert_eq!(p["Statistic"].as_str(), Some("Sum"), "{id}");
                assert_eq!(
                    p["ComparisonOperator"].as_str(),
                    Some("GreaterThanOrEqualToThreshold"),
                    "{id}"
                );
                assert_eq!(p["Threshold"].as_f64(), Some(1.0), "{id}");
            }
            expected.insert(id);
        }
    }
    // And no Lambda alarm watches anything else.
    let lambda_alarms: BTreeSet<String> = alarms(&t)
        .into_iter()
        .filter(|(_, p)| p["Namespace"].as_str() == Some("AWS/Lambda"))
        .map(|(id, _)| id.to_string())
        .collect();
    assert_eq!(lambda_alarms, expected);
    let param = &t["Parameters"]["DurationP99AlarmMilliseconds"];
    assert_eq!(param["Type"].as_str(), Some("Number"));
    assert_eq!(param["Default"].as_u64(), Some(1000));
}

/// Every alarm notifies the `AlarmTopicArn` topic when one is given (on ALARM and on OK),
/// stays OK without data, and links its section of the runbook.
#[test]
fn every_alarm_notifies_the_alarm_topic_and_links_its_runbook() {
    let t = template();
    let param = &t["Parameters"]["AlarmTopicArn"];
    assert_eq!(param["Type"].as_str(), Some("String"));
    assert_eq!(param["Default"].as_str(), Some(""));
    for (arn, on) in [
        ("", false),
        ("arn:aws:sns:us-east-1:123456789012:alarms", true),
    ] {
        let params = BTreeMap::from([("AlarmTopicArn", arn.to_string())]);
        assert_eq!(condition(&t, "HasAlarmTopic", &params), on, "{arn:?}");
    }

    let runbook = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operations.md"),
    )
    .expect("docs/operations.md");
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("### ").or_else(|| l.strip_prefix("## ")))
        .map(anchor)
        .collect();

    let alarms = alarms(&t);
    // Per function three; the API, the table's throttles and system errors; the webhook
    // dead letters.
    assert_eq!(
        alarms.len(),
        3 * functions(&t).len() + 4,
        "alarms: three per function (errors, throttles, duration), the API's 5xx rate, \
         the table's throttles and system errors, the webhook dead letters"
    );
    for (id, p) in alarms {
        for key in ["AlarmActions", "OKActions"] {
            let Value::Tagged(tagged) = &p[key] else {
                panic!("{id}.{key}: not an !If");
            };
            assert_eq!(tagged.tag, "If", "{id}.{key}");
            let args = tagged.value.as_sequence().expect("!If list");
            assert_eq!(args[0].as_str(), Some("HasAlarmTopic"), "{id}.{key}");
            let topics = args[1].as_sequence().expect("topic list");
            assert_eq!(topics.len(), 1, "{id}.{key}");
            assert_eq!(reference(&topics[0]), Some("AlarmTopicArn"), "{id}.{key}");
            assert_eq!(reference(&args[2]), Some("AWS::NoValue"), "{id}.{key}");
        }
        assert_eq!(p["TreatMissingData"].as_str(), Some("notBreaching"), "{id}");
        let description = text(&p["AlarmDescription"]).expect("AlarmDescription");
        let link = description
            .split_once("docs/operations.md#")
            .map(|(_, rest)| rest.split_whitespace().next().unwrap_or_default())
            .unwrap_or_else(|| panic!("{id}: no runbook link"));
        assert!(
            anchors.contains(link),
            "{id}: docs/operations.md has no section #{link}"
        );
    }
}

/// The API alarm reads this stack's HTTP API (`ApiId`, as HTTP API metrics are keyed),
/// and the table alarms read the table, its every index, and every operation the code
/// calls (docs/dynamodb.md, plus the keyring's GetItem/PutItem and the templates' Query).
#[test]
fn api_and_table_alarms_watch_this_stacks_api_and_table() {
    let t = template();
    let api = &t["Resources"]["ApiServerErrorRateAlarm"]["Properties"];
    let (metrics, expression) = alarm_metrics(api);
    let names: BTreeSet<&str> = metrics.iter().map(|(_, _, name, _)| *name).collect();
    assert_eq!(names, BTreeSet::from(["5xx", "Count"]));
    for (id, namespace, _, dims) in &metrics {
        assert_eq!(*namespace, "AWS/ApiGateway", "{id}");
        assert_eq!(dims, &[("ApiId", "HttpApi")], "{id}");
    }
    assert!(
        expression.starts_with("IF("),
        "a minute without requests: {expression}"
    );
    assert_eq!(reference(&api["Threshold"]), Some("ServerErrorRatePercent"));

    let indexes: Vec<&str> = t["Resources"]["SessionTable"]["Properties"]["GlobalSecondaryIndexes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|i| i["IndexName"].as_str().expect("IndexName"))
        .collect();
    let throttles = &t["Resources"]["SessionTableThrottlesAlarm"]["Properties"];
    let read: BTreeSet<(&str, Vec<(&str, &str)>)> = alarm_metrics(throttles)
        .0
        .into_iter()
        .map(|(_, namespace, name, dims)| {
            assert_eq!(namespace, "AWS/DynamoDB");
            (name, dims)
        })
        .collect();
    let mut wanted = BTreeSet::new();
    for name in ["ReadThrottleEvents", "WriteThrottleEvents"] {
        wanted.insert((name, vec![("TableName", "SessionTable")]));
        for index in &indexes {
            wanted.insert((
                name,
                vec![
                    ("TableName", "SessionTable"),
                    ("GlobalSecondaryIndexName", *index),
                ],
            ));
        }
    }
    assert_eq!(read, wanted, "throttles of the table and its indexes");

    let mut called: BTreeSet<String> = ["GetItem", "PutItem", "Query"].map(String::from).into();
    for ops in documented_calls().into_values() {
        called.extend(
            ops.iter()
                .map(|op| op.split('/').next().unwrap_or(op).to_string()),
        );
    }
    let errors = &t["Resources"]["SessionTableSystemErrorsAlarm"]["Properties"];
    let watched: BTreeSet<String> = alarm_metrics(errors)
        .0
        .into_iter()
        .map(|(id, namespace, name, dims)| {
            assert_eq!((namespace, name), ("AWS/DynamoDB", "SystemErrors"), "{id}");
            assert_eq!(dims.len(), 2, "{id}");
            assert_eq!(dims[0], ("TableName", "SessionTable"), "{id}");
            assert_eq!(dims[1].0, "Operation", "{id}");
            dims[1].1.to_string()
        })
        .collect();
    assert_eq!(
        watched, called,
        "system errors of every operation the code calls"
    );
}

/// `XRayTracing` turns on active tracing for every function (Globals, no function
/// overriding it), and every function knows the namespace of its metrics.
#[test]
fn tracing_and_the_metrics_namespace_reach_every_function() {
    let t = template();
    let param = &t["Parameters"]["XRayTracing"];
    assert_eq!(param["Default"].as_str(), Some("false"));
    let allowed: Vec<&str> = param["AllowedValues"]
        .as_sequence()
        .expect("AllowedValues")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(allowed, ["true", "false"]);
    let tracing = &t["Globals"]["Function"]["Tracing"];
    assert!(
        matches!(tracing, Value::Tagged(tagged) if tagged.tag == "If"
            && tagged.value[0].as_str() == Some("TracingOn")),
        "Tracing follows TracingOn"
    );
    for (value, mode) in [("true", "Active"), ("false", "PassThrough")] {
        let params = BTreeMap::from([("XRayTracing", value.to_string())]);
        assert_eq!(evaluate(&t, tracing, &params), mode, "XRayTracing={value}");
    }
    for (name, function) in functions(&t) {
        assert!(
            function["Properties"].get("Tracing").is_none(),
            "{name} keeps the global tracing mode"
        );
        assert!(
            function["Properties"]["Environment"]["Variables"]
                .get("METRICS_NAMESPACE")
                .is_none(),
            "{name} keeps the global namespace"
        );
    }
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(reference(&env["METRICS_NAMESPACE"]), Some("AWS::StackName"));
}

/// The service's own metrics and the dimensions each carries besides `function`, as the
/// functions write them (shared/src/metrics.rs).
const SERVICE_METRICS: &[(&str, &str)] = &[
    ("http_responses_total", "endpoint,class"),
    ("clerk_errors_total", "endpoint,code"),
    ("sign_ins_total", "strategy"),
    ("tokens_minted_total", "kind"),
    ("session_transitions_total", "action"),
    ("store_calls_total", "operation"),
    ("store_errors_total", "operation,outcome"),
    ("store_call_duration_seconds", "operation"),
    ("retries_total", "operation"),
    ("key_rotations_total", "outcome"),
    ("webhook_attempts_total", "outcome"),
    ("webhook_dead_letters_total", ""),
];

/// One dashboard, named after the stack, whose body is JSON once `!Sub` has replaced
/// names of this template; it graphs every function's Lambda metrics, the API, the table,
/// and every metric of the service's own namespace.
#[test]
fn the_dashboard_shows_every_function_the_api_the_table_and_the_service_metrics() {
    let t = template();
    let dashboard = &t["Resources"]["Dashboard"];
    assert_eq!(
        dashboard["Type"].as_str(),
        Some("AWS::CloudWatch::Dashboard")
    );
    let p = &dashboard["Properties"];
    assert!(
        matches!(&p["DashboardName"], Value::Tagged(tagged) if tagged.tag == "Sub"
        && tagged.value.as_str() == Some("${AWS::StackName}"))
    );
    let Value::Tagged(body) = &p["DashboardBody"] else {
        panic!("DashboardBody is a !Sub");
    };
    assert_eq!(body.tag, "Sub");
    let body = body.value.as_str().expect("!Sub string");

    // Every ${…} names a resource, a parameter or a pseudo parameter; each is replaced by
    // that name (no quote in it, so the JSON stays JSON).
    let resources = t["Resources"].as_mapping().expect("Resources");
    let parameters = t["Parameters"].as_mapping().expect("Parameters");
    let mut resolved = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("${") {
        resolved.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        let name = &rest[start + 2..end];
        let known = name.starts_with("AWS::")
            || resources.contains_key(name)
            || parameters.contains_key(name);
        assert!(known, "${{{name}}} names nothing in the template");
        resolved.push_str(name);
        rest = &rest[end + 1..];
    }
    resolved.push_str(rest);
    let body: serde_json::Value = serde_json::from_str(&resolved).expect("JSON body");

    let mut graphed = BTreeSet::new();
    let mut expressions = Vec::new();
    for widget in body["widgets"].as_array().expect("widgets") {
        for row in widget["properties"]["metrics"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(expression) = row["expression"].as_str() {
                expressions.push(expression.to_string());
                continue;
            }
            let row = row.as_array().expect("metric row");
            let strings: Vec<&str> = row.iter().filter_map(|v| v.as_str()).collect();
            // namespace, metric, then dimension name/value pairs.
            for pair in strings[2..].chunks(2) {
                graphed.insert((strings[0], strings[1], pair[0], pair[1]));
            }
        }
    }
    for (name, function) in functions(&t) {
        for metric in [
            "Invocations",
            "Errors",
            "Throttles",
            "Duration",
            "ConcurrentExecutions",
        ] {
            if function.get("Condition").is_some() {
                // A function that may not exist cannot be named in the body: it is found
                // by the name CloudFormation gives it (`<stack>-<logical id>-<suffix>`).
                let search = format!("MetricName=\"{metric}\" \"AWS::StackName-{name}\"");
                assert!(
                    expressions
                        .iter()
                        .any(|e| e.starts_with("SEARCH('{AWS/Lambda,FunctionName}")
                            && e.contains(&search)),
                    "{name} {metric} is not searched on the dashboard"
                );
                continue;
            }
            assert!(
                graphed.contains(&("AWS/Lambda", metric, "FunctionName", name)),
                "{name} {metric} is not on the dashboard"
            );
        }
    }
    for metric in ["Count", "4xx", "5xx", "Latency"] {
        assert!(graphed.contains(&("AWS/ApiGateway", metric, "ApiId", "HttpApi")));
    }
    for metric in [
        "ReadThrottleEvents",
        "WriteThrottleEvents",
        "SystemErrors",
        "ConsumedReadCapacityUnits",
        "ConsumedWriteCapacityUnits",
    ] {
        assert!(
            graphed.contains(&("AWS/DynamoDB", metric, "TableName", "SessionTable")),
            "{metric} is not on the dashboard"
        );
    }
    for (metric, labels) in SERVICE_METRICS {
        let dimensions = if labels.is_empty() {
            "function".to_string()
        } else {
            format!("function,{labels}")
        };
        let search = format!("SEARCH('{{\"AWS::StackName\",{dimensions}}} MetricName=\"{metric}\"");
        assert!(
            expressions.iter().any(|e| e.starts_with(&search)),
            "no graph searches {metric} by function,{labels}"
        );
    }
}
