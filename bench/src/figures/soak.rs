//! The soak: `local-api` (release) under a steady mixed load for a long while, its resident
//! memory (RSS, `/proc/<pid>/status`) and the load's p99 recorded every minute, and what
//! each cache holds at the end (`/metrics`). On the embedded store (a SQLite data file)
//! and, shorter, on DynamoDB (the moto server `scripts/bench.sh` starts).
//!
//! The load, at a fixed rate: new users signing in on new clients (a user, a ticket, a
//! client, the sign-in), each session then read, minted and touched, and half of them
//! ended: every route a user's day takes, and every cache filled.

use std::path::Path;
use std::time::{Duration, Instant};

use bench::load::{self, Target};
use bench::stats::{fmt_duration, Summary};
use testkit::app::{FAPI_URL, SECRET};
use testkit::local_api::LocalApi;

use super::{secret_auth, sign_in_request, ticket_of, ticket_request};
use crate::report::Table;

/// Requests a second, in all.
const RATE: f64 = 100.0;
/// A user's day, in requests: user, ticket, client + sign-in, 4 reads, 3 mints, a touch,
/// and an end for every other one.
const READS: usize = 4;
const MINTS: usize = 3;

pub struct Minute {
    /// Resident anonymous memory: the process's own heap and stacks (and SQLite's page
    /// caches), what a leak would grow.
    pub rss_kb: u64,
    /// All resident memory, with the pages of files it maps (the embedded store maps its
    /// database file): these grow with the file and are the kernel's to drop.
    pub rss_all_kb: u64,
    pub p99: Duration,
    pub requests: usize,
    pub errors: usize,
}

pub struct Soak {
    pub store: &'static str,
    pub minutes: Vec<Minute>,
    /// `cache_entries` / `cache_bytes` lines of `/metrics` at the end.
    pub caches: Vec<String>,
}

/// A `/proc/<pid>/status` field in kB (`RssAnon`, `VmRSS`).
fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// One user's day; answers its requests' latencies and how many failed.
async fn day(addr: std::net::SocketAddr, end: bool, pace: Duration) -> (Vec<Duration>, usize) {
    let mut times = Vec::new();
    let mut errors = 0;
    let mut next = Instant::now();
    let mut timed = |t: Instant, ok: bool| {
        times.push(t.elapsed());
        errors += usize::from(!ok);
    };
    macro_rules! call {
        ($target:expr) => {{
            tokio::time::sleep_until(next.into()).await;
            next += pace;
            let t = Instant::now();
            let answer = load::call(addr, &$target).await;
            timed(t, answer.as_ref().is_ok_and(|a| a.status / 100 == 2));
            answer
        }};
    }
    let user = call!(Target::post("/v1/users")
        .header("authorization", &secret_auth())
        .json(&serde_json::json!({"first_name": "Soak"})));
    let Some(user) = user
        .ok()
        .and_then(|a| serde_json::from_str::<serde_json::Value>(&a.body).ok())
        .and_then(|v| v["id"].as_str().map(str::to_string))
    else {
        return (times, errors + 1);
    };
    let Ok(ticket) = call!(ticket_request(&user)).and_then(|a| ticket_of(&a)) else {
        return (times, errors + 1);
    };
    let Ok(signed) = call!(sign_in_request(&ticket)).and_then(|a| super::signed_in(&a)) else {
        return (times, errors + 1);
    };
    let (token, sid) = signed;
    let session = |suffix: &str| {
        let path = format!("/v1/client/sessions/{sid}{suffix}?_is_native=1");
        if suffix.is_empty() {
            Target::get(path)
        } else {
            Target::post(path)
        }
        .header("authorization", &token)
    };
    for _ in 0..READS {
        let _ = call!(session(""));
    }
    for _ in 0..MINTS {
        let _ = call!(session("/tokens"));
    }
    let _ = call!(session("/touch"));
    if end {
        let _ = call!(session("/end"));
    }
    (times, errors)
}

/// `minutes` of the load on a `local-api` started with `args` and `env`, each `minute`
/// long (a minute, but for the smoke of `--quick`).
pub async fn measure(
    bin_dir: &Path,
    store: &'static str,
    args: &[&str],
    env: &[(&str, &str)],
    minutes: u32,
    minute: Duration,
) -> Result<Soak, String> {
    let mut all_env = vec![
        ("BACKEND_API_SECRET_KEY", SECRET),
        ("FRONTEND_API_URL", FAPI_URL),
    ];
    all_env.extend_from_slice(env);
    let server = LocalApi::start(&bin_dir.join("local-api"), args, &all_env)?;
    let addr = server.addr;
    // Users at once, each pacing its requests so that all of them make RATE in all.
    let users_at_once = 8;
    let pace = Duration::from_secs_f64(users_at_once as f64 / RATE);
    let mut out = Soak {
        store,
        minutes: Vec::new(),
        caches: Vec::new(),
    };
    let mut n = 0u64;
    for i in 0..minutes {
        let until = Instant::now() + minute;
        let mut times = Vec::new();
        let mut errors = 0;
        while Instant::now() < until {
            let mut days = tokio::task::JoinSet::new();
            for _ in 0..users_at_once {
                n += 1;
                days.spawn(day(addr, n.is_multiple_of(2), pace));
            }
            while let Some(done) = days.join_next().await {
                if let Ok((t, e)) = done {
                    times.extend(t);
                    errors += e;
                }
            }
        }
        let summary = Summary::of(&times);
        let rss = status_kb(server.pid(), "RssAnon");
        let rss_all = status_kb(server.pid(), "VmRSS");
        super::progress(&format!(
            "soak on {store}: minute {} RSS anonymous {} MB (all {} MB), p99 {}, {} requests, \
             {errors} errors",
            i + 1,
            rss / 1024,
            rss_all / 1024,
            fmt_duration(summary.p99),
            times.len()
        ));
        out.minutes.push(Minute {
            rss_kb: rss,
            rss_all_kb: rss_all,
            p99: summary.p99,
            requests: times.len(),
            errors,
        });
    }
    let metrics = load::call(
        addr,
        &Target::get("/metrics").header("authorization", &secret_auth()),
    )
    .await?;
    out.caches = metrics
        .body
        .lines()
        .filter(|l| l.starts_with("cache_entries") || l.starts_with("cache_bytes"))
        .map(str::to_string)
        .collect();
    Ok(out)
}

impl Soak {
    /// Target (the issue's): over the last half, RSS within 10 % of its own minimum.
    pub fn rows(&self, t: &mut Table) {
        let half = &self.minutes[self.minutes.len() / 2..];
        let min = half.iter().map(|m| m.rss_kb).min().unwrap_or(0);
        let max = half.iter().map(|m| m.rss_kb).max().unwrap_or(0);
        let spread = if min == 0 {
            0.0
        } else {
            max as f64 / min as f64 - 1.0
        };
        let per_minute: Vec<String> = self
            .minutes
            .iter()
            .map(|m| format!("{}", m.rss_kb / 1024))
            .collect();
        let all_per_minute: Vec<String> = self
            .minutes
            .iter()
            .map(|m| format!("{}", m.rss_all_kb / 1024))
            .collect();
        let p99: Vec<String> = self.minutes.iter().map(|m| fmt_duration(m.p99)).collect();
        let errors: usize = self.minutes.iter().map(|m| m.errors).sum();
        let requests: usize = self.minutes.iter().map(|m| m.requests).sum();
        t.target_row(
            [
                format!(
                    "12 soak on {}, {} min at {RATE:.0} req/s: anonymous RSS per minute (MB); \
                     all RSS, mapped files included",
                    self.store,
                    self.minutes.len()
                ),
                format!(
                    "{}; all: {}",
                    per_minute.join(" "),
                    all_per_minute.join(" ")
                ),
                format!(
                    "p99 per minute: {}; {requests} requests, {errors} errors",
                    p99.join(" ")
                ),
                format!("last half within {:.1} % of its minimum", spread * 100.0),
                "last half ≤ 10 % over its minimum".into(),
            ],
            spread <= 0.10,
            || format!("{:.1} % over", spread * 100.0),
        );
        t.reported_row([
            format!(
                "12 soak on {}: what each cache holds at the end",
                self.store
            ),
            self.caches.join("; "),
            "—".into(),
            "—".into(),
        ]);
    }
}
