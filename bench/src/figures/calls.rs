//! Figure 5: each function's DynamoDB round trips (from the test-verified calls table of
//! docs/dynamodb.md) and its binary size, beside `hello-lambda`'s size.

use std::collections::BTreeMap;

use bench::costs::Row;
use bench::stats::fmt_bytes;

use super::functions::{Functions, HELLO};
use crate::report::Table;

pub fn rows(t: &mut Table, f: &Functions, dynamodb: &[Row]) {
    let calls: BTreeMap<&str, &str> = dynamodb
        .iter()
        .map(|r| (r.endpoint.as_str(), r.calls.as_str()))
        .collect();
    for case in &f.cases {
        let calls = calls
            .get(case.dynamodb_row)
            .copied()
            .unwrap_or("not in docs/dynamodb.md");
        t.reported_row([
            format!("5 `{}`: `{}`", case.function, case.dynamodb_row),
            format!("DynamoDB: {calls}; binary {}", fmt_bytes(case.size)),
            format!("binary {} (`{HELLO}`)", fmt_bytes(f.hello_size)),
            format!("{:.1}× size", case.size as f64 / f.hello_size.max(1) as f64),
        ]);
    }
}
