//! Figure 4: each function binary fed the same event many times by the Runtime API
//! emulator, as a warm sandbox is: per-invocation latency, and resident memory after the
//! first invocation, after the last, and at its peak; beside `hello-lambda`'s.

use std::collections::BTreeMap;
use std::time::Duration;

use bench::stats::{fmt_duration, fmt_mb, Summary};
use testkit::emulator::{self, Run};

use super::functions::{Functions, HELLO};
use super::{progress, Plan};
use crate::report::Table;

/// Targets from the issue.
const RSS_GROWTH_MAX: f64 = 1.2;
pub const PEAK_MAX_KB: u64 = 40 * 1024;

/// By binary, `hello-lambda` included.
pub struct SteadyStates(pub BTreeMap<&'static str, Run>);

/// One process per binary, `invocations` events each.
pub async fn measure(plan: &Plan, f: &Functions) -> Result<SteadyStates, String> {
    let mut out = BTreeMap::new();
    progress(&format!("steady state: {HELLO}"));
    let run = emulator::run(
        &f.binary(HELLO),
        HELLO,
        &f.hello_event,
        plan.invocations,
        &[],
    )
    .await?;
    out.insert(HELLO, run);
    for case in &f.cases {
        progress(&format!(
            "steady state: {} × {}",
            case.function, plan.invocations
        ));
        let env = f.env(case.function)?;
        let run = emulator::run(
            &f.binary(case.function),
            case.function,
            &case.event,
            plan.invocations,
            &env,
        )
        .await?;
        out.insert(case.function, run);
    }
    Ok(SteadyStates(out))
}

impl SteadyStates {
    /// Each function's warm p50, for the cost section.
    pub fn warm_p50(&self, f: &Functions) -> BTreeMap<&'static str, Duration> {
        f.cases
            .iter()
            .filter_map(|c| {
                Some((
                    c.function,
                    Summary::of(&self.0.get(c.function)?.latencies).p50,
                ))
            })
            .collect()
    }

    pub fn rows(&self, t: &mut Table, f: &Functions) {
        let hello_run = &self.0[HELLO];
        let hello_lat = Summary::of(&hello_run.latencies);
        for case in &f.cases {
            let Some(run) = self.0.get(case.function) else {
                continue;
            };
            let lat = Summary::of(&run.latencies);
            let growth = run.rss_last_kb as f64 / run.rss_first_kb.max(1) as f64;
            let unexpected: usize = run
                .statuses
                .iter()
                .filter(|(s, _)| **s != case.expected_status)
                .map(|(_, n)| n)
                .sum();
            t.target_row(
                [
                    format!(
                        "4 steady state `{}` × {} (`{}`, {})",
                        case.function,
                        run.latencies.len(),
                        case.event_name,
                        case.expected_status
                    ),
                    format!(
                        "p50 {} / p99 {}; RSS {} → {}, peak {}",
                        fmt_duration(lat.p50),
                        fmt_duration(lat.p99),
                        fmt_mb(run.rss_first_kb),
                        fmt_mb(run.rss_last_kb),
                        fmt_mb(run.peak_kb)
                    ),
                    format!(
                        "p50 {} / p99 {}; RSS {} (`{HELLO}`)",
                        fmt_duration(hello_lat.p50),
                        fmt_duration(hello_lat.p99),
                        fmt_mb(hello_run.rss_last_kb)
                    ),
                    format!("RSS {growth:.2}×"),
                    format!("RSS ≤ {RSS_GROWTH_MAX}× after first, peak ≤ 40 MB"),
                ],
                growth <= RSS_GROWTH_MAX && run.peak_kb <= PEAK_MAX_KB && unexpected == 0,
                || {
                    let mut why = Vec::new();
                    if growth > RSS_GROWTH_MAX {
                        why.push(format!(
                            "RSS grew {:.0} % over the limit",
                            (growth / RSS_GROWTH_MAX - 1.0) * 100.0
                        ));
                    }
                    if run.peak_kb > PEAK_MAX_KB {
                        why.push(format!("peak {} over", fmt_mb(run.peak_kb - PEAK_MAX_KB)));
                    }
                    if unexpected > 0 {
                        why.push(format!("{unexpected} unexpected answers"));
                    }
                    why.join(", ")
                },
            );
        }
    }
}
