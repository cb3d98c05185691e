//! The OpenAPI document (docs/openapi.yaml) describes exactly the routes the service
//! serves, and the local server hands it out. schemathesis (tests/compat) checks the
//! answers against it; this keeps it from drifting from the route table.

use std::collections::BTreeSet;

use serde_json::Value;
use shared::routes::routes;

fn document() -> Value {
    serde_norway::from_str(local_api::OPENAPI_DOCUMENT).expect("docs/openapi.yaml is YAML")
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.0.3");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            documented.insert((method.to_uppercase(), path.clone()));
            assert!(
                op["operationId"].is_string(),
                "{method} {path} has no operationId"
            );
            let statuses = op["responses"].as_object().expect("responses");
            // The handshake's success is its redirect.
            assert!(
                statuses.contains_key("200") || statuses.contains_key("307"),
                "{method} {path}: no success"
            );
        }
    }
    let served: BTreeSet<(String, String)> = routes()
        .map(|(_, r)| (r.method.to_string(), r.path.to_string()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && not_served.is_empty(),
        "routes served but not in docs/openapi.yaml (add a path item for each): \
         {undocumented:?}; paths in docs/openapi.yaml that no route serves: {not_served:?}"
    );
}

#[test]
fn every_reference_resolves() {
    let doc = document();
    let mut refs = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let pointer = r.strip_prefix('#').expect("local reference");
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
}
