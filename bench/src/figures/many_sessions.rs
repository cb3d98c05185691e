//! Figure 11: what a client answer costs with many accounts signed in. `GET /v1/client` in
//! process for a client with 50 signed-in sessions (50 users: the cap raised to 50) beside
//! one with a single session, every token signed anew: the clock moves past the
//! recent-token reuse window (a tenth of the token lifetime) before each sample, so no
//! answer is served from a signature made for an earlier one. Each session used to cost a
//! signature on such an answer; now only the last active one does.

use std::sync::Arc;
use std::time::Instant;

use bench::stats::{fmt_duration, ratio, Summary};
use shared::store::MemoryStore;
use testkit::app::{test_config, Req, TestApp};

use super::Plan;
use crate::report::{ms, Table};

/// The many-sessions client, and the target from the issue: at most twice the single one.
const SESSIONS: usize = 50;
const MAX_RATIO: f64 = 2.0;

pub struct ManySessions {
    pub one: Summary,
    pub many: Summary,
}

/// A native client with `sessions` users signed in: its token.
async fn client_with(app: &TestApp, sessions: usize) -> String {
    let mut token = String::new();
    for _ in 0..sessions {
        let user = app.create_user().await;
        token = app.native_sign_in(&token, &user).await.0;
    }
    token
}

pub async fn measure(plan: &Plan) -> ManySessions {
    let max = SESSIONS.to_string();
    let app = TestApp::with_store(
        test_config(&[
            ("INSTANCE_TYPE", "development"),
            ("MAX_SESSIONS_PER_CLIENT", &max),
        ]),
        Arc::new(MemoryStore::new()),
    )
    .await;
    let one = client_with(&app, 1).await;
    let many = client_with(&app, SESSIONS).await;
    let samples = plan.inprocess_writes.max(30);
    let warmup = samples / 10 + 2;
    let (mut one_t, mut many_t) = (Vec::new(), Vec::new());
    for i in 0..warmup + samples {
        for (token, times) in [(&one, &mut one_t), (&many, &mut many_t)] {
            // Past the reuse window: the answer signs its token anew.
            app.clock.advance_secs(7);
            let req = Req::get("/v1/client")
                .native(token)
                .origin(testkit::app::APP_ORIGIN)
                .into_request();
            let t = Instant::now();
            let resp = app.dispatch(req).await;
            let took = t.elapsed();
            assert_eq!(resp.status(), 200, "GET /v1/client: {}", resp.body());
            if i >= warmup {
                times.push(took);
            }
        }
    }
    ManySessions {
        one: Summary::of(&one_t),
        many: Summary::of(&many_t),
    }
}

impl ManySessions {
    pub fn rows(&self, t: &mut Table) {
        let r = ratio(ms(self.many.p50), ms(self.one.p50));
        t.target_row(
            [
                format!(
                    "11 client answer, `GET /v1/client` in process with {SESSIONS} signed-in \
                     sessions, every token signed anew, p50 / p99"
                ),
                format!(
                    "{} / {}",
                    fmt_duration(self.many.p50),
                    fmt_duration(self.many.p99)
                ),
                format!(
                    "{} / {} (one session)",
                    fmt_duration(self.one.p50),
                    fmt_duration(self.one.p99)
                ),
                format!("{r:.2}×"),
                format!("≤ {MAX_RATIO}×"),
            ],
            r <= MAX_RATIO,
            || format!("by {:.0} %", (r / MAX_RATIO - 1.0) * 100.0),
        );
    }
}
