//! Fault injection on DynamoDB: `local-api` on the DynamoDB store, with a proxy between it
//! and the test command's moto that loses 20 % of the answers after the call was applied
//! and fails 10 % more (throttling, 500s, dropped connections, answers past the SDK's
//! attempt time-out). Four clients sign users in and out at once. Then, with the faults
//! off, every record in the table is held against what the clients were told:
//! - no wrong answer: every request answered what it did (a 2xx), or 503 with a ClerkErrors
//!   body and `Retry-After`; never a 4xx for an operation that succeeded;
//! - no orphan: every user and session in the table was answered to its caller;
//! - no lost acknowledged write: every user and session answered is there, in the status
//!   the answers left it, and an acknowledged end is never mintable.
//!
//! The same checks after a `kill -9` of the server and a restart on the same table.
//! Start-up itself rides out a throttled table, and gives up with a clear message once
//! its budget (`STARTUP_RETRY_SECONDS`) is spent.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use testkit::fault_proxy::{FaultProxy, Faults};
use testkit::local_api::{Answer, Http, LocalApi};

const WORKERS: usize = 4;
const ROUNDS: usize = 5;
const SECRET: &str = "sk_test_faults_0123456789abcdefghijklmnopqrstuv";

fn start(table: &str, dynamodb: &str, extra: &[(&str, &str)]) -> LocalApi {
    let mut env = vec![
        ("STORE_BACKEND", "dynamodb"),
        ("DYNAMODB_TABLE_NAME", table),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb),
        ("BACKEND_API_SECRET_KEY", SECRET),
    ];
    env.extend_from_slice(extra);
    LocalApi::start(Path::new(env!("CARGO_BIN_EXE_local-api")), &[], &env)
        .expect("local-api starts")
}

/// What the clients were told.
#[derive(Clone, Default)]
struct Ledger {
    users: HashSet<String>,
    /// Session id → whether an end of it was acknowledged.
    sessions: HashMap<String, bool>,
    /// Answers that should not have been given, with what was asked.
    wrong: Vec<String>,
    unavailable: usize,
}

struct Client {
    http: Http,
    base: String,
    ledger: Arc<Mutex<Ledger>>,
}

impl Client {
    /// Sends a request until it is answered other than 503 (at most 5 times, as a careful
    /// caller retries a 503); a 503 must be a ClerkErrors body with `Retry-After`.
    async fn send(
        &self,
        what: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, String)>,
    ) -> Answer {
        let url = format!("{}{path}", self.base);
        for _ in 0..5 {
            let a = self.http.send(method, &url, headers, body.clone()).await;
            if a.status != 503 {
                return a;
            }
            let well_formed = a.body["errors"][0]["code"] == "service_unavailable"
                && a.headers.contains_key("retry-after");
            eprintln!("503 on {what}: {}", a.body);
            {
                let mut ledger = self.ledger.lock().unwrap();
                ledger.unavailable += 1;
                if !well_formed {
                    ledger.wrong.push(format!(
                        "{what}: a 503 without ClerkErrors and Retry-After: {}",
                        a.body
                    ));
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.http.send(method, &url, headers, body).await
    }

    fn wrong(&self, what: &str, a: &Answer) {
        self.ledger
            .lock()
            .unwrap()
            .wrong
            .push(format!("{what}: {} {}", a.status, a.body));
    }

    /// One user's life: made, a ticket, a client, signed in, a token, a touch, maybe an end.
    async fn round(&self, end: bool) {
        let sk = format!("Bearer {SECRET}");
        let bapi = [("authorization", sk.as_str())];
        let json = |v: Value| Some(("application/json", v.to_string()));
        let user = self
            .send(
                "create user",
                "POST",
                "/v1/users",
                &bapi,
                json(json!({"first_name": "F"})),
            )
            .await;
        let Some(user_id) = user.body["id"].as_str().filter(|_| user.status == 200) else {
            return self.wrong("create user", &user);
        };
        self.ledger
            .lock()
            .unwrap()
            .users
            .insert(user_id.to_string());
        let ticket = self
            .send(
                "ticket",
                "POST",
                "/v1/sign_in_tokens",
                &bapi,
                json(json!({"user_id": user_id})),
            )
            .await;
        let Some(ticket) = ticket.body["token"]
            .as_str()
            .filter(|_| ticket.status == 200)
        else {
            return self.wrong("ticket", &ticket);
        };
        let client = self
            .send("client", "POST", "/v1/client?_is_native=1", &[], None)
            .await;
        let Some(token) = client
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
        else {
            return self.wrong("client", &client);
        };
        let token = token.to_string();
        // A retry of the sign-in carries the same ticket and client token: it is answered
        // the session it made.
        let sign_in = self
            .send(
                "sign in",
                "POST",
                "/v1/client/sign_ins?_is_native=1",
                &[("authorization", &token)],
                Some((
                    "application/x-www-form-urlencoded",
                    format!("strategy=ticket&ticket={ticket}"),
                )),
            )
            .await;
        let sid = sign_in.body["response"]["created_session_id"].as_str();
        let token = sign_in
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let (Some(sid), Some(token), 200) = (sid, token, sign_in.status) else {
            return self.wrong("sign in", &sign_in);
        };
        let (sid, token) = (sid.to_string(), token.to_string());
        self.ledger
            .lock()
            .unwrap()
            .sessions
            .insert(sid.clone(), false);
        let native = [("authorization", token.as_str())];
        let path = |action: &str| format!("/v1/client/sessions/{sid}/{action}?_is_native=1");
        for action in ["tokens", "touch"] {
            let a = self
                .send(action, "POST", &path(action), &native, None)
                .await;
            if a.status != 200 {
                self.wrong(action, &a);
            }
        }
        if end {
            let a = self.send("end", "POST", &path("end"), &native, None).await;
            // A retried end that the first attempt already made is refused as a second move.
            let ended = a.status == 200 && a.body["response"]["status"] == "ended"
                || a.body["errors"][0]["code"] == "invalid_action_for_session";
            if !ended {
                return self.wrong("end", &a);
            }
            self.ledger
                .lock()
                .unwrap()
                .sessions
                .insert(sid.clone(), true);
            let mint = self
                .send("mint after end", "POST", &path("tokens"), &native, None)
                .await;
            if mint.status != 401 {
                self.wrong("mint after end", &mint);
            }
        }
    }
}

async fn workload(base: &str, ledger: &Arc<Mutex<Ledger>>) {
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..WORKERS {
        let client = Client {
            http: Http::new(),
            base: base.to_string(),
            ledger: Arc::clone(ledger),
        };
        workers.spawn(async move {
            for r in 0..ROUNDS {
                client.round((w + r) % 2 == 0).await;
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.expect("a worker panicked");
    }
}

/// Every key of the table's items with this partition prefix and sort key.
async fn stored(table: &str, endpoint: &str, prefix: &str, sk: &str) -> HashSet<String> {
    let store =
        shared::store::DynamoDbStore::new(table.to_string(), Some(endpoint.to_string())).await;
    let mut out = HashSet::new();
    let mut start = None;
    loop {
        let page = store
            .client()
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .expect("scan the table");
        for item in page.items() {
            let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(s))) =
                (item.get("pk"), item.get("sk"))
            else {
                continue;
            };
            if let (Some(id), true) = (pk.strip_prefix(prefix), s == sk) {
                out.insert(id.to_string());
            }
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return out,
        }
    }
}

/// The three checks, against the table as the server reads it (faults off).
async fn check(base: &str, table: &str, moto: &str, ledger: &Ledger) {
    assert!(
        ledger.wrong.is_empty(),
        "wrong answers: {:#?}",
        ledger.wrong
    );
    // No orphans: everything stored was answered.
    let users = stored(table, moto, "USER#", "USER").await;
    let orphans: Vec<_> = users.difference(&ledger.users).collect();
    assert!(
        orphans.is_empty(),
        "users nobody was told about: {orphans:?}"
    );
    let sessions = stored(table, moto, "SESSION#", "SESSION").await;
    let answered: HashSet<String> = ledger.sessions.keys().cloned().collect();
    let orphans: Vec<_> = sessions.difference(&answered).collect();
    assert!(
        orphans.is_empty(),
        "sessions nobody was told about: {orphans:?}"
    );
    // No lost acknowledged writes.
    let missing: Vec<_> = ledger.users.difference(&users).collect();
    assert!(missing.is_empty(), "acknowledged users lost: {missing:?}");
    let http = Http::new();
    let sk = format!("Bearer {SECRET}");
    for (sid, ended) in &ledger.sessions {
        let a = http
            .send(
                "GET",
                &format!("{base}/v1/sessions/{sid}"),
                &[("authorization", &sk)],
                None,
            )
            .await;
        let want = if *ended { "ended" } else { "active" };
        assert_eq!(a.body["status"], want, "session {sid}: {}", a.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_and_faults_leave_no_wrong_answer_orphan_or_lost_write() {
    let Some(moto) = testkit::stores::dynamodb_endpoint() else {
        return;
    };
    let proxy = FaultProxy::start(&moto, 0x5eed).await;
    let table = shared::ids::new_id("faults");
    let server = start(&table, &proxy.url(), &[]);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    proxy.set_faults(Faults {
        lost_answer: 0.20,
        other: 0.10,
    });
    workload(&server.url(), &ledger).await;
    let injected = proxy.injected();
    proxy.set_faults(Faults::default());
    assert!(
        injected.lost_answers > 0 && injected.throttled + injected.dropped > 0,
        "{injected:?}"
    );
    let told = ledger.lock().unwrap().clone();
    check(&server.url(), &table, &moto, &told).await;

    // kill -9 (what dropping the process does), a restart on the same table, more of the
    // same, and the checks over everything.
    drop(server);
    let server = start(&table, &proxy.url(), &[]);
    proxy.set_faults(Faults {
        lost_answer: 0.20,
        other: 0.10,
    });
    workload(&server.url(), &ledger).await;
    proxy.set_faults(Faults::default());
    let ledger = ledger.lock().unwrap().clone();
    check(&server.url(), &table, &moto, &ledger).await;
    eprintln!(
        "faults: {:?}; {} users, {} sessions; {} answers were 503",
        proxy.injected(),
        ledger.users.len(),
        ledger.sessions.len(),
        ledger.unavailable
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_rides_out_a_throttled_table_within_its_budget() {
    let Some(moto) = testkit::stores::dynamodb_endpoint() else {
        return;
    };
    let proxy = FaultProxy::start(&moto, 7).await;
    let table = shared::ids::new_id("startup");
    // Every call throttled for the first two seconds: the server waits it out.
    proxy.set_outage(true);
    let lift = tokio::spawn({
        let proxy_url = proxy.url();
        async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            proxy_url
        }
    });
    let starting = tokio::task::spawn_blocking({
        let (table, url) = (table.clone(), proxy.url());
        move || start(&table, &url, &[("STARTUP_RETRY_SECONDS", "30")])
    });
    lift.await.unwrap();
    proxy.set_outage(false);
    let server = starting.await.unwrap();
    assert!(proxy.injected().throttled > 0);
    let a = Http::new()
        .send(
            "GET",
            &format!("{}/.well-known/jwks.json", server.url()),
            &[],
            None,
        )
        .await;
    assert_eq!(a.status, 200);

    // Throttled past the budget: it exits 1 and says why.
    proxy.set_outage(true);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_local-api"))
        .args(["--port", "0"])
        .env("STORE_BACKEND", "dynamodb")
        .env("DYNAMODB_TABLE_NAME", shared::ids::new_id("startup"))
        .env("AWS_ENDPOINT_URL_DYNAMODB", proxy.url())
        .env("BACKEND_API_SECRET_KEY", SECRET)
        .env("STARTUP_RETRY_SECONDS", "1")
        .env_remove("EMBEDDED_STORE_PATH")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run local-api");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("still unavailable after") && stderr.contains("STARTUP_RETRY_SECONDS=1"),
        "{stderr}"
    );
}
