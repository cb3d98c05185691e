//! `bench`: one benchmark run, every figure beside its floor, one table.
//!
//! `scripts/bench.sh` builds the binaries and runs this; see `docs/benchmarks.md`. Each
//! figure is a module of `figures/`; `report.rs` renders the table and the report;
//! `args.rs` reads the command line.
//!
//! A benchmark is not a test: a missed target is reported in the table, never an exit
//! code. The exit code is non-zero only when something did not work (a function gave no
//! answer, the server did not start).

mod args;
mod figures;
mod report;

use std::time::{Duration, Instant};

use bench::stats::fmt_duration;

use args::Args;
use figures::steady_state::PEAK_MAX_KB;
use figures::{
    calls, cold_start, embedded_store, functions::Functions, many_sessions, metrics_cost, minting,
    progress, session_read, sign_in, soak, steady_state, worst_case, writes, Plan,
};
use report::Table;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args::parse();
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

/// What a one-figure run prints: the binaries measured, then its rows.
fn rows_only(args: &Args, t: &Table) -> String {
    format!("binaries: `{}`\n\n{}", args.bin_dir.display(), t.as_str())
}

async fn run(args: &Args) -> Result<String, String> {
    let plan = Plan::new(args.quick);
    let started = Instant::now();
    if args.worst_case_only {
        progress("worst case the limits allow");
        let w = worst_case::measure(&args.bin_dir, &args.repo, plan.worst_case_invocations).await?;
        let mut t = Table::new();
        let (rows, misses) = w.rows(PEAK_MAX_KB);
        t.push_rows(&rows, misses);
        return Ok(rows_only(args, &t));
    }
    if let Some(minutes) = args.soak_minutes {
        // The smoke's "minutes" are two seconds: the code runs, nothing is measured.
        let minute = Duration::from_secs(if args.quick { 2 } else { 60 });
        let dir = std::env::temp_dir().join(shared::ids::new_id("soak"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let data_file = dir.join("soak.sqlite3");
        let data_file = data_file.to_str().ok_or("temporary path is not UTF-8")?;
        let mut t = Table::new();
        let embedded = soak::measure(
            &args.bin_dir,
            "the embedded store (SQLite)",
            &["--data-file", data_file],
            &[],
            minutes,
            minute,
        )
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        embedded?.rows(&mut t);
        if args.soak_dynamodb_minutes > 0 {
            let table = shared::ids::new_id("soak");
            soak::measure(
                &args.bin_dir,
                "DynamoDB (moto)",
                &[],
                &[
                    ("STORE_BACKEND", "dynamodb"),
                    ("DYNAMODB_TABLE_NAME", &table),
                ],
                args.soak_dynamodb_minutes,
                minute,
            )
            .await?
            .rows(&mut t);
        }
        return Ok(rows_only(args, &t));
    }
    if args.embedded_store_only {
        let store = embedded_store::measure(&plan, &args.bin_dir).await?;
        let mut t = Table::new();
        store.rows(&mut t);
        return Ok(rows_only(args, &t));
    }

    if args.functions_only {
        progress("function binaries under the Runtime API emulator");
        let functions = Functions::prepare(&args.bin_dir, &args.repo).await?;
        let cold = cold_start::measure(&plan, &functions).await?;
        let cold_dynamodb = cold_start::measure_dynamodb(&plan, &functions).await?;
        let steady = steady_state::measure(&plan, &functions).await?;
        let dynamodb = bench::costs::dynamodb_rows(&args.repo);
        let mut t = Table::new();
        cold.rows(&mut t, &functions);
        if let Some(on_dynamodb) = &cold_dynamodb {
            on_dynamodb.dynamodb_rows(&mut t, &functions, &cold);
        }
        steady.rows(&mut t, &functions);
        calls::rows(&mut t, &functions, &dynamodb);
        return Ok(rows_only(args, &t));
    }
    if args.sign_in_only {
        progress("in process: password sign-in and sign-up against their floors");
        let sign_in = sign_in::measure(&plan, &args.repo).await;
        let mut t = Table::new();
        sign_in.rows(&mut t);
        return Ok(rows_only(args, &t));
    }
    if args.http_only {
        progress("in process: session reads");
        let inproc = session_read::in_process(&plan).await;
        progress("over HTTP: local-api, GET session against GET /v1/environment");
        let http = session_read::over_http(&plan, &args.bin_dir).await?;
        let mut t = Table::new();
        session_read::rows(&mut t, &inproc, &http);
        return Ok(rows_only(args, &t));
    }
    if args.writes_only {
        progress("in process: touch, end and ticket sign-in against session reads");
        let inproc = writes::in_process(&plan).await;
        let http = writes::over_http(&plan, &args.bin_dir).await?;
        let mut t = Table::new();
        writes::rows(&mut t, &inproc, &http);
        return Ok(rows_only(args, &t));
    }
    progress("in process: token minting");
    let mint = minting::measure(&plan).await;
    progress("in process: session reads");
    let read = session_read::in_process(&plan).await;
    progress("in process: touch, end and ticket sign-in against session reads");
    let writes_in_process = writes::in_process(&plan).await;
    progress("in process: what metrics cost a session read");
    let metrics = metrics_cost::measure(&plan).await;
    progress("in process: a client answer with 50 sessions against one");
    let many = many_sessions::measure(&plan).await;
    progress("in process: password sign-in and sign-up against their floors");
    let sign_in = sign_in::measure(&plan, &args.repo).await;
    if args.in_process_only {
        let mut t = Table::new();
        metrics.rows(&mut t);
        many.rows(&mut t);
        let mut line = format!(
            "tokens p50 {} (floor {}), GET session p50 {}, environment p50 {}",
            fmt_duration(mint.tokens.p50),
            fmt_duration(mint.floor.p50),
            fmt_duration(read.session.p50),
            fmt_duration(read.environment.p50)
        );
        for w in &writes_in_process {
            line += &format!(
                ", {} p50 {} (GET session {})",
                w.write.name(),
                fmt_duration(w.measured.p50),
                fmt_duration(w.read.p50)
            );
        }
        return Ok(format!("{line}\n\n{}", t.as_str()));
    }
    progress("over HTTP: local-api, GET session against GET /v1/environment");
    let read_http = session_read::over_http(&plan, &args.bin_dir).await?;
    let writes_http = writes::over_http(&plan, &args.bin_dir).await?;
    progress("function binaries under the Runtime API emulator");
    let functions = Functions::prepare(&args.bin_dir, &args.repo).await?;
    let cold = cold_start::measure(&plan, &functions).await?;
    let cold_dynamodb = cold_start::measure_dynamodb(&plan, &functions).await?;
    let steady = steady_state::measure(&plan, &functions).await?;
    let dynamodb = bench::costs::dynamodb_rows(&args.repo);
    progress("worst case the limits allow");
    let worst = worst_case::measure(&args.bin_dir, &args.repo, plan.worst_case_invocations).await?;
    let store = embedded_store::measure(&plan, &args.bin_dir).await?;

    let mut t = Table::new();
    mint.rows(&mut t, args.criterion_dir.as_deref());
    session_read::rows(&mut t, &read, &read_http);
    cold.rows(&mut t, &functions);
    if let Some(on_dynamodb) = &cold_dynamodb {
        on_dynamodb.dynamodb_rows(&mut t, &functions, &cold);
    }
    steady.rows(&mut t, &functions);
    calls::rows(&mut t, &functions, &dynamodb);
    let (rows, misses) = worst.rows(PEAK_MAX_KB);
    t.push_rows(&rows, misses);
    writes::rows(&mut t, &writes_in_process, &writes_http);
    store.rows(&mut t);
    metrics.rows(&mut t);
    many.rows(&mut t);
    sign_in.rows(&mut t);

    // 6. What each endpoint costs on AWS, from the warm durations measured above.
    let lifetimes = bench::costs::default_lifetimes()?;
    let (costs, _) = bench::costs::report(&dynamodb, &steady.warm_p50(&functions), lifetimes);
    Ok(report::render(args, started, &t, &costs))
}
