//! The OpenAPI document (docs/openapi.yaml) describes exactly the routes the service
//! serves, and the local server hands it out. schemathesis (tests/compat) checks the
//! answers against it; this keeps it from drifting from the route table.

use std::collections::BTreeSet;

use serde_json::Value;
use shared::routes::{routes, Access};

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
    let stubs: Vec<String> = undocumented
        .iter()
        .map(|(method, path)| stub(&doc, method, path))
        .collect();
    assert!(
        undocumented.is_empty() && not_served.is_empty(),
        "{} route(s) served but not in docs/openapi.yaml; paste each path item under \
         `paths:` (beside the others of its path, if any) and describe its answer:\n\n{}\n\
         paths in docs/openapi.yaml that no route serves (remove them): {not_served:?}",
        undocumented.len(),
        stubs.join("\n")
    );
}

/// A path item for a route, ready to paste: its operationId from the endpoint's name, the
/// security of its access, its path parameters (the shared ones by reference), and the
/// error answers every route may give.
fn stub(doc: &Value, method: &str, path: &str) -> String {
    let route = routes()
        .map(|(_, r)| r)
        .find(|r| r.method.as_str() == method && r.path == path)
        .expect("a served route");
    let name = route.endpoint.name();
    let operation_id = format!("{}{}", name[..1].to_lowercase(), &name[1..]);
    let security = match route.access() {
        Access::SecretKey => "\n      security: [{secretKey: []}]",
        Access::Client => {
            "\n      security: [{clientCookie: []}, {devBrowser: []}, {nativeClient: []}]"
        }
        Access::Public => "",
    };
    let components = doc["components"]["parameters"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let parameters: Vec<String> = path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|param| {
            match components
                .iter()
                .find(|(_, p)| p["name"] == param && p["in"] == "path")
            {
                Some((id, _)) => format!("$ref: '#/components/parameters/{id}'"),
                None => {
                    format!("{{name: {param}, in: path, required: true, schema: {{type: string}}}}")
                }
            }
        })
        .collect();
    let parameters = if parameters.is_empty() {
        String::new()
    } else {
        format!("\n      parameters: [{}]", parameters.join(", "))
    };
    format!(
        "  {path}:\n    {}:\n      operationId: {operation_id}\n      summary: …{security}{parameters}\n      \
         responses:\n        '200': {{description: …, content: {{application/json: {{schema: \
         {{$ref: '#/components/schemas/…'}}}}}}}}\n        '401': {{$ref: \
         '#/components/responses/Error'}}\n        '404': {{$ref: '#/components/responses/Error'}}\n        \
         '503': {{$ref: '#/components/responses/Error'}}\n",
        method.to_lowercase()
    )
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
