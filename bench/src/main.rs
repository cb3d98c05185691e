//! `bench`: one benchmark run, every figure beside its floor, one table.
//!
//! `scripts/bench.sh` builds the binaries and runs this; see `docs/benchmarks.md`.
//!
//! ```text
//! bench --bin-dir DIR [--quick] [--out FILE] [--criterion-dir DIR] [--repo DIR]
//!       [--in-process-only | --worst-case-only]
//! ```
//!
//! A benchmark is not a test: a missed target is reported in the table, never an exit
//! code. The exit code is non-zero only when something did not work (a function gave no
//! answer, the server did not start).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bench::app::{self, App, SignFloor, SECRET_KEY};
use bench::emulator;
use bench::load::{self, Load, Target};
use bench::stats::{fmt_bytes, fmt_duration, fmt_mb, median, ratio, Summary};
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

struct Args {
    quick: bool,
    bin_dir: PathBuf,
    out: Option<PathBuf>,
    criterion_dir: Option<PathBuf>,
    repo: PathBuf,
    /// Only the in-process figures (for profiling the handlers).
    in_process_only: bool,
    /// Only the worst case the limits allow (figure 7): one release function binary.
    worst_case_only: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: bench --bin-dir DIR [--quick] [--out FILE] [--criterion-dir DIR] [--repo DIR] [--in-process-only | --worst-case-only]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        quick: false,
        bin_dir: PathBuf::new(),
        out: None,
        criterion_dir: None,
        repo: Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        in_process_only: false,
        worst_case_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().map(PathBuf::from).unwrap_or_else(|| usage());
        match arg.as_str() {
            "--quick" => args.quick = true,
            "--bin-dir" => args.bin_dir = value(),
            "--out" => args.out = Some(value()),
            "--criterion-dir" => args.criterion_dir = Some(value()),
            "--repo" => args.repo = value(),
            "--in-process-only" => args.in_process_only = true,
            "--worst-case-only" => args.worst_case_only = true,
            _ => usage(),
        }
    }
    if args.bin_dir.as_os_str().is_empty() {
        usage()
    }
    args
}

/// How much of everything a run does.
struct Plan {
    inprocess_tokens: usize,
    inprocess_reads: usize,
    http_rounds: usize,
    http_phase: Duration,
    connections: usize,
    cold_starts: usize,
    invocations: usize,
    worst_case_invocations: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                inprocess_tokens: 50,
                inprocess_reads: 500,
                http_rounds: 1,
                http_phase: Duration::from_millis(300),
                connections: 16,
                cold_starts: 2,
                invocations: 100,
                worst_case_invocations: 3,
            }
        } else {
            Self {
                inprocess_tokens: 3_000,
                inprocess_reads: 20_000,
                http_rounds: 3,
                http_phase: Duration::from_secs(4),
                connections: 16,
                cold_starts: 15,
                invocations: 10_000,
                worst_case_invocations: 200,
            }
        }
    }
}

/// Per function: the fixture (from `events/`) played for its cold start and steady state,
/// and the row of `docs/dynamodb.md` for its endpoint. Each event can be replayed 10,000
/// times with the same answer; see docs/benchmarks.md for why these.
const CASES: &[(&str, &str, &str)] = &[
    ("bapi", "get-session", "GET /v1/sessions/{id}"),
    ("fapi-client", "get-client-native", "GET /v1/client"),
    (
        "fapi-dev-browser",
        "create-dev-browser",
        "POST /v1/dev_browser",
    ),
    ("fapi-environment", "get-environment", "GET /v1/environment"),
    ("fapi-jwks", "get-jwks", "GET /.well-known/jwks.json"),
    (
        "fapi-session-end",
        "end-ended-session",
        "POST /v1/client/sessions/{id}/end",
    ),
    (
        "fapi-session-get",
        "get-session",
        "GET /v1/client/sessions/{id}",
    ),
    (
        "fapi-session-remove",
        "remove-unknown-session",
        "POST /v1/client/sessions/{id}/remove",
    ),
    (
        "fapi-session-template-tokens",
        "mint-template-token",
        "POST /v1/client/sessions/{id}/tokens/{template}",
    ),
    (
        "fapi-session-tokens",
        "mint-session-token",
        "POST /v1/client/sessions/{id}/tokens",
    ),
    (
        "fapi-session-touch",
        "touch-session",
        "POST /v1/client/sessions/{id}/touch",
    ),
    (
        "fapi-sign-ins",
        "sign-in-with-unknown-ticket",
        "POST /v1/client/sign_ins (ticket, new client)",
    ),
];

const HELLO: &str = "hello-lambda";

/// Targets from the issue.
const TOKENS_MAX: f64 = 1.15;
const HTTP_MIN: f64 = 0.70;
const COLD_MAX: f64 = 1.5;
const RSS_GROWTH_MAX: f64 = 1.2;
const PEAK_MAX_KB: u64 = 40 * 1024;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = parse_args();
    match run(&args).await {
        Ok(report) => {
            println!("{report}");
            if let Some(out) = &args.out {
                if let Err(e) = std::fs::write(out, &report) {
                    eprintln!("bench: write {}: {e}", out.display());
                    std::process::exit(1);
                }
                eprintln!("bench: wrote {}", out.display());
            }
        }
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    }
}

fn progress(what: &str) {
    eprintln!("bench: {what}");
}

// ---------------------------------------------------------------------------------------
// 1 and 2a: in process

struct InProcess {
    floor: Summary,
    tokens: Summary,
    session: Summary,
    environment: Summary,
}

/// The handler and its floor, interleaved sample by sample so that both see the same
/// machine (a noisy neighbour slows both, and the ratio holds).
async fn in_process(plan: &Plan) -> InProcess {
    let app = App::in_memory().await;
    let s = app.native_session().await;

    // The floor signs what a real session token signs: its `header.payload`.
    let minted = app.dispatch(App::tokens_request(&s)).await;
    assert_eq!(minted.status(), 200, "mint: {}", minted.body());
    let jwt: Value = serde_json::from_str(minted.body()).expect("token JSON");
    let mut floor = SignFloor::new(jwt["jwt"].as_str().expect("jwt"));

    let warmup = plan.inprocess_tokens / 10 + 5;
    let (mut floor_t, mut tokens_t) = (Vec::new(), Vec::new());
    for i in 0..warmup + plan.inprocess_tokens {
        let t = Instant::now();
        std::hint::black_box(floor.sign());
        let f = t.elapsed();
        let req = App::tokens_request(&s);
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

    let warmup = plan.inprocess_reads / 10 + 5;
    let (mut session_t, mut env_t) = (Vec::new(), Vec::new());
    for i in 0..warmup + plan.inprocess_reads {
        let req = App::session_request(&s);
        let t = Instant::now();
        let resp = app.dispatch(req).await;
        let g = t.elapsed();
        assert_eq!(resp.status(), 200, "get session: {}", resp.body());
        drop(resp);
        let req = App::environment_request();
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
        floor: Summary::of(&floor_t),
        tokens: Summary::of(&tokens_t),
        session: Summary::of(&session_t),
        environment: Summary::of(&env_t),
    }
}

// ---------------------------------------------------------------------------------------
// 2b: over HTTP through the local server

struct Http {
    environment: Load,
    session: Load,
    connections: usize,
}

async fn start_local_api(
    bin_dir: &Path,
) -> Result<(tokio::process::Child, std::net::SocketAddr), String> {
    let binary = bin_dir.join("local-api");
    let mut child = tokio::process::Command::new(&binary)
        .args(["--port", "0", "--in-memory"])
        .env("BACKEND_API_SECRET_KEY", SECRET_KEY)
        .env("FRONTEND_API_URL", app::FAPI_URL)
        // Request logs off: the figure is the handler's cost, not a terminal's.
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", binary.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("local-api: ready on http://") {
                return url.trim().parse().ok();
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or("local-api did not say it was ready")?;
    // Keep reading what it prints, so that it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, addr))
}

/// A signed-in native client on the running server, over HTTP.
async fn http_session(addr: std::net::SocketAddr) -> Result<(String, String), String> {
    let auth = format!("Bearer {SECRET_KEY}");
    let json_ct = Some("application/json");
    let (status, _, body) = load::call(
        addr,
        "POST",
        "/v1/users",
        &[("authorization", &auth)],
        json_ct,
        json!({"first_name": "Ada", "email_address": ["ada@example.com"]}).to_string(),
    )
    .await?;
    let user: Value = serde_json::from_str(&body).map_err(|e| format!("{status} {e}: {body}"))?;
    let user_id = user["id"].as_str().ok_or(format!("create user: {body}"))?;
    let (_, _, body) = load::call(
        addr,
        "POST",
        "/v1/sign_in_tokens",
        &[("authorization", &auth)],
        json_ct,
        json!({"user_id": user_id}).to_string(),
    )
    .await?;
    let ticket: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    let ticket = ticket["token"].as_str().ok_or(format!("ticket: {body}"))?;
    let (_, headers, body) = load::call(
        addr,
        "POST",
        "/v1/client/sign_ins?_is_native=1",
        &[],
        Some("application/x-www-form-urlencoded"),
        format!("strategy=ticket&ticket={ticket}"),
    )
    .await?;
    let signed: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    let sid = signed["response"]["created_session_id"]
        .as_str()
        .ok_or(format!("sign in: {body}"))?;
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or("sign in: no client token")?;
    Ok((token.to_string(), sid.to_string()))
}

async fn over_http(plan: &Plan, bin_dir: &Path) -> Result<Http, String> {
    let (mut child, addr) = start_local_api(bin_dir).await?;
    let result = async {
        let (token, sid) = http_session(addr).await?;
        let environment = Target::get("/v1/environment");
        let session = Target::get(format!("/v1/client/sessions/{sid}?_is_native=1"))
            .header("authorization", &token);
        // Warm both paths (connections, allocator, caches) before measuring.
        let warm = plan.http_phase / 4;
        load::run(addr, &environment, plan.connections, warm).await;
        load::run(addr, &session, plan.connections, warm).await;
        let mut out = Http {
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
    .await;
    let _ = child.kill().await;
    result
}

// ---------------------------------------------------------------------------------------
// 3 and 4: the function binaries under the Runtime API emulator

/// The data every fixture is played against (as `testkit::fixtures` seeds it): a user
/// with two sessions on one native client (one active and last active, one ended), an
/// unused ticket, and the JWT template `hasura`. Answers the placeholders' values.
async fn seed(data_file: &Path) -> BTreeMap<&'static str, String> {
    let _ = std::fs::remove_file(data_file);
    let app = App::on_file(data_file).await;
    let auth = format!("Bearer {SECRET_KEY}");
    let first = app.native_session().await;
    let second = app.sign_in(&first.user_id, Some(&first.client_token)).await;
    let native = [("authorization", second.client_token.as_str())];
    app.call_ok(
        "POST",
        &format!("/v1/client/sessions/{}/end?_is_native=1", second.session_id),
        &native,
        app::Body::Empty,
    )
    .await;
    app.call_ok(
        "POST",
        &format!(
            "/v1/client/sessions/{}/touch?_is_native=1",
            first.session_id
        ),
        &native,
        app::Body::Form("intent=select_session".into()),
    )
    .await;
    let (_, template) = app
        .call_ok(
            "POST",
            "/v1/jwt_templates",
            &[("authorization", &auth)],
            app::Body::Json(json!({"name": "hasura", "claims": {"https://hasura.io/jwt/claims": {"x-hasura-user-id": "{{user.id}}"}}})),
        )
        .await;
    let unused = app.ticket(&first.user_id).await;
    BTreeMap::from([
        ("SECRET_KEY", SECRET_KEY.to_string()),
        ("USER_ID", first.user_id.clone()),
        ("CLIENT_TOKEN", second.client_token.clone()),
        ("SESSION_ID", first.session_id.clone()),
        ("ENDED_SESSION_ID", second.session_id.clone()),
        ("TICKET", unused),
        (
            "TEMPLATE_ID",
            template["id"].as_str().expect("template id").to_string(),
        ),
    ])
}

fn fill(text: &str, values: &BTreeMap<&'static str, String>) -> String {
    let mut out = text.to_string();
    for (name, value) in values {
        out = out.replace(&format!("${{{name}}}"), value);
    }
    out
}

struct Case {
    function: &'static str,
    event_name: &'static str,
    dynamodb_row: &'static str,
    event: String,
    expected_status: u16,
}

struct FunctionResult {
    cold: Vec<Duration>,
    startup: Vec<Duration>,
    steady: Option<emulator::Run>,
    size: u64,
}

/// Where the functions' data files go: tmpfs when there is one, so that the embedded
/// store's fsync (a stand-in for DynamoDB, which Lambda uses) does not dominate.
fn data_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    base.join(format!("bench-{}", std::process::id()))
}

fn function_env(data_file: &Path) -> Vec<(String, String)> {
    vec![
        ("FRONTEND_API_URL".into(), app::FAPI_URL.into()),
        ("BACKEND_API_SECRET_KEY".into(), SECRET_KEY.into()),
        ("STORE_BACKEND".into(), "embedded".into()),
        // The dev-browser function is measured too.
        ("INSTANCE_TYPE".into(), "development".into()),
        (
            "EMBEDDED_STORE_PATH".into(),
            data_file.to_string_lossy().to_string(),
        ),
        // As template.yaml deploys them.
        ("RUST_LOG".into(), "info".into()),
    ]
}

async fn lambdas(
    plan: &Plan,
    args: &Args,
) -> Result<(Vec<Case>, BTreeMap<&'static str, FunctionResult>), String> {
    let dir = data_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let seed_file = dir.join("seed.json");
    let values = seed(&seed_file).await;
    let mut cases = Vec::new();
    for &(function, event_name, dynamodb_row) in CASES {
        let events = args.repo.join("events").join(function);
        let read = |name: String| {
            std::fs::read_to_string(events.join(&name))
                .map_err(|e| format!("events/{function}/{name}: {e}"))
        };
        let event = fill(&read(format!("{event_name}.json"))?, &values);
        let expected: Value = serde_json::from_str(&read(format!("{event_name}.expected.json"))?)
            .map_err(|e| e.to_string())?;
        cases.push(Case {
            function,
            event_name,
            dynamodb_row,
            event,
            expected_status: expected["status"].as_u64().unwrap_or(0) as u16,
        });
    }

    let mut results: BTreeMap<&'static str, FunctionResult> = BTreeMap::new();
    let binary = |name: &str| args.bin_dir.join(name);
    for name in std::iter::once(HELLO).chain(cases.iter().map(|c| c.function)) {
        let size = std::fs::metadata(binary(name))
            .map_err(|e| format!("{}: {e} (build it first)", binary(name).display()))?
            .len();
        results.insert(
            name,
            FunctionResult {
                cold: Vec::new(),
                startup: Vec::new(),
                steady: None,
                size,
            },
        );
    }
    let hello_event = cases
        .iter()
        .find(|c| c.function == "fapi-session-get")
        .map(|c| c.event.clone())
        .unwrap_or_else(|| "{}".into());

    // Cold starts, round-robin: one of each per round, so drift hits all alike.
    for round in 0..plan.cold_starts {
        progress(&format!(
            "cold starts, round {}/{}",
            round + 1,
            plan.cold_starts
        ));
        let run = emulator::run(&binary(HELLO), HELLO, &hello_event, 1, &[]).await?;
        let hello = results.get_mut(HELLO).expect("hello");
        hello.cold.push(run.cold_start);
        hello.startup.push(run.startup);
        for case in &cases {
            let data_file = dir.join(format!("{}.json", case.function));
            std::fs::copy(&seed_file, &data_file).map_err(|e| e.to_string())?;
            let env = function_env(&data_file);
            let run =
                emulator::run(&binary(case.function), case.function, &case.event, 1, &env).await?;
            let f = results.get_mut(case.function).expect("function");
            f.cold.push(run.cold_start);
            f.startup.push(run.startup);
        }
    }

    // Steady state: one process per function, `invocations` events.
    progress(&format!("steady state: {HELLO}"));
    let run = emulator::run(&binary(HELLO), HELLO, &hello_event, plan.invocations, &[]).await?;
    results.get_mut(HELLO).expect("hello").steady = Some(run);
    for case in &cases {
        progress(&format!(
            "steady state: {} × {}",
            case.function, plan.invocations
        ));
        let data_file = dir.join(format!("{}.json", case.function));
        std::fs::copy(&seed_file, &data_file).map_err(|e| e.to_string())?;
        let env = function_env(&data_file);
        let run = emulator::run(
            &binary(case.function),
            case.function,
            &case.event,
            plan.invocations,
            &env,
        )
        .await?;
        results.get_mut(case.function).expect("function").steady = Some(run);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok((cases, results))
}

/// Criterion's mean estimate of one benchmark, in nanoseconds, when it ran.
fn criterion_mean(dir: &Path, group: &str, name: &str) -> Option<f64> {
    let text =
        std::fs::read_to_string(dir.join(group).join(name).join("new/estimates.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

// ---------------------------------------------------------------------------------------
// The report

fn verdict(met: bool, miss: impl FnOnce() -> String) -> String {
    if met {
        "✅ met".into()
    } else {
        format!("❌ missed: {}", miss())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Figure 7: the worst case the limits allow, on the template-token function.
async fn worst_case(plan: &Plan, args: &Args) -> Result<bench::worst_case::WorstCase, String> {
    let dir = data_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let data_file = dir.join("worst-case.json");
    let event_file = args
        .repo
        .join("events/fapi-session-template-tokens/mint-template-token.json");
    let event = std::fs::read_to_string(&event_file)
        .map_err(|e| format!("{}: {e}", event_file.display()))?;
    let out = bench::worst_case::measure(
        &args.bin_dir,
        &data_file,
        plan.worst_case_invocations,
        &function_env(&data_file),
        &event,
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    out
}

async fn run(args: &Args) -> Result<String, String> {
    let plan = Plan::new(args.quick);
    let started = Instant::now();
    if args.worst_case_only {
        progress("worst case the limits allow");
        let w = worst_case(&plan, args).await?;
        let (rows, _) = w.rows(PEAK_MAX_KB);
        return Ok(format!(
            "binaries: `{}`\n\n| figure | measured | floor (same run) | ratio | target | result |\n|---|---|---|---|---|---|\n{rows}",
            args.bin_dir.display()
        ));
    }

    progress("in process: token minting and session reads");
    let inproc = in_process(&plan).await;
    if args.in_process_only {
        return Ok(format!(
            "tokens p50 {} (floor {}), GET session p50 {}, environment p50 {}",
            fmt_duration(inproc.tokens.p50),
            fmt_duration(inproc.floor.p50),
            fmt_duration(inproc.session.p50),
            fmt_duration(inproc.environment.p50)
        ));
    }
    progress("over HTTP: local-api, GET session against GET /v1/environment");
    let http = over_http(&plan, &args.bin_dir).await?;
    progress("function binaries under the Runtime API emulator");
    let (cases, fns) = lambdas(&plan, args).await?;
    let rows = bench::costs::dynamodb_rows(&args.repo);
    let calls: BTreeMap<&str, &str> = rows
        .iter()
        .map(|r| (r.endpoint.as_str(), r.calls.as_str()))
        .collect();
    progress("worst case the limits allow");
    let worst = worst_case(&plan, args).await?;

    let mut t = String::new();
    let mut misses = 0usize;
    let row = |t: &mut String, cells: [String; 6]| {
        let _ = writeln!(t, "| {} |", cells.join(" | "));
    };
    let _ = writeln!(
        t,
        "| figure | measured | floor (same run) | ratio | target | result |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|");

    // 1. Token minting.
    let r = ratio(ms(inproc.tokens.p50), ms(inproc.floor.p50));
    let met = r <= TOKENS_MAX;
    misses += usize::from(!met);
    row(
        &mut t,
        [
            "1 token minting, `POST …/tokens` in process, p50".into(),
            fmt_duration(inproc.tokens.p50),
            format!(
                "{} (one RSA-2048 PKCS#1 v1.5 SHA-256 signature)",
                fmt_duration(inproc.floor.p50)
            ),
            format!("{r:.3}×"),
            format!("≤ {TOKENS_MAX}×"),
            verdict(met, || {
                format!("by {:.1} %", (r / TOKENS_MAX - 1.0) * 100.0)
            }),
        ],
    );
    row(
        &mut t,
        [
            "1 token minting, p99".into(),
            fmt_duration(inproc.tokens.p99),
            fmt_duration(inproc.floor.p99),
            format!("{:.3}×", ratio(ms(inproc.tokens.p99), ms(inproc.floor.p99))),
            "reported".into(),
            "—".into(),
        ],
    );
    if let Some(dir) = &args.criterion_dir {
        if let (Some(h), Some(f)) = (
            criterion_mean(dir, "tokens", "handler"),
            criterion_mean(dir, "tokens", "floor_rsa_sign"),
        ) {
            row(
                &mut t,
                [
                    "1 token minting, criterion mean".into(),
                    fmt_duration(Duration::from_nanos(h as u64)),
                    fmt_duration(Duration::from_nanos(f as u64)),
                    format!("{:.3}×", h / f),
                    "reported".into(),
                    "—".into(),
                ],
            );
        }
    }

    // 2. Session read.
    row(
        &mut t,
        [
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
            "reported".into(),
            "—".into(),
        ],
    );
    let (s, e) = (http.session.per_second(), http.environment.per_second());
    let share = ratio(s, e);
    let errors = http.session.errors + http.environment.errors;
    let met = share >= HTTP_MIN && errors == 0;
    misses += usize::from(!met);
    row(
        &mut t,
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
            verdict(met, || {
                format!(
                    "by {:.1} points, {errors} errors",
                    (HTTP_MIN - share) * 100.0
                )
            }),
        ],
    );

    // 3. Cold start.
    let hello = &fns[HELLO];
    let hello_cold = median(&hello.cold);
    for case in &cases {
        let f = &fns[case.function];
        let cold = median(&f.cold);
        let r = ratio(ms(cold), ms(hello_cold));
        let met = r <= COLD_MAX;
        misses += usize::from(!met);
        row(
            &mut t,
            [
                format!(
                    "3 cold start `{}` (median of {})",
                    case.function,
                    f.cold.len()
                ),
                format!(
                    "{} (start-up {})",
                    fmt_duration(cold),
                    fmt_duration(median(&f.startup))
                ),
                format!(
                    "{} (start-up {}; `{HELLO}`)",
                    fmt_duration(hello_cold),
                    fmt_duration(median(&hello.startup))
                ),
                format!("{r:.2}×"),
                format!("≤ {COLD_MAX}×"),
                verdict(met, || format!("by {:.0} %", (r / COLD_MAX - 1.0) * 100.0)),
            ],
        );
    }

    // 4. Steady state.
    let hello_run = hello.steady.as_ref().expect("hello steady state");
    let hello_lat = Summary::of(&hello_run.latencies);
    for case in &cases {
        let Some(run) = fns[case.function].steady.as_ref() else {
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
        let met = growth <= RSS_GROWTH_MAX && run.peak_kb <= PEAK_MAX_KB && unexpected == 0;
        misses += usize::from(!met);
        row(
            &mut t,
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
                verdict(met, || {
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
                }),
            ],
        );
    }

    // 5. DynamoDB round trips and binary sizes.
    for case in &cases {
        let f = &fns[case.function];
        let calls = calls
            .get(case.dynamodb_row)
            .copied()
            .unwrap_or("not in docs/dynamodb.md");
        row(
            &mut t,
            [
                format!("5 `{}`: `{}`", case.function, case.dynamodb_row),
                format!("DynamoDB: {calls}; binary {}", fmt_bytes(f.size)),
                format!("binary {} (`{HELLO}`)", fmt_bytes(hello.size)),
                format!("{:.1}× size", f.size as f64 / hello.size.max(1) as f64),
                "reported".into(),
                "—".into(),
            ],
        );
    }

    // 7. The worst case the limits allow.
    let (worst_rows, missed) = worst.rows(PEAK_MAX_KB);
    t.push_str(&worst_rows);
    misses += missed;

    let mut report = String::new();
    let _ = writeln!(report, "# Benchmarks\n");
    let _ = writeln!(
        report,
        "Generated by `bash scripts/bench.sh{}`; how each figure is taken, and why, is in \
         [docs/benchmarks.md](docs/benchmarks.md). Every figure stands beside its floor, \
         measured in the same run.\n",
        if args.quick { " --quick" } else { "" }
    );
    if args.quick {
        let _ = writeln!(
            report,
            "**Quick run (smoke): few iterations and dev-profile binaries; the figures mean \
             nothing.**\n"
        );
    }
    let _ = writeln!(report, "## Machine\n");
    for (k, v) in bench::machine::describe() {
        let _ = writeln!(report, "- {k}: {v}");
    }
    let _ = writeln!(
        report,
        "- binaries: `{}`; run took {:.0} s\n",
        args.bin_dir.display(),
        started.elapsed().as_secs_f64()
    );
    let _ = writeln!(report, "## Results\n");
    let _ = writeln!(
        report,
        "{} of the targets missed.\n",
        if misses == 0 {
            "None".to_string()
        } else {
            misses.to_string()
        }
    );
    report.push_str(&t);

    // 6. What each endpoint costs on AWS, from the warm durations measured above.
    let warm: BTreeMap<&str, Duration> = cases
        .iter()
        .filter_map(|c| {
            let run = fns[c.function].steady.as_ref()?;
            Some((c.function, Summary::of(&run.latencies).p50))
        })
        .collect();
    let (costs, _) = bench::costs::report(&rows, &warm, bench::costs::default_lifetimes()?);
    let _ = writeln!(report, "\n## Cost at AWS list prices\n");
    let _ = writeln!(
        report,
        "Per million requests of each endpoint: API Gateway HTTP API, Lambda arm64 at {} MB \
         for the warm p50 measured above (the function that serves the endpoint, on the \
         event of section 4) plus {} ms per DynamoDB call, rounded up to the billed \
         millisecond, and DynamoDB on-demand request units from docs/dynamodb.md. Prices, \
         their date and the assumptions: [docs/benchmarks.md](docs/benchmarks.md#cost).\n",
        bench::costs::LAMBDA_MEMORY_GB * 1024.0,
        bench::costs::DYNAMODB_CALL_MS
    );
    report.push_str(&costs);
    Ok(report)
}
