//! Figure 8: the writes of a signed-in native client against the session read,
//! `GET /v1/client/sessions/{id}`: a touch (`intent=focus`, again and again on one
//! session), an end (a fresh active session each time) and a ticket sign-in (a fresh
//! unused ticket each time, on a new client). In process (p50, p99), and over HTTP through
//! `local-api` (requests per second, target: at least half the session read's).
//!
//! What a request uses up (a session to end, a ticket) is prepared before each timed
//! phase, untimed. Each write gets a server (and in process, a store) of its own, so what
//! one write's preparation adds to the store does not weigh on another's figure.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bench::in_process::{self, SignedIn};
use bench::load::{self, Load, Target};
use bench::stats::{fmt_duration, ratio, Summary};

use super::{progress, Plan};
use crate::report::{ms, Table};

/// Target from the issue: each write's share of the session read's requests/s.
const HTTP_MIN: f64 = 0.50;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    Touch,
    End,
    SignIn,
}

impl Write {
    pub const ALL: [Write; 3] = [Write::Touch, Write::End, Write::SignIn];

    pub fn name(self) -> &'static str {
        match self {
            Self::Touch => "touch",
            Self::End => "end",
            Self::SignIn => "ticket sign-in",
        }
    }

    fn route(self) -> &'static str {
        match self {
            Self::Touch => "`POST …/touch` (`intent=focus`, one session)",
            Self::End => "`POST …/end` (a fresh session each)",
            Self::SignIn => "`POST /v1/client/sign_ins` (a fresh ticket each, new client)",
        }
    }
}

pub struct InProcess {
    pub write: Write,
    pub measured: Summary,
    pub read: Summary,
}

/// Each write interleaved sample by sample with the session read, on an app of its own.
pub async fn in_process(plan: &Plan) -> Vec<InProcess> {
    let mut out = Vec::new();
    for write in Write::ALL {
        out.push(in_process_one(plan, write).await);
    }
    out
}

async fn in_process_one(plan: &Plan, write: Write) -> InProcess {
    let app = in_process::app().await;
    let reader = in_process::native_session(&app).await;
    let warmup = plan.inprocess_writes / 10 + 5;
    let n = warmup + plan.inprocess_writes;
    // What the requests use up, prepared before any is timed.
    let user = in_process::create_user(&app).await;
    let touched = in_process::sign_in(&app, &user).await;
    let mut sessions: Vec<SignedIn> = Vec::new();
    let mut tickets: Vec<String> = Vec::new();
    for _ in 0..n {
        match write {
            Write::Touch => {}
            Write::End => sessions.push(in_process::sign_in(&app, &user).await),
            Write::SignIn => tickets.push(app.ticket(&user).await),
        }
    }
    let (mut read_t, mut write_t) = (Vec::new(), Vec::new());
    for i in 0..n {
        let req = in_process::session(&reader);
        let t = Instant::now();
        let resp = app.dispatch(req).await;
        let r = t.elapsed();
        assert_eq!(resp.status(), 200, "get session: {}", resp.body());
        drop(resp);
        let req = match write {
            Write::Touch => in_process::touch(&touched),
            Write::End => in_process::end(&sessions[i]),
            Write::SignIn => in_process::ticket_sign_in(&tickets[i]),
        };
        let t = Instant::now();
        let resp = app.dispatch(req).await;
        let w = t.elapsed();
        assert_eq!(resp.status(), 200, "{}: {}", write.name(), resp.body());
        drop(resp);
        if i >= warmup {
            read_t.push(r);
            write_t.push(w);
        }
    }
    InProcess {
        write,
        measured: Summary::of(&write_t),
        read: Summary::of(&read_t),
    }
}

pub struct OverHttp {
    pub write: Write,
    pub measured: Load,
    pub read: Load,
    pub connections: usize,
}

/// Each write in phases alternating with the session read's, on a `local-api` of its own.
pub async fn over_http(plan: &Plan, bin_dir: &Path) -> Result<Vec<OverHttp>, String> {
    let mut out = Vec::new();
    for write in Write::ALL {
        progress(&format!(
            "over HTTP: local-api, {} against GET session",
            write.name()
        ));
        out.push(over_http_one(plan, bin_dir, write).await?);
    }
    Ok(out)
}

/// What a phase of a write sends.
enum Requests {
    /// The same request again and again.
    Repeat(Target),
    /// Distinct requests, each sent once.
    Queue(Vec<Target>),
}

/// How one write's requests are made on a running server.
struct Writer {
    write: Write,
    addr: SocketAddr,
    connections: usize,
    /// The user whose sessions are ended and who signs in.
    user: String,
    /// The session that is touched: its client token and id.
    touched: (String, String),
}

impl Writer {
    async fn new(addr: SocketAddr, write: Write, connections: usize) -> Result<Self, String> {
        let user = super::http_user(addr).await?;
        let ticket = super::ticket_of(&load::call(addr, &super::ticket_request(&user)).await?)?;
        let touched = super::signed_in(&load::call(addr, &super::sign_in_request(&ticket)).await?)?;
        Ok(Self {
            write,
            addr,
            connections,
            user,
            touched,
        })
    }

    /// `n` fresh tickets for the user.
    async fn tickets(&self, n: usize) -> Result<Vec<String>, String> {
        let requests = (0..n).map(|_| super::ticket_request(&self.user)).collect();
        load::call_each(self.addr, requests, self.connections)
            .await?
            .iter()
            .map(super::ticket_of)
            .collect()
    }

    /// The requests of one phase, with `n` of them prepared when each is used up.
    async fn prepare(&self, n: usize) -> Result<Requests, String> {
        let requests = match self.write {
            Write::Touch => {
                let (token, sid) = &self.touched;
                return Ok(Requests::Repeat(
                    Target::post(format!("/v1/client/sessions/{sid}/touch?_is_native=1"))
                        .header("authorization", token)
                        .form(in_process::TOUCH_FORM),
                ));
            }
            Write::End => {
                let sign_ins = self
                    .tickets(n)
                    .await?
                    .iter()
                    .map(|t| super::sign_in_request(t))
                    .collect();
                load::call_each(self.addr, sign_ins, self.connections)
                    .await?
                    .iter()
                    .map(|answer| {
                        let (token, sid) = super::signed_in(answer)?;
                        Ok(
                            Target::post(format!("/v1/client/sessions/{sid}/end?_is_native=1"))
                                .header("authorization", &token),
                        )
                    })
                    .collect::<Result<_, String>>()?
            }
            Write::SignIn => self
                .tickets(n)
                .await?
                .iter()
                .map(|t| super::sign_in_request(t))
                .collect(),
        };
        Ok(Requests::Queue(requests))
    }

    async fn run(&self, requests: Requests, duration: Duration) -> Load {
        match requests {
            Requests::Repeat(target) => {
                load::run(self.addr, &target, self.connections, duration).await
            }
            Requests::Queue(targets) => {
                load::run_queue(self.addr, targets, self.connections, duration).await
            }
        }
    }
}

/// How many requests to prepare for a phase of `duration` at `rate` per second: a quarter
/// more than that, within the plan's bound.
fn queue_len(plan: &Plan, rate: f64, duration: Duration) -> usize {
    let expected = (rate * duration.as_secs_f64() * 1.25).ceil() as usize;
    (expected + 2 * plan.connections).min(plan.http_queue_max)
}

async fn over_http_one(plan: &Plan, bin_dir: &Path, write: Write) -> Result<OverHttp, String> {
    let server = super::local_api(bin_dir)?;
    let addr = server.addr;
    let (token, sid) = super::http_session(addr).await?;
    let read = Target::get(format!("/v1/client/sessions/{sid}?_is_native=1"))
        .header("authorization", &token);
    let writer = Writer::new(addr, write, plan.connections).await?;
    // Warm both paths before measuring. Until the write has run, the read's rate stands in
    // for its rate when sizing what to prepare.
    let warm = plan.http_phase / 4;
    let read_warm = load::run(addr, &read, plan.connections, warm).await;
    let requests = writer
        .prepare(queue_len(plan, read_warm.per_second(), warm))
        .await?;
    let mut rate = writer.run(requests, warm).await.per_second();
    let mut out = OverHttp {
        write,
        measured: Load::default(),
        read: Load::default(),
        connections: plan.connections,
    };
    // Alternating phases, so that a slow moment of the machine hits both; what a phase
    // uses up is prepared before the read's phase, so the two timed phases are adjacent.
    for _ in 0..plan.http_rounds {
        let requests = writer
            .prepare(queue_len(plan, rate, plan.http_phase))
            .await?;
        out.read
            .add(load::run(addr, &read, plan.connections, plan.http_phase).await);
        let phase = writer.run(requests, plan.http_phase).await;
        rate = phase.per_second();
        out.measured.add(phase);
    }
    drop(server);
    Ok(out)
}

pub fn rows(t: &mut Table, inproc: &[InProcess], http: &[OverHttp]) {
    for write in Write::ALL {
        if let Some(p) = inproc.iter().find(|p| p.write == write) {
            t.reported_row([
                format!(
                    "8 {}, {} in process, p50 / p99",
                    write.name(),
                    write.route()
                ),
                format!(
                    "{} / {}",
                    fmt_duration(p.measured.p50),
                    fmt_duration(p.measured.p99)
                ),
                format!(
                    "{} / {} (`GET /v1/client/sessions/{{id}}`)",
                    fmt_duration(p.read.p50),
                    fmt_duration(p.read.p99)
                ),
                format!("{:.2}×", ratio(ms(p.measured.p50), ms(p.read.p50))),
            ]);
        }
        let Some(h) = http.iter().find(|h| h.write == write) else {
            continue;
        };
        let (w, r) = (h.measured.per_second(), h.read.per_second());
        let share = ratio(w, r);
        let errors = h.measured.errors + h.read.errors;
        t.target_row(
            [
                format!(
                    "8 {} over HTTP (local-api, {} keep-alive connections)",
                    write.name(),
                    h.connections
                ),
                format!(
                    "{w:.0} req/s, {} errors{}",
                    h.measured.errors,
                    if h.measured.ran_out {
                        " (a phase used up its prepared requests)"
                    } else {
                        ""
                    }
                ),
                format!(
                    "{r:.0} req/s, {} errors (`GET /v1/client/sessions/{{id}}`)",
                    h.read.errors
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
}
