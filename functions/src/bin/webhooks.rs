//! Lambda function `webhooks`: queues webhook events from DynamoDB Streams and delivers
//! them from the SQS FIFO queue (`functions::webhooks`). `WEBHOOK_QUEUE_URL` names the
//! queue (template.yaml).

use std::sync::Arc;

use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
use serde_json::Value;
use shared::state::AppState;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let metrics = functions::install_metrics("webhooks")?;
    let config = shared::config::Config::from_env()?;
    let queue_url = std::env::var("WEBHOOK_QUEUE_URL")
        .map_err(|_| shared::config::ConfigError::Missing("WEBHOOK_QUEUE_URL"))?;
    let state = Arc::new(AppState::start_webhooks(config).await?);
    let sqs = aws_sdk_sqs::Client::new(&aws_config::load_from_env().await);
    let webhooks = Arc::new(functions::webhooks::Webhooks::new(state, sqs, queue_url)?);
    tracing::info!(function = "webhooks", "ready");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let webhooks = Arc::clone(&webhooks);
        async move {
            let result = webhooks.handle(event.payload).await;
            let trace_id = event.context.xray_trace_id.clone();
            functions::flush_metrics(metrics, &event.context.request_id, trace_id);
            result
        }
    }))
    .await
}
