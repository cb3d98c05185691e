//! The cold-start floor: the least a Rust Lambda function on `lambda_runtime` does. It
//! reads nothing at start-up and answers every event with a fixed API Gateway response.
//! Built with the same release profile as the function binaries (`scripts/bench.sh`).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| async {
        Ok::<Value, Error>(json!({"statusCode": 200, "body": "hello"}))
    }))
    .await
}
