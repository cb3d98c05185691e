//! Figure 1: token minting in process, `POST /v1/client/sessions/{id}/tokens`, against its
//! floor, one RSA-2048 signature; and criterion's means when criterion ran.

use std::path::Path;
use std::time::{Duration, Instant};

use bench::in_process::{self, SignFloor};
use bench::stats::{fmt_duration, ratio, Summary};
use serde_json::Value;

use super::Plan;
use crate::report::{ms, Table};

/// Targets from the issue.
const TOKENS_MAX: f64 = 1.15;

pub struct Minting {
    pub floor: Summary,
    pub tokens: Summary,
}

/// The handler and its floor, interleaved sample by sample so that both see the same
/// machine (a noisy neighbour slows both, and the ratio holds).
pub async fn measure(plan: &Plan) -> Minting {
    let app = in_process::app().await;
    let s = in_process::native_session(&app).await;

    // The floor signs what a real session token signs: its `header.payload`.
    let minted = app.dispatch(in_process::tokens(&s)).await;
    assert_eq!(minted.status(), 200, "mint: {}", minted.body());
    let jwt: Value = serde_json::from_str(minted.body()).expect("token JSON");
    let mut floor = SignFloor::new(jwt["jwt"].as_str().expect("jwt"));

    let warmup = plan.inprocess_tokens / 10 + 5;
    let (mut floor_t, mut tokens_t) = (Vec::new(), Vec::new());
    for i in 0..warmup + plan.inprocess_tokens {
        let t = Instant::now();
        std::hint::black_box(floor.sign());
        let f = t.elapsed();
        let req = in_process::tokens(&s);
        let t = Instant::now();
        let resp = app.dispatch(req).await;
        let h = t.elapsed();
        assert_eq!(resp.status(), 200, "mint: {}", resp.body());
        drop(resp);
        if i >= warmup {
            floor_t.push(f);
            tokens_t.push(h);
        }
    }
    Minting {
        floor: Summary::of(&floor_t),
        tokens: Summary::of(&tokens_t),
    }
}

/// Criterion's mean estimate of one benchmark, in nanoseconds, when it ran.
fn criterion_mean(dir: &Path, group: &str, name: &str) -> Option<f64> {
    let text =
        std::fs::read_to_string(dir.join(group).join(name).join("new/estimates.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

impl Minting {
    pub fn rows(&self, t: &mut Table, criterion_dir: Option<&Path>) {
        let r = ratio(ms(self.tokens.p50), ms(self.floor.p50));
        t.target_row(
            [
                "1 token minting, `POST …/tokens` in process, p50".into(),
                fmt_duration(self.tokens.p50),
                format!(
                    "{} (one RSA-2048 PKCS#1 v1.5 SHA-256 signature)",
                    fmt_duration(self.floor.p50)
                ),
                format!("{r:.3}×"),
                format!("≤ {TOKENS_MAX}×"),
            ],
            r <= TOKENS_MAX,
            || format!("by {:.1} %", (r / TOKENS_MAX - 1.0) * 100.0),
        );
        t.reported_row([
            "1 token minting, p99".into(),
            fmt_duration(self.tokens.p99),
            fmt_duration(self.floor.p99),
            format!("{:.3}×", ratio(ms(self.tokens.p99), ms(self.floor.p99))),
        ]);
        let Some(dir) = criterion_dir else {
            return;
        };
        if let (Some(h), Some(f)) = (
            criterion_mean(dir, "tokens", "handler"),
            criterion_mean(dir, "tokens", "floor_rsa_sign"),
        ) {
            t.reported_row([
                "1 token minting, criterion mean".into(),
                fmt_duration(Duration::from_nanos(h as u64)),
                fmt_duration(Duration::from_nanos(f as u64)),
                format!("{:.3}×", h / f),
            ]);
        }
    }
}
