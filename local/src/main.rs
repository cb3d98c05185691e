//! `cargo run --release -p local-api -- [--port N] [--in-memory] [--data-file PATH]`
//!
//! Serves the whole API on 127.0.0.1 on the embedded store. Settings come from the same
//! environment variables as the Lambda functions; the local server fills in
//! `FRONTEND_API_URL` (its own URL) and `BACKEND_API_SECRET_KEY` (a fresh one, printed)
//! when they are not set.

use std::path::PathBuf;
use std::sync::Arc;

use shared::config::{Config, InstanceType, LocalServerConfig, StoreBackend};
use shared::state::AppState;
use tokio::net::TcpListener;

struct Args {
    port: u16,
    in_memory: bool,
    data_file: PathBuf,
}

fn usage() -> ! {
    eprintln!(
        "usage: local-api [--port N] [--in-memory] [--data-file PATH]   (PORT also sets the port)"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        port: std::env::var("PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(3000),
        in_memory: false,
        data_file: PathBuf::from(".data/store.json"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--port" => {
                args.port = it
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--in-memory" => args.in_memory = true,
            "--data-file" => {
                args.data_file = it.next().map(PathBuf::from).unwrap_or_else(|| usage())
            }
            _ => usage(),
        }
    }
    args
}

#[tokio::main]
async fn main() {
    if let Err(err) = run().await {
        eprintln!("local-api: {err}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    shared::telemetry::init();
    let args = parse_args();
    let listener = TcpListener::bind(("127.0.0.1", args.port)).await?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}");

    let generated_key = format!("sk_local_{}", shared::ids::new_secret());
    let mut config = Config::from_lookup(|name| match name {
        "FRONTEND_API_URL" => std::env::var(name).ok().or_else(|| Some(url.clone())),
        "BACKEND_API_SECRET_KEY" => std::env::var(name)
            .ok()
            .or_else(|| Some(generated_key.clone())),
        _ => std::env::var(name).ok(),
    })?;
    let store_line = match &mut config.store {
        StoreBackend::Embedded { data_file } => {
            if args.in_memory {
                *data_file = None;
            } else if data_file.is_none() {
                *data_file = Some(args.data_file.clone());
            }
            match data_file {
                Some(path) => format!(
                    "embedded store, data file {}",
                    std::path::absolute(&*path)?.display()
                ),
                None => "embedded store, in memory (nothing is kept)".to_string(),
            }
        }
        StoreBackend::DynamoDb { table_name } => {
            format!("DynamoDB table {table_name} (created if missing)")
        }
    };
    let settings = LocalServerConfig::from_env()?;
    let secret = config.secret_key.expose().to_string();
    let mode_line = match config.instance_type {
        InstanceType::Production => {
            "production instance (dev browser off; INSTANCE_TYPE=development turns it on)"
        }
        InstanceType::Development => {
            "development instance (dev browser on: never expose it to the internet)"
        }
    };
    let state = Arc::new(AppState::from_config(config, true).await?);

    println!("local-api: {store_line}");
    println!("local-api: {mode_line}");
    println!("local-api: Backend API secret key: {secret}");
    println!("local-api: ready on {url}");
    local_api::serve(listener, state, settings, stop_signal()?).await?;
    println!("local-api: stopped");
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, whichever comes first.
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        println!("local-api: stopping: no new connections, finishing in-flight requests");
    })
}
