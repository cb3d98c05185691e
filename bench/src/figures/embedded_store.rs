//! Figure 9: the embedded store's SQLite database, small and large. `local-api` on a
//! database of 1,000 sessions, then of 1,000,000 (across clients and users), each seeded
//! directly into the store beforehand (untimed), on a real disk (not tmpfs: the commits'
//! fsyncs count). Over HTTP with the plan's connections:
//!
//! - get-session: `GET /v1/sessions/{id}` (Backend API), a different session each request,
//!   spread over the whole table: a store read and nothing else (no signature);
//! - mint: `POST …/tokens` for the sampled sessions (one RSA signature each);
//! - touch: `POST …/touch`, a different session each (a write: its activity is an hour old);
//! - `POST /v1/client`: a new anonymous client each (a write, no signature);
//! - JWKS, one connection, idle, then beside `POST /v1/client` writes at 1,000 a second
//!   (the target: a route that never reads the store must not wait for its writers), at
//!   half the rate the server sustains and at full rate (reported: there the two cores are
//!   mostly or wholly busy, and every route shares them with the writers).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::load::{self, Load, Target};
use bench::stats::{fmt_duration, ratio};
use shared::domain::{Client, NewUser, Session, User};
use shared::store::{Store, Write};
use testkit::app::{FAPI_URL, SECRET};
use testkit::fixtures;
use testkit::local_api::LocalApi;

use super::{progress, Plan};
use crate::report::Table;

/// Targets from the issue.
const READ_SHARE_MIN: f64 = 0.90;
const WRITE_P99_MAX: Duration = Duration::from_millis(10);
const JWKS_P99_GROWTH_MAX: f64 = 2.0;
/// The write load of the JWKS target: 86 million new clients a day.
const STEADY_WRITES_PER_SECOND: f64 = 1_000.0;
/// Sessions whose client tokens are kept for the requests (spread over the whole table).
const SAMPLE_MAX: usize = 20_000;
/// Clients written per seeding commit (with their two sessions, and a user per two).
const SEED_BATCH: usize = 2_000;
const HOUR_MS: i64 = 3_600_000;

/// The figures at one size of the database.
pub struct AtScale {
    pub sessions: usize,
    pub seeded_in: Duration,
    pub database_bytes: u64,
    pub get_session: Load,
    pub mint: Load,
    pub touch: Load,
    pub new_client: Load,
}

/// JWKS on the large database, alone and beside loads of other requests.
pub struct Jwks {
    pub idle: Load,
    /// Beside writes at [`STEADY_WRITES_PER_SECOND`], and those writes.
    pub steady: Load,
    pub steady_writes: Load,
    /// Beside as many `GET /v1/environment` a second, which never touch the store: what
    /// any load of that size costs JWKS on this machine.
    pub beside_reads: Load,
    /// Beside writes at half the full rate, and those writes.
    pub paced: Load,
    pub paced_writes: Load,
    /// Beside the writes at full rate.
    pub saturated: Load,
}

pub struct EmbeddedStore {
    pub connections: usize,
    pub small: AtScale,
    pub large: AtScale,
    pub jwks: Jwks,
}

/// A seeded database and a `local-api` serving it.
struct Served {
    sessions: usize,
    seeded_in: Duration,
    database_bytes: u64,
    /// (client token, session id) of sampled clients.
    sample: Vec<(String, String)>,
    server: LocalApi,
    _dir: Scratch,
}

/// A directory on a real disk, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Served {
    async fn start(bin_dir: &Path, sessions: usize) -> Result<Self, String> {
        let dir = Scratch(
            std::env::temp_dir().join(format!("bench-store-{sessions}-{}", std::process::id())),
        );
        std::fs::create_dir_all(&dir.0).map_err(|e| e.to_string())?;
        let database = dir.0.join("store.sqlite3");
        progress(&format!("embedded store: seeding {sessions} sessions"));
        let started = Instant::now();
        let sample = seed(&database, sessions).await?;
        let seeded_in = started.elapsed();
        let database_bytes = std::fs::metadata(&database).map_or(0, |m| m.len());
        let server = LocalApi::start(
            &bin_dir.join("local-api"),
            &["--data-file", database.to_str().ok_or("path")?],
            &[
                ("BACKEND_API_SECRET_KEY", SECRET),
                ("FRONTEND_API_URL", FAPI_URL),
            ],
        )?;
        Ok(Self {
            sessions,
            seeded_in,
            database_bytes,
            sample,
            server,
            _dir: dir,
        })
    }

    fn each(&self, make: impl Fn(&str, &str) -> Target) -> Vec<Target> {
        self.sample
            .iter()
            .map(|(token, sid)| make(token, sid))
            .collect()
    }

    fn gets(&self) -> Vec<Target> {
        self.each(|_, sid| {
            Target::get(format!("/v1/sessions/{sid}"))
                .header("authorization", &super::secret_auth())
        })
    }

    fn mints(&self) -> Vec<Target> {
        self.each(|token, sid| {
            Target::post(format!("/v1/client/sessions/{sid}/tokens?_is_native=1"))
                .header("authorization", token)
        })
    }

    /// Each sampled session once: its first touch in an hour writes.
    fn touches(&self) -> Vec<Target> {
        self.each(|token, sid| {
            Target::post(format!("/v1/client/sessions/{sid}/touch?_is_native=1"))
                .header("authorization", token)
                .form(bench::in_process::TOUCH_FORM)
        })
    }
}

fn new_client() -> Target {
    Target::post("/v1/client?_is_native=1")
}

/// Both databases are served at once and measured in turn, phase by phase, so that a
/// slow moment of the machine (such as the kernel writing back what the seeding wrote)
/// weighs on both.
pub async fn measure(plan: &Plan, bin_dir: &Path) -> Result<EmbeddedStore, String> {
    let small = Served::start(bin_dir, plan.store_small).await?;
    let large = Served::start(bin_dir, plan.store_large).await?;
    progress("embedded store: measuring both databases in turn");
    // What the seeding wrote reaches the disk before anything is timed.
    let _ = std::process::Command::new("sync").status();
    let (phase, connections) = (plan.http_phase, plan.connections);
    for served in [&small, &large] {
        let addr = served.server.addr;
        load::run_cycle(addr, served.gets(), connections, phase / 4).await;
        load::run(addr, &new_client(), connections, phase / 4).await;
    }
    let mut results: Vec<AtScale> = [&small, &large]
        .iter()
        .map(|s| AtScale {
            sessions: s.sessions,
            seeded_in: s.seeded_in,
            database_bytes: s.database_bytes,
            get_session: Load::default(),
            mint: Load::default(),
            touch: Load::default(),
            new_client: Load::default(),
        })
        .collect();
    for _ in 0..plan.http_rounds {
        for (served, out) in [&small, &large].iter().zip(results.iter_mut()) {
            let addr = served.server.addr;
            out.get_session
                .add(load::run_cycle(addr, served.gets(), connections, phase).await);
        }
    }
    for (served, out) in [&small, &large].iter().zip(results.iter_mut()) {
        let addr = served.server.addr;
        out.mint = load::run_cycle(addr, served.mints(), connections, phase).await;
        out.touch = load::run_queue(addr, served.touches(), connections, phase).await;
        out.new_client = load::run(addr, &new_client(), connections, phase).await;
    }
    drop(small);
    let jwks = jwks(plan, large.server.addr, results[1].new_client.per_second()).await;
    drop(large);
    let large = results.pop().ok_or("no results")?;
    let small = results.pop().ok_or("no results")?;
    Ok(EmbeddedStore {
        connections,
        small,
        large,
        jwks,
    })
}

/// JWKS on one connection, alone and beside each load; `full_rate` is the writes'
/// sustained requests/s.
async fn jwks(plan: &Plan, addr: SocketAddr, full_rate: f64) -> Jwks {
    let (phase, connections) = (plan.http_phase, plan.connections);
    let jwks = Target::get("/.well-known/jwks.json");
    let beside = |load: Target, per_second: Option<f64>| {
        let jwks = jwks.clone();
        async move {
            let other = async {
                match per_second {
                    Some(rate) => load::run_paced(addr, &load, connections, rate, phase).await,
                    None => load::run(addr, &load, connections, phase).await,
                }
            };
            tokio::join!(other, load::run(addr, &jwks, 1, phase))
        }
    };
    let idle = load::run(addr, &jwks, 1, phase).await;
    let (_, beside_reads) = beside(
        Target::get("/v1/environment"),
        Some(STEADY_WRITES_PER_SECOND),
    )
    .await;
    let (steady_writes, steady) = beside(new_client(), Some(STEADY_WRITES_PER_SECOND)).await;
    let (paced_writes, paced) = beside(new_client(), Some(full_rate / 2.0)).await;
    let (_, saturated) = beside(new_client(), None).await;
    Jwks {
        idle,
        steady,
        steady_writes,
        beside_reads,
        paced,
        paced_writes,
        saturated,
    }
}

/// Seeds `sessions` sessions into a new database at `path`, straight into the store: two
/// per client (the second the last active), two clients per user, activity an hour and a
/// half old. The keyring is the one a first start writes; the sample's client tokens are
/// signed with its client-token secret, as a sign-in signs them.
async fn seed(path: &Path, sessions: usize) -> Result<Vec<(String, String)>, String> {
    let app = fixtures::open(path).await;
    let now = app.now_ms();
    let keys = app.state.keys();
    let secret = keys.client_secret(now).map_err(|e| e.to_string())?;
    let lifetimes = app.state.lifetimes();
    let store: Arc<dyn Store> = app.state.store.clone();
    let clients = sessions.div_ceil(2);
    let stride = clients.div_ceil(SAMPLE_MAX).max(1);
    let mut sample = Vec::new();
    let mut user_id = String::new();
    let mut next = 0;
    while next < clients {
        let end = (next + SEED_BATCH).min(clients);
        let mut writes = Vec::with_capacity((end - next) * 4);
        for i in next..end {
            if i % 2 == 0 {
                let user = User::create(
                    NewUser {
                        first_name: Some(format!("User {i}")),
                        email_addresses: vec![format!("user{i}@example.com")],
                        ..NewUser::default()
                    },
                    now - 2 * HOUR_MS,
                );
                user_id = user.id.clone();
                writes.push(Write::user(user));
            }
            let active_at = now - 3 * HOUR_MS / 2;
            let mut client = Client {
                id: shared::ids::new_id("client"),
                rotating_token: shared::ids::new_secret(),
                last_active_session_id: None,
                created_at: active_at,
                updated_at: active_at,
                expires_at: now + 365 * 24 * HOUR_MS,
                anonymous_until: None,
                sign_in: None,
                sign_up: None,
                version: 1,
            };
            let first = Session::start(&client.id, &user_id, active_at, lifetimes);
            let second = Session::start(&client.id, &user_id, active_at + 1, lifetimes);
            client.last_active_session_id = Some(second.id.clone());
            if i % stride == 0 {
                let token = secret.issue(&client, now).map_err(|e| e.to_string())?;
                sample.push((token, second.id.clone()));
            }
            writes.push(Write::client(client));
            writes.push(Write::NewSession(first));
            writes.push(Write::NewSession(second));
        }
        store.commit(writes).await.map_err(|e| e.to_string())?;
        next = end;
    }
    drop(store);
    drop(app);
    Ok(sample)
}

fn rate_and_latency(load: &Load) -> String {
    let l = load.latency();
    format!(
        "{:.0} req/s, p50 {} / p99 {}, {} errors{}",
        load.per_second(),
        fmt_duration(l.p50),
        fmt_duration(l.p99),
        load.errors,
        if load.ran_out {
            " (used up its distinct requests)"
        } else {
            ""
        }
    )
}

fn p99(load: &Load) -> Duration {
    load.latency().p99
}

impl EmbeddedStore {
    pub fn rows(&self, t: &mut Table) {
        let (s, l) = (&self.small, &self.large);
        let size = |a: &AtScale| {
            format!(
                "{} sessions ({:.0} MB, seeded in {:.0} s)",
                a.sessions,
                a.database_bytes as f64 / 1e6,
                a.seeded_in.as_secs_f64()
            )
        };
        let c = self.connections;
        // get-session: the large database's throughput against the small one's.
        let share = ratio(l.get_session.per_second(), s.get_session.per_second());
        let errors = l.get_session.errors + s.get_session.errors;
        t.target_row(
            [
                format!("9 embedded store: get-session `GET /v1/sessions/{{id}}`, {c} connections, at {}", size(l)),
                rate_and_latency(&l.get_session),
                format!("{} at {}", rate_and_latency(&s.get_session), size(s)),
                format!("{:.1} %", share * 100.0),
                format!("≥ {:.0} %, 0 errors", READ_SHARE_MIN * 100.0),
            ],
            share >= READ_SHARE_MIN && errors == 0,
            || format!("by {:.1} points, {errors} errors", (READ_SHARE_MIN - share) * 100.0),
        );
        t.reported_row([
            format!(
                "9 embedded store: mint `POST …/tokens`, {c} connections, at {} sessions",
                l.sessions
            ),
            rate_and_latency(&l.mint),
            format!("{} at {} sessions", rate_and_latency(&s.mint), s.sessions),
            format!(
                "{:.2}× p99",
                ratio(p99(&l.mint).as_secs_f64(), p99(&s.mint).as_secs_f64())
            ),
        ]);
        for (name, large, small) in [
            ("touch `POST …/touch` (a write)", &l.touch, &s.touch),
            ("`POST /v1/client` (a write)", &l.new_client, &s.new_client),
        ] {
            let worst = p99(large).max(p99(small));
            let errors = large.errors + small.errors;
            t.target_row(
                [
                    format!(
                        "9 embedded store: {name}, {c} connections, at {} sessions",
                        l.sessions
                    ),
                    rate_and_latency(large),
                    format!("{} at {} sessions", rate_and_latency(small), s.sessions),
                    format!(
                        "{:.2}× p99",
                        ratio(p99(large).as_secs_f64(), p99(small).as_secs_f64())
                    ),
                    format!(
                        "p99 < {} at both sizes, 0 errors",
                        fmt_duration(WRITE_P99_MAX)
                    ),
                ],
                worst < WRITE_P99_MAX && errors == 0,
                || format!("p99 {} ({errors} errors)", fmt_duration(worst)),
            );
        }
        let idle = p99(&self.jwks.idle).as_secs_f64();
        let growth = ratio(p99(&self.jwks.steady).as_secs_f64(), idle);
        let errors =
            self.jwks.steady.errors + self.jwks.idle.errors + self.jwks.steady_writes.errors;
        t.target_row(
            [
                format!(
                    "9 embedded store: JWKS (1 connection) beside `POST /v1/client` writes at {STEADY_WRITES_PER_SECOND:.0}/s ({}), at {} sessions",
                    rate_and_latency(&self.jwks.steady_writes),
                    l.sessions
                ),
                rate_and_latency(&self.jwks.steady),
                format!("{} idle", rate_and_latency(&self.jwks.idle)),
                format!("{growth:.2}× p99"),
                format!("≤ {JWKS_P99_GROWTH_MAX:.0}× idle p99, 0 errors"),
            ],
            growth <= JWKS_P99_GROWTH_MAX && errors == 0,
            || format!("{growth:.2}× ({errors} errors)"),
        );
        t.reported_row([
            format!(
                "9 embedded store: JWKS (1 connection) beside `GET /v1/environment` at {STEADY_WRITES_PER_SECOND:.0}/s (no store), at {} sessions",
                l.sessions
            ),
            rate_and_latency(&self.jwks.beside_reads),
            format!("{} idle", rate_and_latency(&self.jwks.idle)),
            format!(
                "{:.2}× p99",
                ratio(p99(&self.jwks.beside_reads).as_secs_f64(), idle)
            ),
        ]);
        t.reported_row([
            format!(
                "9 embedded store: JWKS (1 connection) beside `POST /v1/client` writes at half the sustained rate ({}), at {} sessions",
                rate_and_latency(&self.jwks.paced_writes),
                l.sessions
            ),
            rate_and_latency(&self.jwks.paced),
            format!("{} idle", rate_and_latency(&self.jwks.idle)),
            format!("{:.2}× p99", ratio(p99(&self.jwks.paced).as_secs_f64(), idle)),
        ]);
        t.reported_row([
            format!(
                "9 embedded store: JWKS (1 connection) beside `POST /v1/client` writes at full rate, at {} sessions",
                l.sessions
            ),
            rate_and_latency(&self.jwks.saturated),
            format!("{} idle", rate_and_latency(&self.jwks.idle)),
            format!(
                "{:.2}× p99",
                ratio(p99(&self.jwks.saturated).as_secs_f64(), idle)
            ),
        ]);
    }
}
