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
