//! Figure 13: a password sign-in in process (`POST /v1/client/sign_ins` with `identifier`
//! and `password`, a new native client each time) against its floor, the two costs no
//! sign-in can skip: one argon2id verification at the parameters passwords are kept with
//! and one RSA-2048 signature (the new session's `last_active_token`). And a whole
//! sign-up (create with a password, prepare, attempt the code), reported beside one
//! argon2id hash and one signature.

use std::time::{Duration, Instant};

use bench::in_process::{self, SignFloor};
use bench::stats::{fmt_duration, ratio, Summary};
use serde_json::{json, Value};
use shared::domain::password::PasswordDigest;
use testkit::app::{Req, TestApp};

use super::Plan;
use crate::report::{ms, Table};

/// Target: a password sign-in within 1.2× its floor.
const SIGN_IN_MAX: f64 = 1.2;
const PASSWORD: &str = "plum-tractor-vinegar-42";

pub struct SignIn {
    pub floor: Summary,
    pub sign_in: Summary,
    pub sign_up_floor: Summary,
    pub sign_up: Summary,
    /// docs/dynamodb.md's calls table, for the cost rows.
    pub calls: Vec<bench::costs::Row>,
}

/// Lambda gives a function CPU in proportion to its memory, one vCPU at 1,769 MB: at the
/// template's 512 MB the same work takes about this many times as long as on one core
/// here (argon2id is pure CPU).
const LAMBDA_SLOWDOWN: f64 = 1769.0 / 512.0;

fn sign_in_request(email: &str) -> http::Request<bytes::Bytes> {
    Req::post("/v1/client/sign_ins")
        .native("")
        .form(&format!("identifier={email}&password={PASSWORD}"))
        .into_request()
}

async fn body(app: &TestApp, req: http::Request<bytes::Bytes>) -> Value {
    let resp = app.dispatch(req).await;
    assert_eq!(resp.status(), 200, "{}", resp.body());
    serde_json::from_str(resp.body()).expect("JSON")
}

/// A whole sign-up of `email`: create, prepare, attempt the code the mail carried.
async fn sign_up(app: &TestApp, email: &str) {
    let resp = app
        .send(
            Req::post("/v1/client/sign_ups")
                .native("")
                .form(&format!("email_address={email}&password={PASSWORD}")),
        )
        .await;
    let id = resp.ok()["response"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let token = resp.header("authorization").expect("token").to_string();
    let step = |action: &str, body: &str| {
        Req::post(format!("/v1/client/sign_ups/{id}/{action}"))
            .native(&token)
            .form(body)
    };
    app.send(step("prepare_verification", "strategy=email_code"))
        .await
        .ok();
    let code = app.mail.code(email).expect("a code");
    let done = app
        .send(step(
            "attempt_verification",
            &format!("strategy=email_code&code={code}"),
        ))
        .await;
    assert_eq!(done.ok()["response"]["status"], "complete");
}

/// Interleaved sample by sample with its floor, as figure 1.
pub async fn measure(plan: &Plan, repo: &std::path::Path) -> SignIn {
    let app = in_process::app().await;
    let email = "pat@example.com";
    app.create_user_from(&json!({"email_address": [email], "password": PASSWORD}))
        .await;
    let first = body(&app, sign_in_request(email)).await;
    let jwt = first["client"]["sessions"][0]["last_active_token"]["jwt"]
        .as_str()
        .expect("the new session's token");
    let mut signer = SignFloor::new(jwt);
    let digest = PasswordDigest::new(PASSWORD).expect("a digest");

    let samples = plan.inprocess_writes;
    let warmup = samples / 10 + 2;
    let (mut floor_t, mut sign_in_t) = (Vec::new(), Vec::new());
    for i in 0..warmup + samples {
        let t = Instant::now();
        std::hint::black_box(digest.verify(PASSWORD));
        std::hint::black_box(signer.sign());
        let f = t.elapsed();
        let req = sign_in_request(email);
        let t = Instant::now();
        let resp = app.dispatch(req).await;
        let h = t.elapsed();
        assert_eq!(resp.status(), 200, "sign-in: {}", resp.body());
        if i >= warmup {
            floor_t.push(f);
            sign_in_t.push(h);
        }
    }

    let (mut up_floor_t, mut up_t) = (Vec::new(), Vec::new());
    for i in 0..warmup + samples / 2 {
        let t = Instant::now();
        std::hint::black_box(PasswordDigest::new(PASSWORD).expect("a digest"));
        std::hint::black_box(signer.sign());
        let f = t.elapsed();
        let email = format!("{}@example.com", shared::ids::new_id("u"));
        let t = Instant::now();
        sign_up(&app, &email).await;
        let h = t.elapsed();
        if i >= warmup {
            up_floor_t.push(f);
            up_t.push(h);
        }
    }
    SignIn {
        floor: Summary::of(&floor_t),
        sign_in: Summary::of(&sign_in_t),
        sign_up_floor: Summary::of(&up_floor_t),
        sign_up: Summary::of(&up_t),
        calls: bench::costs::dynamodb_rows(repo),
    }
}

/// The cost per million of the documented endpoints whose names start with `prefixes`
/// (one each), their CPU taken as `cpu` shared out evenly, scaled to Lambda at 512 MB.
fn cost_per_million(calls: &[bench::costs::Row], endpoints: &[&str], cpu: Duration) -> Option<f64> {
    let share = cpu.mul_f64(LAMBDA_SLOWDOWN / endpoints.len() as f64);
    endpoints
        .iter()
        .map(|e| {
            calls
                .iter()
                .find(|r| r.endpoint == *e)
                .map(|row| bench::costs::per_million(row, share).total())
        })
        .sum()
}

impl SignIn {
    pub fn rows(&self, t: &mut Table) {
        let r = ratio(ms(self.sign_in.p50), ms(self.floor.p50));
        t.target_row(
            [
                "13 password sign-in, `POST /v1/client/sign_ins` in process, p50".into(),
                fmt_duration(self.sign_in.p50),
                format!(
                    "{} (one argon2id verification, m=19 MiB t=2 p=1, and one RSA-2048 signature)",
                    fmt_duration(self.floor.p50)
                ),
                format!("{r:.3}×"),
                format!("≤ {SIGN_IN_MAX}×"),
            ],
            r <= SIGN_IN_MAX,
            || format!("by {:.1} %", (r / SIGN_IN_MAX - 1.0) * 100.0),
        );
        t.reported_row([
            "13 password sign-in, p99".into(),
            fmt_duration(self.sign_in.p99),
            fmt_duration(self.floor.p99),
            format!("{:.3}×", ratio(ms(self.sign_in.p99), ms(self.floor.p99))),
        ]);
        t.reported_row([
            "13 sign-up (create with a password, prepare, attempt the code: 3 requests), p50"
                .into(),
            fmt_duration(self.sign_up.p50),
            format!(
                "{} (one argon2id hash and one RSA-2048 signature)",
                fmt_duration(self.sign_up_floor.p50)
            ),
            format!(
                "{:.3}×",
                ratio(ms(self.sign_up.p50), ms(self.sign_up_floor.p50))
            ),
        ]);
        let sign_in = cost_per_million(
            &self.calls,
            &["POST /v1/client/sign_ins (password, new client)"],
            self.sign_in.p50,
        );
        let sign_up = cost_per_million(
            &self.calls,
            &[
                "POST /v1/client/sign_ups",
                "POST /v1/client/sign_ups/{id}/prepare_verification",
                "POST /v1/client/sign_ups/{id}/attempt_verification",
            ],
            self.sign_up.p50,
        );
        if let (Some(sign_in), Some(sign_up)) = (sign_in, sign_up) {
            t.reported_row([
                "13 cost per million at AWS list prices (docs/dynamodb.md's calls; the p50 above × 1769/512 for Lambda at 512 MB, + 5 ms per DynamoDB call)".into(),
                format!("password sign-ins ${sign_in:.2}; sign-ups (3 requests each) ${sign_up:.2}"),
                "—".into(),
                "—".into(),
            ]);
        }
    }
}
