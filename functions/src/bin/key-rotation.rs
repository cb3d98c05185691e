//! Lambda function `key-rotation`: rotates the keyring when EventBridge Scheduler invokes
//! it (template.yaml, `KeyRotationIntervalDays`). The event is a rotation request, as the
//! Backend API's `POST /v1/instance/keys/rotate` takes it: `{"keys": "all"}`.

use std::sync::Arc;

use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
use serde_json::Value;
use shared::app::keys::rotate;
use shared::keyring::Rotation;
use shared::state::AppState;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let metrics = functions::install_metrics("key-rotation")?;
    let config = shared::config::Config::from_env()?;
    let state = Arc::new((AppState::start_with_private_keys)(config).await?);
    tracing::info!(function = "key-rotation", "ready");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let state = Arc::clone(&state);
        async move {
            let rotation: Rotation = serde_json::from_value(event.payload)?;
            let result = rotate(&state, rotation).await;
            let trace_id = event.context.xray_trace_id.clone();
            functions::flush_metrics(metrics, &event.context.request_id, trace_id);
            let record =
                result.map_err(|e| format!("rotation failed: {}: {}", e.code, e.long_message))?;
            Ok::<Value, lambda_runtime::Error>(record.describe(state.now()))
        }
    }))
    .await
}
