//! The `webhooks` function: delivery of webhook events on AWS. It is invoked two ways:
//!
//! - **By DynamoDB Streams**, with new event items (template.yaml filters the stream to
//!   them). Each event becomes one message per endpoint that wants its type, on the SQS
//!   FIFO delivery queue: message group `<endpoint>:<key>`, so one endpoint receives one
//!   session's events in order and one at a time; de-duplication id `<endpoint>:<event>`,
//!   so a stream batch retried within five minutes queues nothing twice.
//! - **By SQS**, with those messages (batch size 1). It attempts the delivery; on a
//!   failure it hides the message until the schedule's next attempt (SQS's
//!   `ApproximateReceiveCount` is the attempt number) and reports it failed. After the
//!   last attempt the queue's redrive policy (maxReceiveCount = attempts) moves it to the
//!   dead-letter queue. Meanwhile the message group waits: later events of that session
//!   are not delivered before it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shared::clock::Millis;
use shared::state::AppState;
use shared::webhooks::{Event, Sender};

/// What one queued message holds.
#[derive(Serialize, Deserialize)]
struct QueuedDelivery {
    endpoint_id: String,
    event: Event,
}

pub struct Webhooks {
    state: Arc<AppState>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    sender: Sender,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

impl Webhooks {
    pub fn new(
        state: Arc<AppState>,
        sqs: aws_sdk_sqs::Client,
        queue_url: String,
    ) -> std::io::Result<Self> {
        let sender = Sender::new(state.config.webhooks.allow_loopback)?;
        Ok(Self {
            state,
            sqs,
            queue_url,
            sender,
        })
    }

    /// Handles one invocation, a DynamoDB Streams batch or an SQS batch. A stream batch
    /// that could not be queued fails whole (Lambda retries it); an SQS batch answers
    /// which messages failed.
    pub async fn handle(&self, payload: Value) -> Result<Value, Failure> {
        let records = payload["Records"].as_array().cloned().unwrap_or_default();
        match records.first().and_then(|r| r["eventSource"].as_str()) {
            Some("aws:dynamodb") => self.queue(&records).await.map(|n| json!({ "queued": n })),
            Some("aws:sqs") => Ok(self.deliver(&records).await),
            None => Ok(json!({})),
            Some(other) => Err(format!("unexpected event source {other}").into()),
        }
    }

    /// Stream records of new event items → one message per subscribed endpoint.
    async fn queue(&self, records: &[Value]) -> Result<usize, Failure> {
        let mut events = Vec::new();
        for record in records {
            if record["eventName"] != "INSERT" {
                continue;
            }
            let Some(data) = record["dynamodb"]["NewImage"]["data"]["S"].as_str() else {
                continue;
            };
            events.push(serde_json::from_str::<Event>(data)?);
        }
        if events.is_empty() {
            return Ok(0);
        }
        let endpoints = self.state.store.list_webhook_endpoints().await?;
        let mut entries = Vec::new();
        for event in &events {
            for endpoint in endpoints.iter().filter(|e| e.wants(event.kind)) {
                let body = serde_json::to_string(&QueuedDelivery {
                    endpoint_id: endpoint.id.clone(),
                    event: event.clone(),
                })?;
                entries.push(
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(format!("m{}", entries.len()))
                        .message_body(body)
                        .message_group_id(format!("{}:{}", endpoint.id, event.key))
                        .message_deduplication_id(format!("{}:{}", endpoint.id, event.id))
                        .build()?,
                );
            }
        }
        let queued = entries.len();
        // In order, ten at a time (SQS's batch limit): a group's messages keep their order.
        let mut entries = entries.into_iter().peekable();
        while entries.peek().is_some() {
            let batch: Vec<_> = entries.by_ref().take(10).collect();
            let out = self
                .sqs
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(batch))
                .send()
                .await?;
            if let Some(failed) = out.failed().first() {
                return Err(format!("not queued: {}", failed.code()).into());
            }
        }
        Ok(queued)
    }

    /// Attempts each message's delivery, in order; from the first failure on, the rest
    /// are reported failed unattempted (a FIFO queue must not deliver later messages of a
    /// group before an earlier one).
    async fn deliver(&self, records: &[Value]) -> Value {
        let mut failures = Vec::new();
        for record in records {
            let message_id = record["messageId"].as_str().unwrap_or_default().to_string();
            if !failures.is_empty() {
                failures.push(json!({ "itemIdentifier": message_id }));
                continue;
            }
            if let Err(error) = self.attempt(record).await {
                tracing::warn!(message = %message_id, error = %error, "webhooks: delivery failed");
                failures.push(json!({ "itemIdentifier": message_id }));
            }
        }
        json!({ "batchItemFailures": failures })
    }

    async fn attempt(&self, record: &Value) -> Result<(), String> {
        let body = record["body"].as_str().unwrap_or_default();
        let Ok(queued) = serde_json::from_str::<QueuedDelivery>(body) else {
            // Not ours: nothing would ever deliver it.
            tracing::error!("webhooks: unreadable message dropped");
            return Ok(());
        };
        let endpoints = self
            .state
            .store
            .list_webhook_endpoints()
            .await
            .map_err(|e| e.to_string())?;
        let Some(endpoint) = endpoints.iter().find(|e| e.id == queued.endpoint_id) else {
            return Ok(()); // Deleted meanwhile: nothing to deliver to.
        };
        let now: Millis = self.state.now();
        let result = self
            .sender
            .deliver(&self.state.sealer, endpoint, &queued.event, now)
            .await;
        shared::metrics::webhook_attempt(result.is_ok());
        let Err(error) = result else {
            return Ok(());
        };
        let made: u32 = record["attributes"]["ApproximateReceiveCount"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        match self.state.config.webhooks.retry_schedule.pause_after(made) {
            Some(pause) => {
                let receipt = record["receiptHandle"].as_str().unwrap_or_default();
                let secs = pause.as_millis().div_ceil(1000) as i32;
                if let Err(e) = self
                    .sqs
                    .change_message_visibility()
                    .queue_url(&self.queue_url)
                    .receipt_handle(receipt)
                    .visibility_timeout(secs)
                    .send()
                    .await
                {
                    // It comes back after the queue's visibility timeout instead.
                    tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "webhooks: retry not scheduled");
                }
            }
            None => {
                shared::metrics::webhook_dead_lettered();
                tracing::error!(
                    endpoint = %endpoint.id, event = %queued.event.id, attempts = made,
                    error = %error, "webhooks: last attempt failed; the message goes to the dead-letter queue"
                );
            }
        }
        Err(error)
    }
}
