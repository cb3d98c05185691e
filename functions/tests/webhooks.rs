//! The webhooks function on AWS's path, with no AWS: the `webhooks` binary runs under the
//! Lambda Runtime API emulator on a DynamoDB table and an SQS FIFO queue of the test
//! command's moto server. It is fed the DynamoDB Streams batch of `events/webhooks/` as the
//! file stands, then, one at a time as the template's event source mapping does (batch
//! size 1), the SQS messages it queued, until a local receiver has every event.

use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{json, Value};
use shared::keyring::Sealed;
use shared::store::{DynamoDbStore, Store, Write};
use shared::webhooks::{signing, Event, WebhookEndpoint};
use testkit::receiver::Receiver;
use testkit::{emulator, fixtures};

/// The fixtures' key bytes for the test endpoint's secret.
const KEY: &[u8] = b"webhooks_function_test_key_01234";

fn binary() -> std::path::PathBuf {
    Path::new(env!("CARGO_BIN_EXE_bapi")).with_file_name("webhooks")
}

struct Queues {
    sqs: aws_sdk_sqs::Client,
    url: String,
    dead_letters: String,
}

/// A FIFO delivery queue whose redrive policy moves a message to its FIFO dead-letter
/// queue after `attempts` receives, as template.yaml makes them.
async fn queues(endpoint: &str, attempts: u32) -> Queues {
    let conf = aws_config::load_from_env().await;
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&conf)
            .endpoint_url(endpoint)
            .build(),
    );
    let name = shared::ids::new_id("webhooks");
    let fifo = |q: aws_sdk_sqs::operation::create_queue::builders::CreateQueueFluentBuilder| {
        q.attributes(QueueAttributeName::FifoQueue, "true")
    };
    let dead_letters = fifo(sqs.create_queue().queue_name(format!("{name}-dlq.fifo")))
        .send()
        .await
        .expect("dead-letter queue")
        .queue_url
        .unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&dead_letters)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let redrive = json!({ "deadLetterTargetArn": arn, "maxReceiveCount": attempts.to_string() });
    let url = fifo(sqs.create_queue().queue_name(format!("{name}.fifo")))
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .send()
        .await
        .expect("delivery queue")
        .queue_url
        .unwrap();
    Queues {
        sqs,
        url,
        dead_letters,
    }
}

/// A table seeded with the fixtures, whose only webhook endpoint is `url`.
async fn table_with_endpoint(endpoint: &str, url: &str) -> String {
    let table = shared::ids::new_id("webhooks");
    fixtures::seed_dynamodb(&table, endpoint).await.unwrap();
    let store = DynamoDbStore::new(table.clone(), Some(endpoint.to_string())).await;
    let mut writes: Vec<Write> = store
        .list_webhook_endpoints()
        .await
        .unwrap()
        .into_iter()
        .map(|e| Write::DeleteWebhookEndpoint {
            id: e.id,
            version: e.version,
        })
        .collect();
    use base64::Engine;
    writes.push(Write::webhook_endpoint(WebhookEndpoint {
        id: "ep_test".into(),
        url: url.into(),
        events: Vec::new(),
        secret: Sealed::Plain {
            material: base64::engine::general_purpose::STANDARD.encode(KEY),
        },
        previous_secret: None,
        previous_until: None,
        created_at: 1,
        updated_at: 1,
        version: 1,
    }));
    store.commit(writes).await.unwrap();
    table
}

fn env(table: &str, queues: &Queues, endpoint: &str, schedule: &str) -> Vec<(String, String)> {
    let mut env = fixtures::function_env_dynamodb(table);
    env.extend(
        [
            ("WEBHOOK_QUEUE_URL", queues.url.as_str()),
            ("AWS_ENDPOINT_URL_SQS", endpoint),
            ("WEBHOOK_RETRY_SCHEDULE", schedule),
            // The receiver listens on 127.0.0.1.
            ("WEBHOOK_ALLOW_LOOPBACK", "true"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    env
}

/// Receives one message as Lambda's SQS poller does and plays it through the function
/// (deleting it when the function reports no failure). `None`: nothing visible.
async fn play_one(queues: &Queues, env: &[(String, String)]) -> Option<Value> {
    let out = queues
        .sqs
        .receive_message()
        .queue_url(&queues.url)
        .max_number_of_messages(1)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive");
    let message = out.messages?.into_iter().next()?;
    let attributes: serde_json::Map<String, Value> = message
        .attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_string(), Value::String(v.clone())))
                .collect()
        })
        .unwrap_or_default();
    let event = json!({ "Records": [{
        "messageId": message.message_id(),
        "receiptHandle": message.receipt_handle(),
        "body": message.body(),
        "attributes": attributes,
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:webhooks.fifo",
        "awsRegion": "us-east-1",
    }]});
    let answer = emulator::invoke(&binary(), "webhooks", &event.to_string(), env)
        .await
        .expect("the function answers an SQS batch");
    if answer["batchItemFailures"]
        .as_array()
        .is_some_and(|f| f.is_empty())
    {
        queues
            .sqs
            .delete_message()
            .queue_url(&queues.url)
            .receipt_handle(message.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
    }
    Some(answer)
}

fn stream_batch() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/webhooks/stream-batch.json");
    std::fs::read_to_string(path).expect("events/webhooks/stream-batch.json")
}

/// The events of the fixture batch, in its order.
fn fixture_events() -> Vec<Event> {
    let batch: Value = serde_json::from_str(&stream_batch()).unwrap();
    batch["Records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["eventName"] == "INSERT")
        .map(|r| {
            serde_json::from_str(r["dynamodb"]["NewImage"]["data"]["S"].as_str().unwrap()).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_batch_is_delivered_signed_in_order_after_five_failed_attempts() {
    let Some(endpoint) = testkit::stores::dynamodb_endpoint() else {
        return;
    };
    let receiver = Receiver::start(5).await;
    let table = table_with_endpoint(&endpoint, &receiver.url).await;
    let queues = queues(&endpoint, 8).await;
    // Eight attempts, a second apart (SQS hides messages for whole seconds).
    let env = env(&table, &queues, &endpoint, "1s,1s,1s,1s,1s,1s,1s");

    let batch = stream_batch();
    let queued = emulator::invoke(&binary(), "webhooks", &batch, &env)
        .await
        .expect("the function queues a stream batch");
    assert_eq!(
        queued["queued"], 2,
        "two event items; the other change is ignored"
    );
    // Lambda retrying the batch queues nothing twice (FIFO de-duplication ids).
    emulator::invoke(&binary(), "webhooks", &batch, &env)
        .await
        .expect("the retried batch");

    let start = Instant::now();
    let mut failures_reported = 0;
    while receiver.accepted().len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(90), "timed out");
        if let Some(answer) = play_one(&queues, &env).await {
            failures_reported += answer["batchItemFailures"].as_array().unwrap().len();
        }
    }
    // Anything left would be a duplicate.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        play_one(&queues, &env).await.is_none(),
        "nothing left queued"
    );

    let events = fixture_events();
    let (accepted, attempts) = (receiver.accepted(), receiver.attempts());
    assert_eq!(
        failures_reported, 10,
        "five failed attempts of each, reported to SQS"
    );
    let ids: Vec<&str> = accepted
        .iter()
        .map(|d| d.headers["svix-id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [events[0].id.as_str(), events[1].id.as_str()],
        "in order, once each"
    );
    // Every attempt of the first came before any of the second: one session, one at a time.
    let first_of_second = attempts.iter().position(|a| *a == events[1].id).unwrap();
    let last_of_first = attempts.iter().rposition(|a| *a == events[0].id).unwrap();
    assert!(last_of_first < first_of_second, "{attempts:?}");
    assert_eq!(attempts.len(), 12);
    for (delivery, event) in accepted.iter().zip(&events) {
        let (headers, body) = (&delivery.headers, &delivery.body);
        assert_eq!(body, &event.payload, "the recorded payload, byte for byte");
        let timestamp: i64 = headers["svix-timestamp"].parse().unwrap();
        let expected = signing::signature(KEY, &event.id, timestamp, body);
        assert_eq!(headers["svix-signature"], expected);
        assert_eq!(headers["content-type"], "application/json");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_fails_its_last_attempt_goes_to_the_dead_letter_queue() {
    let Some(endpoint) = testkit::stores::dynamodb_endpoint() else {
        return;
    };
    let receiver = Receiver::start(usize::MAX).await;
    let table = table_with_endpoint(&endpoint, &receiver.url).await;
    // Three attempts: the redrive policy's maxReceiveCount is the schedule's attempts.
    let queues = queues(&endpoint, 3).await;
    let env = env(&table, &queues, &endpoint, "1s,1s");
    let batch = stream_batch();
    emulator::invoke(&binary(), "webhooks", &batch, &env)
        .await
        .expect("queued");

    let start = Instant::now();
    let dead = loop {
        assert!(start.elapsed() < Duration::from_secs(60), "timed out");
        play_one(&queues, &env).await;
        let out = queues
            .sqs
            .receive_message()
            .queue_url(&queues.dead_letters)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if let Some(messages) = out.messages.filter(|m| !m.is_empty()) {
            break messages;
        }
    };
    let events = fixture_events();
    let body: Value = serde_json::from_str(dead[0].body().unwrap()).unwrap();
    assert_eq!(
        body["event"]["id"],
        events[0].id.as_str(),
        "the session's first event"
    );
    assert_eq!(
        receiver
            .attempts()
            .iter()
            .filter(|a| **a == events[0].id)
            .count(),
        3,
        "attempted as often as the schedule says"
    );
    assert!(receiver.accepted().is_empty());
}
