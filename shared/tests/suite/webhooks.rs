//! Webhook events as the stores record them, and their delivery from the embedded stores'
//! outbox (the in-memory store and SQLite): one event per change however requests race,
//! one delivery at a time per endpoint and session, dead letters that free the session's
//! later events, leases that keep two processes from delivering one event twice, the
//! worker's signed deliveries with retries, endpoints isolated from each other's slow
//! receivers, and URLs that may point only at public addresses. On DynamoDB the events
//! are items the stream hands on (functions/tests/webhooks.rs plays that path); racing
//! there records one too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use shared::store::{Delivery, MemoryStore, Room, Store};
use shared::webhooks::{outbox, signing, Sender};
use testkit::app::*;
use testkit::receiver::{Receiver, SilentReceiver};
use testkit::stores::TempDatabase;

testkit::each_embedded_store!(
    one_event_per_change_however_requests_race,
    one_session_is_delivered_in_order_and_a_dead_letter_frees_it,
    endpoints_get_the_types_they_want_and_unwanted_events_are_dropped,
    the_worker_delivers_signed_events_and_retries_until_accepted,
    a_receiver_that_never_answers_delays_only_its_own_endpoint,
    each_endpoint_is_leased_only_what_fits_its_room,
    a_name_resolving_to_loopback_is_refused_at_delivery_unless_allowed,
    a_sign_up_sends_user_created_and_session_created,
);

const NOWHERE: &str = "http://127.0.0.1:9/hooks";

/// Webhooks on, and (the receivers listen on 127.0.0.1) loopback endpoints allowed.
fn config(extra: &[(&str, &str)]) -> shared::config::Config {
    let mut settings = vec![("WEBHOOKS", "on"), ("WEBHOOK_ALLOW_LOOPBACK", "true")];
    settings.extend_from_slice(extra);
    test_config(&settings)
}

/// An endpoint at `url` for `events` (empty: all): (id, secret).
async fn endpoint(app: &TestApp, url: &str, events: &[&str]) -> (String, String) {
    let resp = app
        .send(
            Req::post("/v1/webhooks/endpoints")
                .secret()
                .json(&json!({"url": url, "events": events})),
        )
        .await;
    let body = resp.ok();
    (
        body["id"].as_str().unwrap().to_string(),
        body["secret"].as_str().unwrap().to_string(),
    )
}

/// Every delivery the outbox hands out from now on, each marked delivered once seen:
/// (event type, the session or user id it is about).
async fn drain(store: &Arc<dyn Store>, now: i64) -> Vec<(String, String)> {
    testkit::stores::drain_outbox(store.as_ref(), now)
        .await
        .into_iter()
        .map(|d| (d.event.kind.as_str().to_string(), d.event.key))
        .collect()
}

async fn one_event_per_change_however_requests_race(store: Arc<dyn Store>) {
    let app = Arc::new(TestApp::with_store(config(&[]), Arc::clone(&store)).await);
    endpoint(&app, NOWHERE, &[]).await;
    let user = app.create_user().await;
    let (token, sid) = app.native_sign_in("", &user).await;
    app.send(Req::post(session_path(&sid, "touch")).native(&token))
        .await
        .ok();
    let mut ends = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (app, token, sid) = (Arc::clone(&app), token.clone(), sid.clone());
        ends.spawn(async move {
            app.send(Req::post(session_path(&sid, "end")).native(&token))
                .await
                .status
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = ends.join_next().await {
        statuses.push(status.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 400, 400, 400, 400, 400, 400, 400]);

    let mut events = drain(&store, app.now_ms()).await;
    events.sort();
    assert_eq!(
        events,
        [
            ("session.created".to_string(), sid.clone()),
            ("session.ended".to_string(), sid.clone()),
            ("user.created".to_string(), user.clone()),
        ],
        "one event per change: none for the touch, the sign-in's user write or the lost ends"
    );
}

/// A sign-up's user and session, and a password sign-in's session, are reported as a
/// ticket sign-in's are: in Clerk's payloads, the email address among the user's.
async fn a_sign_up_sends_user_created_and_session_created(store: Arc<dyn Store>) {
    let app = TestApp::with_store(config(&[]), Arc::clone(&store)).await;
    endpoint(&app, NOWHERE, &[]).await;
    let resp = app
        .send(
            Req::post("/v1/client/sign_ups")
                .native("")
                .form("email_address=ida@example.com&password=plum-tractor-vinegar-42"),
        )
        .await;
    let id = resp.ok()["response"]["id"].as_str().unwrap().to_string();
    let token = resp.header("authorization").unwrap().to_string();
    app.send(
        Req::post(format!("/v1/client/sign_ups/{id}/prepare_verification"))
            .native(&token)
            .form("strategy=email_code"),
    )
    .await
    .ok();
    let code = app.mail.code("ida@example.com").unwrap();
    let done = app
        .send(
            Req::post(format!("/v1/client/sign_ups/{id}/attempt_verification"))
                .native(&token)
                .form(&format!("strategy=email_code&code={code}")),
        )
        .await;
    let r = &done.ok()["response"];
    let (user, sid) = (
        r["created_user_id"].as_str().unwrap().to_string(),
        r["created_session_id"].as_str().unwrap().to_string(),
    );
    let signed_in = app
        .send(
            Req::post("/v1/client/sign_ins")
                .native("")
                .form("identifier=ida@example.com&password=plum-tractor-vinegar-42"),
        )
        .await;
    let second = signed_in.ok()["response"]["created_session_id"]
        .as_str()
        .unwrap()
        .to_string();

    let deliveries = testkit::stores::drain_outbox(store.as_ref(), app.now_ms()).await;
    let mut events: Vec<(String, String)> = deliveries
        .iter()
        .map(|d| (d.event.kind.as_str().to_string(), d.event.key.clone()))
        .collect();
    events.sort();
    let mut expected = vec![
        ("session.created".to_string(), sid),
        ("session.created".to_string(), second),
        ("user.created".to_string(), user),
    ];
    expected.sort();
    assert_eq!(events, expected);
    let created = deliveries
        .iter()
        .find(|d| d.event.kind.as_str() == "user.created")
        .unwrap();
    let payload = serde_json::to_value(&created.event).unwrap().to_string();
    assert!(payload.contains("ida@example.com"), "{payload}");
    assert!(!payload.contains("plum-tractor"), "{payload}");
}

async fn one_session_is_delivered_in_order_and_a_dead_letter_frees_it(store: Arc<dyn Store>) {
    let app = TestApp::with_store(config(&[]), Arc::clone(&store)).await;
    endpoint(&app, NOWHERE, &["session.created", "session.ended"]).await;
    let user = app.create_user().await;
    let (token, sid) = app.native_sign_in("", &user).await;
    app.send(Req::post(session_path(&sid, "end")).native(&token))
        .await
        .ok();
    let outbox = store.outbox().unwrap();
    let now = app.now_ms();
    let kinds = |due: &[Delivery]| -> Vec<String> {
        due.iter()
            .map(|d| d.event.kind.as_str().to_string())
            .collect()
    };

    let due = outbox.due_deliveries(now, now + 60_000, 10).await.unwrap();
    assert_eq!(kinds(&due), ["session.created"], "the end waits behind it");
    // Leased: not handed out again while the attempt runs.
    assert!(outbox
        .due_deliveries(now, now + 60_000, 10)
        .await
        .unwrap()
        .is_empty());
    // A failed attempt: it is retried at its time, and the session waits meanwhile.
    outbox
        .failed(due[0].id, 1, Some(now + 1_000), "answered 500")
        .await
        .unwrap();
    assert!(outbox
        .due_deliveries(now + 999, now + 60_000, 10)
        .await
        .unwrap()
        .is_empty());
    let again = outbox
        .due_deliveries(now + 1_000, now + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(kinds(&again), ["session.created"]);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(
        again[0].event.id, due[0].event.id,
        "the same event, the same svix-id"
    );
    // The last attempt fails: dead-lettered, and the session's next event follows.
    outbox
        .failed(again[0].id, 8, None, "answered 500")
        .await
        .unwrap();
    let next = outbox
        .due_deliveries(now + 1_000, now + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(kinds(&next), ["session.ended"]);
    outbox.delivered(next[0].id).await.unwrap();
    assert!(drain(&store, now + 1_000).await.is_empty());
}

async fn endpoints_get_the_types_they_want_and_unwanted_events_are_dropped(store: Arc<dyn Store>) {
    let app = TestApp::with_store(config(&[]), Arc::clone(&store)).await;
    // No endpoint yet: nothing is recorded, so endpoints made before the worker's next
    // round get nothing of it.
    let early = app.create_user().await;
    let (users_only, _) = endpoint(&app, NOWHERE, &["user.updated"]).await;
    let (everything, _) = endpoint(&app, NOWHERE, &[]).await;
    assert!(drain(&store, app.now_ms()).await.is_empty());
    app.send(
        Req::new("PATCH", format!("/v1/users/{early}"))
            .secret()
            .json(&json!({"first_name": "Grace"})),
    )
    .await
    .ok();
    app.native_sign_in("", &early).await;
    let mut by_endpoint: Vec<(String, String)> =
        testkit::stores::drain_outbox(store.as_ref(), app.now_ms())
            .await
            .into_iter()
            .map(|d| (d.endpoint_id, d.event.kind.as_str().to_string()))
            .collect();
    by_endpoint.sort();
    let mut expected = vec![
        (everything.clone(), "session.created".to_string()),
        (everything.clone(), "user.updated".to_string()),
        (users_only.clone(), "user.updated".to_string()),
    ];
    expected.sort();
    assert_eq!(by_endpoint, expected);
}

async fn the_worker_delivers_signed_events_and_retries_until_accepted(store: Arc<dyn Store>) {
    // The system clock: retries are due as real time passes.
    let app = TestApp::with_system_clock(
        config(&[("WEBHOOK_RETRY_SCHEDULE", "50ms,50ms,50ms")]),
        Arc::clone(&store),
    )
    .await;
    let receiver = Receiver::start(2).await;
    let (_, secret) = endpoint(&app, &receiver.url, &[]).await;
    let user = app.create_user().await;
    let (token, sid) = app.native_sign_in("", &user).await;
    app.send(Req::post(session_path(&sid, "end")).native(&token))
        .await
        .ok();

    let sender = Sender::new(true).unwrap();
    let start = Instant::now();
    while receiver.accepted().len() < 3 {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out");
        outbox::deliver_due(&app.state, &sender).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let accepted = receiver.accepted();
    let mut types = Vec::new();
    for d in &accepted {
        let id = &d.headers["svix-id"];
        let timestamp: i64 = d.headers["svix-timestamp"].parse().unwrap();
        assert_eq!(
            d.headers["svix-signature"],
            signing::signature(&key, id, timestamp, &d.body)
        );
        let event: Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!(event["object"], "event");
        types.push((event["type"].as_str().unwrap().to_string(), id.clone()));
    }
    // Each accepted on its third attempt; the session's two in order.
    let attempts = receiver.attempts();
    for (_, id) in &types {
        assert_eq!(attempts.iter().filter(|a| *a == id).count(), 3);
    }
    let session: Vec<&str> = types
        .iter()
        .map(|(t, _)| t.as_str())
        .filter(|t| t.starts_with("session."))
        .collect();
    assert_eq!(session, ["session.created", "session.ended"]);
}

/// A receiver that accepts connections and never answers holds up only its own endpoint:
/// beside it, a healthy endpoint gets 20 deliveries within a second (the worker does not
/// wait for the hung attempts, each of which lasts the 15 s time-out).
async fn a_receiver_that_never_answers_delays_only_its_own_endpoint(store: Arc<dyn Store>) {
    let app = TestApp::with_system_clock(config(&[]), Arc::clone(&store)).await;
    let hung = SilentReceiver::start().await;
    let healthy = Receiver::start(0).await;
    endpoint(&app, &hung.url, &[]).await;
    let worker = tokio::spawn(outbox::run(Arc::clone(&app.state)));
    // The hung receiver holds an attempt before the healthy endpoint's events exist.
    app.create_user().await;
    let start = Instant::now();
    while hung.connections() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no attempt began"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    endpoint(&app, &healthy.url, &["user.created"]).await;
    for _ in 0..20 {
        app.create_user().await;
    }
    let start = Instant::now();
    while healthy.accepted().len() < 20 && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = start.elapsed();
    worker.abort();
    assert_eq!(healthy.accepted().len(), 20, "after {took:?}");
    assert!(took < Duration::from_secs(1), "20 deliveries took {took:?}");
    let mut ids = healthy.attempts();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "each attempted once");
    assert!(
        hung.connections() > 1,
        "the hung endpoint's other events were attempted meanwhile"
    );
}

/// The outbox leases of each endpoint only what fits its room, counting the attempts
/// the worker has under way there, so one endpoint's backlog never takes another's turn.
async fn each_endpoint_is_leased_only_what_fits_its_room(store: Arc<dyn Store>) {
    let app = TestApp::with_store(config(&[]), Arc::clone(&store)).await;
    let (busy, _) = endpoint(&app, NOWHERE, &[]).await;
    let (idle, _) = endpoint(&app, "https://hooks.example.com/clerk", &[]).await;
    for _ in 0..5 {
        app.create_user().await;
    }
    let now = app.now_ms();
    let room = Room {
        total: usize::MAX,
        per_endpoint: 2,
        busy: [(busy.clone(), 1)].into(),
    };
    let leased = store
        .outbox()
        .unwrap()
        .lease_due(now, now + 60_000, &room)
        .await
        .unwrap();
    let of = |id: &str| leased.iter().filter(|d| d.endpoint_id == id).count();
    assert_eq!((of(&busy), of(&idle)), (1, 2));
    // The rest wait, unleased, for room: all of them on a later round.
    let rest = testkit::stores::drain_outbox(store.as_ref(), now).await;
    assert_eq!(rest.len(), 10 - 3);
}

/// A name that resolves to loopback (`localhost`) is refused at delivery when loopback
/// is not allowed: the attempt fails (nothing reaches the receiver) and is retried on the
/// schedule. With `WEBHOOK_ALLOW_LOOPBACK=true` it is delivered.
async fn a_name_resolving_to_loopback_is_refused_at_delivery_unless_allowed(store: Arc<dyn Store>) {
    let allowing = TestApp::with_system_clock(
        config(&[("WEBHOOK_RETRY_SCHEDULE", "50ms")]),
        Arc::clone(&store),
    )
    .await;
    let strict = TestApp::with_system_clock(
        test_config(&[("WEBHOOKS", "on"), ("WEBHOOK_RETRY_SCHEDULE", "50ms")]),
        Arc::clone(&store),
    )
    .await;
    let receiver = Receiver::start(0).await;
    let url = receiver.url.replace("127.0.0.1", "localhost");
    strict
        .send(
            Req::post("/v1/webhooks/endpoints")
                .secret()
                .json(&json!({ "url": url })),
        )
        .await
        .assert_error(422, "form_param_value_invalid");
    // Made where it was allowed (or before the rule, or DNS changed since): delivery
    // checks again.
    endpoint(&allowing, &url, &["user.created"]).await;
    strict.create_user().await;

    assert_eq!(
        outbox::deliver_due(&strict.state, &Sender::new(false).unwrap())
            .await
            .unwrap(),
        1
    );
    assert!(receiver.attempts().is_empty(), "never connected");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let now = strict.now_ms();
    // Leased until `now` only, so it stays due.
    let due = store
        .outbox()
        .unwrap()
        .due_deliveries(now, now, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        due[0].attempts, 1,
        "a failed attempt, due again on the schedule"
    );
    let endpoints = store.list_webhook_endpoints().await.unwrap();
    let error = Sender::new(false)
        .unwrap()
        .deliver(&strict.state.sealer, &endpoints[0], &due[0].event, now)
        .await
        .unwrap_err();
    assert!(error.contains("refused: a loopback address"), "{error}");

    outbox::deliver_due(&allowing.state, &Sender::new(true).unwrap())
        .await
        .unwrap();
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].headers["svix-id"], due[0].event.id);
}

/// URLs at private, link-local, metadata and other non-public addresses are refused when
/// an endpoint is created (422), with or without the loopback allowance; loopback ones
/// only without it.
#[tokio::test]
async fn private_and_metadata_urls_are_refused_at_creation() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let strict = TestApp::with_store(test_config(&[("WEBHOOKS", "on")]), Arc::clone(&store)).await;
    let allowing = TestApp::with_store(config(&[]), Arc::clone(&store)).await;
    for url in [
        "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://10.0.0.1/hooks",
        "https://172.16.0.1/hooks",
        "https://172.31.255.254/hooks",
        "https://192.168.1.1/hooks",
        "https://0.0.0.0/hooks",
        "https://[fd00:ec2::254]/latest/meta-data/",
        "https://100.64.0.1/hooks",
        "https://[::ffff:169.254.169.254]/",
        "https://[::ffff:a00:1]/",
        "https://[fe80::1]/",
        "https://[::]/",
        "https://224.0.0.1/",
        "https://255.255.255.255/",
        "https://203.0.113.7/",
        "https://[64:ff9b::a9fe:a9fe]/",
        "https://[2002:a9fe:a9fe::]/",
    ] {
        for app in [&strict, &allowing] {
            let resp = create(app, url).await;
            resp.assert_error(422, "form_param_value_invalid");
            assert_eq!(resp.body["errors"][0]["meta"]["param_name"], "url", "{url}");
        }
    }
    for url in [
        "http://127.0.0.1:9/hooks",
        "https://127.0.0.1/hooks",
        "http://localhost:3000/api/webhooks",
        "http://[::1]:8080/",
    ] {
        create(&strict, url)
            .await
            .assert_error(422, "form_param_value_invalid");
        create(&allowing, url).await.ok();
    }
    create(&strict, "https://hooks.example.com/clerk")
        .await
        .ok();
    assert_eq!(store.list_webhook_endpoints().await.unwrap().len(), 5);
}

async fn create(app: &TestApp, url: &str) -> testkit::app::TestResponse {
    app.send(
        Req::post("/v1/webhooks/endpoints")
            .secret()
            .json(&json!({ "url": url })),
    )
    .await
}

/// Two processes on one SQLite database share its outbox: a delivery leased by one is not
/// handed to the other until the lease runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_never_lease_one_delivery_at_once() {
    let file = TempDatabase::new();
    let (first, second): (Arc<dyn Store>, Arc<dyn Store>) = (file.open(), file.open());
    let app = TestApp::with_store(config(&[]), Arc::clone(&first)).await;
    endpoint(&app, NOWHERE, &[]).await;
    app.create_user().await;
    let now = app.now_ms();
    let leased = first
        .outbox()
        .unwrap()
        .due_deliveries(now, now + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    let other = second.outbox().unwrap();
    assert!(other
        .due_deliveries(now + 59_999, now + 120_000, 10)
        .await
        .unwrap()
        .is_empty());
    let after = other
        .due_deliveries(now + 60_000, now + 120_000, 10)
        .await
        .unwrap();
    assert_eq!(
        after.len(),
        1,
        "the lease ran out: the other process attempts it"
    );
    assert_eq!(after[0].event.id, leased[0].event.id);
}

/// With webhooks off nothing is recorded, and endpoints cannot be created.
#[tokio::test]
async fn with_webhooks_off_nothing_is_recorded() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let on = TestApp::with_store(config(&[]), Arc::clone(&store)).await;
    endpoint(&on, NOWHERE, &[]).await;
    let off = TestApp::with_store(test_config(&[("WEBHOOKS", "off")]), Arc::clone(&store)).await;
    let user = off.create_user().await;
    off.native_sign_in("", &user).await;
    assert!(drain(&store, off.now_ms()).await.is_empty());
    off.send(
        Req::post("/v1/webhooks/endpoints")
            .secret()
            .json(&json!({"url": NOWHERE})),
    )
    .await
    .assert_error(400, "webhooks_disabled");
}

/// On DynamoDB too, racing ends of one session record one event item.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_ends_record_one_event_item_on_dynamodb() {
    let Some(table) = testkit::stores::dynamodb().await else {
        return;
    };
    let store: Arc<dyn Store> = table.clone();
    let app = Arc::new(TestApp::with_store(config(&[]), store).await);
    let user = app.create_user().await;
    let (token, sid) = app.native_sign_in("", &user).await;
    // A second on, so the items' sort keys (time, then id) list them in the order written.
    app.clock.advance_secs(1);
    let mut ends = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (app, token, sid) = (Arc::clone(&app), token.clone(), sid.clone());
        ends.spawn(async move {
            app.send(Req::post(session_path(&sid, "end")).native(&token))
                .await
                .status
        });
    }
    while ends.join_next().await.is_some() {}
    let items = table
        .client()
        .query()
        .table_name(table.table_name())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("EVENT#{sid}")),
        )
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let kinds: Vec<String> = items
        .iter()
        .map(|i| {
            let data: Value = serde_json::from_str(i["data"].as_s().unwrap()).unwrap();
            data["type"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        ["session.created", "session.ended"],
        "in order, once each"
    );
}
