//! Figure 3: each function binary's cold start under the Runtime API emulator, against
//! `hello-lambda`'s: spawn to the first answer, and the process's own start-up.

use std::collections::BTreeMap;
use std::time::Duration;

use bench::stats::{fmt_duration, median, ratio};
use testkit::emulator;

use super::functions::{Functions, HELLO};
use super::{progress, Plan};
use crate::report::{ms, Table};

/// Target from the issue.
const COLD_MAX: f64 = 1.5;

/// The function whose cold start is also taken with its trace sampled (X-Ray on).
const TRACED_FUNCTION: &str = "fapi-session-get";
const TRACED: &str = "fapi-session-get, trace sampled";

#[derive(Default)]
pub struct Starts {
    pub cold: Vec<Duration>,
    pub startup: Vec<Duration>,
}

impl Starts {
    fn add(&mut self, run: &emulator::Run) {
        self.cold.push(run.cold_start);
        self.startup.push(run.startup);
    }
}

/// By binary, `hello-lambda` included.
pub struct ColdStarts(pub BTreeMap<&'static str, Starts>);

/// Round-robin: one start of each binary per round, so drift hits all alike.
pub async fn measure(plan: &Plan, f: &Functions) -> Result<ColdStarts, String> {
    let mut out: BTreeMap<&'static str, Starts> = BTreeMap::new();
    for round in 0..plan.cold_starts {
        progress(&format!(
            "cold starts, round {}/{}",
            round + 1,
            plan.cold_starts
        ));
        let run = emulator::run(&f.binary(HELLO), HELLO, &f.hello_event, 1, &[]).await?;
        out.entry(HELLO).or_default().add(&run);
        for case in &f.cases {
            let env = f.env(case.function)?;
            // One function also starts with its trace sampled, as with XRayTracing=true.
            let traced =
                (case.function == TRACED_FUNCTION).then_some((TRACED, emulator::TRACE_SAMPLED));
            let plain = (case.function, emulator::TRACE_NOT_SAMPLED);
            for (key, trace) in std::iter::once(plain).chain(traced) {
                let binary = f.binary(case.function);
                let run = emulator::run_traced(&binary, case.function, &case.event, 1, &env, trace)
                    .await?;
                out.entry(key).or_default().add(&run);
            }
        }
    }
    Ok(ColdStarts(out))
}

impl ColdStarts {
    pub fn rows(&self, t: &mut Table, f: &Functions) {
        let hello = &self.0[HELLO];
        let hello_cold = median(&hello.cold);
        for case in &f.cases {
            let starts = &self.0[case.function];
            let cold = median(&starts.cold);
            let r = ratio(ms(cold), ms(hello_cold));
            t.target_row(
                [
                    format!(
                        "3 cold start `{}` (median of {})",
                        case.function,
                        starts.cold.len()
                    ),
                    format!(
                        "{} (start-up {})",
                        fmt_duration(cold),
                        fmt_duration(median(&starts.startup))
                    ),
                    format!(
                        "{} (start-up {}; `{HELLO}`)",
                        fmt_duration(hello_cold),
                        fmt_duration(median(&hello.startup))
                    ),
                    format!("{r:.2}×"),
                    format!("≤ {COLD_MAX}×"),
                ],
                r <= COLD_MAX,
                || format!("by {:.0} %", (r / COLD_MAX - 1.0) * 100.0),
            );
        }
        if let (Some(traced), Some(plain)) = (self.0.get(TRACED), self.0.get(TRACED_FUNCTION)) {
            let (on, off) = (median(&traced.cold), median(&plain.cold));
            t.reported_row([
                format!(
                    "3 cold start `{TRACED_FUNCTION}` with its trace sampled (XRayTracing=true; median of {})",
                    traced.cold.len()
                ),
                format!(
                    "{} (start-up {})",
                    fmt_duration(on),
                    fmt_duration(median(&traced.startup))
                ),
                format!("{} (trace not sampled, same rounds)", fmt_duration(off)),
                format!("{:.2}×", ratio(ms(on), ms(off))),
            ]);
        }
    }
}

/// Figure 3 on DynamoDB: each function's start-up (init: the SDK client made and, for
/// the functions that use the store, its connection opened by reading the keyring) and
/// its first call, apart. Run when the benchmark is given a DynamoDB-compatible endpoint
/// (`AWS_ENDPOINT_URL_DYNAMODB`, as `scripts/bench.sh` sets it); the table is seeded with
/// the fixtures' data. Against a local server, not DynamoDB itself: the calls' latency is
/// that server's.
pub async fn measure_dynamodb(plan: &Plan, f: &Functions) -> Result<Option<ColdStarts>, String> {
    let Some(endpoint) = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
        .ok()
        .filter(|e| !e.is_empty())
    else {
        return Ok(None);
    };
    let table = shared::ids::new_id("bench");
    testkit::fixtures::seed_dynamodb(&table, &endpoint).await?;
    let mut out: BTreeMap<&'static str, Starts> = BTreeMap::new();
    for round in 0..plan.cold_starts {
        progress(&format!(
            "cold starts on DynamoDB, round {}/{}",
            round + 1,
            plan.cold_starts
        ));
        for case in &f.cases {
            let env = testkit::fixtures::function_env_dynamodb(&table);
            let run = emulator::run(
                &f.binary(case.function),
                case.function,
                &case.event,
                1,
                &env,
            )
            .await?;
            out.entry(case.function).or_default().add(&run);
        }
    }
    Ok(Some(ColdStarts(out)))
}

impl ColdStarts {
    /// The DynamoDB rows: init and first call, reported.
    pub fn dynamodb_rows(&self, t: &mut Table, f: &Functions, hello: &ColdStarts) {
        let hello = &hello.0[HELLO];
        for case in &f.cases {
            let Some(starts) = self.0.get(case.function) else {
                continue;
            };
            let cold = median(&starts.cold);
            let init = median(&starts.startup);
            t.reported_row([
                format!(
                    "3 cold start on DynamoDB (moto) `{}` (median of {})",
                    case.function,
                    starts.cold.len()
                ),
                format!(
                    "init {}, first call {}",
                    fmt_duration(init),
                    fmt_duration(cold.saturating_sub(init))
                ),
                format!(
                    "init {}, first call {} (`{HELLO}`)",
                    fmt_duration(median(&hello.startup)),
                    fmt_duration(median(&hello.cold).saturating_sub(median(&hello.startup)))
                ),
                format!("{:.2}×", ratio(ms(cold), ms(median(&hello.cold)))),
            ]);
        }
    }
}
