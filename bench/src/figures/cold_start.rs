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

#[derive(Default)]
pub struct Starts {
    pub cold: Vec<Duration>,
    pub startup: Vec<Duration>,
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
        let hello = out.entry(HELLO).or_default();
        hello.cold.push(run.cold_start);
        hello.startup.push(run.startup);
        for case in &f.cases {
            let env = f.env(case.function)?;
            let run = emulator::run(
                &f.binary(case.function),
                case.function,
                &case.event,
                1,
                &env,
            )
            .await?;
            let starts = out.entry(case.function).or_default();
            starts.cold.push(run.cold_start);
            starts.startup.push(run.startup);
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
    }
}
