//! `cargo run --release -p local-api -- [--port N] [--in-memory] [--data-file PATH]`
//! `cargo run --release -p local-api -- rotate-keys [--keys KIND] [--emergency] [--data-file PATH]`
//!
//! Serves the whole API on 127.0.0.1 on the embedded store; or rotates the keyring of the
//! configured store and exits (docs/keys.md). Settings come from the same
//! environment variables as the Lambda functions; the local server fills in
//! `FRONTEND_API_URL` (its own URL) and `BACKEND_API_SECRET_KEY` (a fresh one, printed)
//! when they are not set.

use std::path::PathBuf;
use std::sync::Arc;

use shared::config::{Config, InstanceType, LocalServerConfig, StoreBackend};
use shared::keyring::Rotation;
use shared::state::AppState;
use tokio::net::TcpListener;

struct Args {
    port: u16,
    in_memory: bool,
    data_file: PathBuf,
    /// `rotate-keys`: rotate instead of serving.
    rotation: Option<Rotation>,
}

fn usage() -> ! {
    eprintln!(
        "usage: local-api [--port N] [--in-memory] [--data-file PATH]   (PORT also sets the port)\n       \
         local-api rotate-keys [--keys all|session_signing|client_token] [--emergency] [--data-file PATH]"
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
        rotation: None,
    };
    let mut it = std::env::args().skip(1).peekable();
    if it.peek().map(String::as_str) == Some("rotate-keys") {
        it.next();
        args.rotation = Some(Rotation::default());
    }
    while let Some(arg) = it.next() {
        match (arg.as_str(), args.rotation.as_mut()) {
            ("--emergency", Some(rotation)) => rotation.emergency = true,
            ("--keys", Some(rotation)) => {
                rotation.keys = it
                    .next()
                    .and_then(|k| serde_json::from_value(serde_json::Value::String(k)).ok())
                    .unwrap_or_else(|| usage())
            }
            (arg, _) => match arg {
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
            },
        }
    }
    if args.rotation.is_some() && args.in_memory {
        usage()
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
    if let Some(rotation) = args.rotation {
        return rotate_keys(&args, rotation).await;
    }
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
    let secret = config
        .secret_key
        .as_ref()
        .map(|k| k.expose().to_string())
        .unwrap_or_default();
    let mode_line = match config.instance_type {
        InstanceType::Production => {
            "production instance (dev browser off; INSTANCE_TYPE=development turns it on)"
        }
        InstanceType::Development => {
            "development instance (dev browser on: never expose it to the internet)"
        }
    };
    let state = Arc::new(AppState::from_config(config, true).await?);
    // Listening for the stop signals before saying ready: a SIGTERM sent as soon as the
    // ready line is read must stop the server gracefully, not kill it.
    let stop = stop_signal()?;

    println!("local-api: {store_line}");
    println!("local-api: {mode_line}");
    println!("local-api: Backend API secret key: {secret}");
    println!("local-api: ready on {url}");
    local_api::serve(listener, state, settings, stop).await?;
    println!("local-api: stopped");
    Ok(())
}

/// `local-api rotate-keys`: rotates the keyring of the configured store, prints its
/// lifecycle, and exits. On a data file the server must be stopped (the file is locked
/// while it runs); a running server rotates with `POST /v1/instance/keys/rotate`.
async fn rotate_keys(args: &Args, rotation: Rotation) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::from_lookup(|name| match name {
        // Never used here: token issuers and cookies are not touched by a rotation.
        "FRONTEND_API_URL" => std::env::var(name)
            .ok()
            .or_else(|| Some("http://127.0.0.1".into())),
        _ => std::env::var(name).ok(),
    })?;
    if let StoreBackend::Embedded { data_file } = &mut config.store {
        data_file.get_or_insert_with(|| args.data_file.clone());
    }
    let state = AppState::from_config(config, true).await?;
    let record = shared::keyring::service::rotate(&state, rotation)
        .await
        .map_err(|e| format!("{}: {}", e.code, e.long_message))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&record.describe(state.now()))?
    );
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, whichever comes first. Both are listened for
/// from the call on, not from the first poll.
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let (mut interrupt, mut term) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        )
    };
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        println!("local-api: stopping: no new connections, finishing in-flight requests");
    })
}
