//! Figure 10: what metrics cost a session read in process. Three copies of the service,
//! each with its metrics registered with a different recorder: none (recording does
//! nothing), the local server's Prometheus recorder, and Lambda's Embedded Metric Format
//! recorder (also writing its lines after each request, as a function does after each
//! invocation; to a sink, so the figure is the formatting, not the terminal). Sampled
//! interleaved, so that all three see the same machine.
//!
//! The EMF recorder can only be installed globally, so this figure runs after the other
//! in-process ones: from here on the bench process records into it.

use std::time::Instant;

use bench::in_process;
use bench::stats::{fmt_duration, ratio, Summary};
use testkit::app::TestApp;

use super::Plan;
use crate::report::{ms, Table};

/// Target from the issue: metrics cost at most 2 % of a session read.
const MAX_RATIO: f64 = 1.02;

pub struct MetricsCost {
    pub none: Summary,
    pub prometheus: Summary,
    pub emf: Summary,
    pub emf_flushed: Summary,
}

/// The in-process service with its per-request metrics registered with `recorder` (set as
/// the thread's default recorder while the state is built, on a thread of its own), or
/// with the global one.
fn app_with(recorder: Option<&(dyn metrics::Recorder + Sync)>) -> TestApp {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let _default = recorder.map(|r| metrics::set_default_local_recorder(r));
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(in_process::app())
            })
            .join()
            .expect("built")
    })
}

pub async fn measure(plan: &Plan) -> MetricsCost {
    let prometheus = local_api::prometheus_recorder().expect("recorder");
    // As `functions::install_metrics` configures it.
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace("bench")
        .with_dimension("function", "fapi-session-get")
        .init()
        .expect("the EMF recorder installs (once per process)");
    let apps = [
        app_with(Some(&metrics::NoopRecorder)),
        app_with(Some(&prometheus)),
        app_with(None),
    ];
    let mut sessions = Vec::new();
    for app in &apps {
        sessions.push(in_process::native_session(app).await);
    }
    let warmup = plan.inprocess_reads / 10 + 5;
    let mut samples: [Vec<std::time::Duration>; 4] = Default::default();
    for i in 0..warmup + plan.inprocess_reads {
        // Each copy in turn, starting one further each iteration: none is always first.
        for k in (0..3).map(|k| (k + i) % 3) {
            let req = in_process::session(&sessions[k]);
            let t = Instant::now();
            let resp = apps[k].dispatch(req).await;
            let mut took = t.elapsed();
            assert_eq!(resp.status(), 200, "get session: {}", resp.body());
            drop(resp);
            if k == 2 {
                // The recording alone; then, timed apart, the write a function makes
                // before it answers.
                if i >= warmup {
                    samples[2].push(took);
                }
                let t = Instant::now();
                collector.flush(std::io::sink()).expect("flushed");
                took += t.elapsed();
                if i >= warmup {
                    samples[3].push(took);
                }
            } else if i >= warmup {
                samples[k].push(took);
            }
        }
    }
    let [none, prometheus, emf, emf_flushed] = samples.map(|s| Summary::of(&s));
    MetricsCost {
        none,
        prometheus,
        emf,
        emf_flushed,
    }
}

impl MetricsCost {
    pub fn rows(&self, t: &mut Table) {
        let floor = format!(
            "{} / {} (no recorder)",
            fmt_duration(self.none.p50),
            fmt_duration(self.none.p99)
        );
        for (what, s) in [
            ("Prometheus recorder, as local-api", &self.prometheus),
            ("Embedded Metric Format recorder, as on Lambda", &self.emf),
        ] {
            let r = ratio(ms(s.p50), ms(self.none.p50));
            t.target_row(
                [
                    format!("10 session read in process with metrics: {what}, p50 / p99"),
                    format!("{} / {}", fmt_duration(s.p50), fmt_duration(s.p99)),
                    floor.clone(),
                    format!("{r:.3}×"),
                    format!("≤ {MAX_RATIO}×"),
                ],
                r <= MAX_RATIO,
                || format!("by {:.1} %", (r - MAX_RATIO) * 100.0),
            );
        }
        let s = &self.emf_flushed;
        t.reported_row([
            "10 session read in process, EMF lines written after it (once per invocation on Lambda), p50 / p99".into(),
            format!("{} / {}", fmt_duration(s.p50), fmt_duration(s.p99)),
            floor,
            format!("{:.2}×", ratio(ms(s.p50), ms(self.none.p50))),
        ]);
    }
}
