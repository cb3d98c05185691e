//! Figure 2: the session read, `GET /v1/client/sessions/{id}`, against the trivial route
//! `GET /v1/environment`: in process (p50, p99), and over HTTP through `local-api`
//! (requests per second).

use std::path::Path;
use std::time::Instant;

use bench::in_process;
use bench::load::{self, Load, Target};
use bench::stats::{fmt_duration, ratio, Summary};

use super::Plan;
use crate::report::{ms, Table};

/// Target from the issue: the session read's share of the trivial route's requests/s.
const HTTP_MIN: f64 = 0.70;

pub struct InProcess {
    pub session: Summary,
    pub environment: Summary,
}

/// The two routes interleaved sample by sample, so that both see the same machine.
pub async fn in_process(plan: &Plan) -> InProcess {
    let app = in_process::app().await;
    let s = in_process::native_session(&app).await;
    let warmup = plan.inprocess_reads / 10 + 5;
    let (mut session_t, mut env_t) = (Vec::new(), Vec::new());
    for i in 0..warmup + plan.inprocess_reads {
        let req = in_process::session(&s);
        let t = Instant::now();
        let resp = app.dispatch(req).await;
        let g = t.elapsed();
        assert_eq!(resp.status(), 200, "get session: {}", resp.body());
        drop(resp);
        let req = in_process::environment();
        let t = Instant::now();
        let resp = app.dispatch(req).await;
        let e = t.elapsed();
        assert_eq!(resp.status(), 200, "environment: {}", resp.body());
        drop(resp);
        if i >= warmup {
            session_t.push(g);
            env_t.push(e);
        }
    }
    InProcess {
        session: Summary::of(&session_t),
        environment: Summary::of(&env_t),
    }
}

pub struct OverHttp {
    pub environment: Load,
    pub session: Load,
    pub connections: usize,
}

/// The two routes in alternating phases on one `local-api --in-memory`.
pub async fn over_http(plan: &Plan, bin_dir: &Path) -> Result<OverHttp, String> {
    let server = super::local_api(bin_dir)?;
    let addr = server.addr;
    let (token, sid) = super::http_session(addr).await?;
    let environment = Target::get("/v1/environment");
    let session = Target::get(format!("/v1/client/sessions/{sid}?_is_native=1"))
        .header("authorization", &token);
    // Warm both paths (connections, allocator, caches) before measuring.
    let warm = plan.http_phase / 4;
    load::run(addr, &environment, plan.connections, warm).await;
    load::run(addr, &session, plan.connections, warm).await;
    let mut out = OverHttp {
        environment: Load::default(),
        session: Load::default(),
        connections: plan.connections,
    };
    // Alternating phases, so that a slow moment of the machine hits both.
    for _ in 0..plan.http_rounds {
        out.environment
            .add(load::run(addr, &environment, plan.connections, plan.http_phase).await);
        out.session
            .add(load::run(addr, &session, plan.connections, plan.http_phase).await);
    }
    Ok(out)
}

pub fn rows(t: &mut Table, inproc: &InProcess, http: &OverHttp) {
    t.reported_row([
        "2 session read, `GET /v1/client/sessions/{id}` in process, p50 / p99".into(),
        format!(
            "{} / {}",
            fmt_duration(inproc.session.p50),
            fmt_duration(inproc.session.p99)
        ),
        format!(
            "{} / {} (`GET /v1/environment`)",
            fmt_duration(inproc.environment.p50),
            fmt_duration(inproc.environment.p99)
        ),
        format!(
            "{:.2}×",
            ratio(ms(inproc.session.p50), ms(inproc.environment.p50))
        ),
    ]);
    let (s, e) = (http.session.per_second(), http.environment.per_second());
    let share = ratio(s, e);
    let errors = http.session.errors + http.environment.errors;
    t.target_row(
        [
            format!(
                "2 session read over HTTP (local-api, {} keep-alive connections)",
                http.connections
            ),
            format!("{s:.0} req/s, {} errors", http.session.errors),
            format!(
                "{e:.0} req/s, {} errors (`GET /v1/environment`)",
                http.environment.errors
            ),
            format!("{:.1} %", share * 100.0),
            format!("≥ {:.0} %, 0 errors", HTTP_MIN * 100.0),
        ],
        share >= HTTP_MIN && errors == 0,
        || {
            format!(
                "by {:.1} points, {errors} errors",
                (HTTP_MIN - share) * 100.0
            )
        },
    );
}
