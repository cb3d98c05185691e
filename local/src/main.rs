//! `cargo run --release -p local-api -- [--port N] [--in-memory] [--data-file PATH]`
//! `cargo run --release -p local-api -- rotate-keys [--keys KIND] [--emergency] [--data-file PATH]`
//! `cargo run --release -p local-api -- backup DEST [--data-file PATH]`
//! `cargo run --release -p local-api -- migrate-data-file JSON_FILE [--to PATH]`
//! `cargo run --release -p local-api -- seed --fixtures [--data-file PATH]`
//! `cargo run --release -p local-api -- index-identifiers [--data-file PATH]`
//!
//! Serves the whole API on 127.0.0.1 on the embedded store (a SQLite database); or
//! rotates the keyring of the configured store (docs/keys.md), writes an online backup of
//! the database, migrates a JSON data file of an earlier version
//! (docs/embedded-store.md), or seeds the configured store with the data the fixtures of
//! `events/` are played against (docs/deploy.md), and exits. Settings come from the same
//! environment variables as the Lambda functions; the local server fills in
//! `FRONTEND_API_URL` (its own URL) and `BACKEND_API_SECRET_KEY` (a fresh one, printed)
//! when they are not set.

/// The local server serves many connections on several threads and allocates per
/// request; mimalloc keeps that off glibc malloc's shared arenas (see docs/benchmarks.md).
/// Built without transparent huge pages (`no_thp`, Cargo.toml): see docs/operations.md,
/// "Memory".
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use shared::config::{Config, InstanceType, LocalServerConfig, StoreBackend};
use shared::keyring::service::KeyAccess;
use shared::keyring::Rotation;
use shared::state::AppState;
use tokio::net::TcpListener;

/// The embedded store's database when neither `--data-file` nor `EMBEDDED_STORE_PATH`
/// names one.
const DEFAULT_DATA_FILE: &str = ".data/store.sqlite3";
/// The JSON data file earlier versions kept by default: migrated on the first start.
const LEGACY_DATA_FILE: &str = ".data/store.json";

/// What the command line asks for.
enum Command {
    Serve,
    /// `rotate-keys`: rotate the keyring and exit.
    RotateKeys(Rotation),
    /// `backup DEST`: write an online backup of the database.
    Backup(PathBuf),
    /// `migrate-data-file JSON_FILE [--to PATH]`.
    Migrate {
        from: PathBuf,
        to: Option<PathBuf>,
    },
    /// `seed --fixtures`: write the fixtures' data (`true` once `--fixtures` is read).
    Seed(bool),
    /// `index-identifiers`: the identifier items of users stored before they existed.
    IndexIdentifiers,
}

struct Args {
    command: Command,
    port: u16,
    in_memory: bool,
    /// `--data-file`, when given.
    data_file: Option<PathBuf>,
}

fn usage() -> ! {
    eprintln!(
        "usage: local-api [--port N] [--in-memory] [--data-file PATH]   (PORT also sets the port)\n       \
         local-api rotate-keys [--keys all|session_signing|client_token] [--emergency] [--data-file PATH]\n       \
         local-api backup DEST [--data-file PATH]\n       \
         local-api migrate-data-file JSON_FILE [--to PATH]\n       \
         local-api seed --fixtures [--data-file PATH]\n       \
         local-api index-identifiers [--data-file PATH]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        command: Command::Serve,
        port: std::env::var("PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(3000),
        in_memory: false,
        data_file: None,
    };
    let mut it = std::env::args().skip(1).peekable();
    let path_arg = |arg: Option<String>| arg.map(PathBuf::from).unwrap_or_else(|| usage());
    match it.peek().map(String::as_str) {
        Some("rotate-keys") => args.command = Command::RotateKeys(Rotation::default()),
        Some("seed") => args.command = Command::Seed(false),
        Some("index-identifiers") => args.command = Command::IndexIdentifiers,
        Some("backup") => {
            it.next();
            args.command = Command::Backup(path_arg(it.peek().cloned()));
        }
        Some("migrate-data-file") => {
            it.next();
            args.command = Command::Migrate {
                from: path_arg(it.peek().cloned()),
                to: None,
            };
        }
        _ => {}
    }
    if !matches!(args.command, Command::Serve) {
        it.next();
    }
    while let Some(arg) = it.next() {
        match (arg.as_str(), &mut args.command) {
            ("--emergency", Command::RotateKeys(rotation)) => rotation.emergency = true,
            ("--keys", Command::RotateKeys(rotation)) => {
                rotation.keys = it
                    .next()
                    .and_then(|k| serde_json::from_value(serde_json::Value::String(k)).ok())
                    .unwrap_or_else(|| usage())
            }
            ("--to", Command::Migrate { to, .. }) => *to = Some(path_arg(it.next())),
            ("--fixtures", Command::Seed(fixtures)) => *fixtures = true,
            ("--port", Command::Serve) => {
                args.port = it
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            ("--in-memory", Command::Serve) => args.in_memory = true,
            (
                "--data-file",
                Command::Serve
                | Command::RotateKeys(_)
                | Command::Backup(_)
                | Command::Seed(_)
                | Command::IndexIdentifiers,
            ) => args.data_file = Some(path_arg(it.next())),
            _ => usage(),
        }
    }
    // The fixtures' data is the only seed there is; naming it keeps room for others.
    if matches!(args.command, Command::Seed(false)) {
        usage();
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
    match &args.command {
        Command::Serve => {}
        Command::RotateKeys(rotation) => return rotate_keys(&args, *rotation).await,
        Command::Backup(dest) => return backup(&args, dest).await,
        Command::Seed(_) => return seed_fixtures(&args).await,
        Command::IndexIdentifiers => return index_identifiers(&args).await,
        Command::Migrate { from, to } => {
            let to = to.clone().unwrap_or_else(|| from.with_extension("sqlite3"));
            return migrate(from, &to);
        }
    }
    let listener = TcpListener::bind(("127.0.0.1", args.port)).await?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}");

    let generated_key = format!("sk_local_{}", shared::ids::new_secret());
    let set_key = std::env::var("BACKEND_API_SECRET_KEY").ok();
    let mut config = Config::from_lookup(|name| match name {
        "FRONTEND_API_URL" => std::env::var(name).ok().or_else(|| Some(url.clone())),
        "BACKEND_API_SECRET_KEY" => set_key.clone().or_else(|| Some(generated_key.clone())),
        _ => std::env::var(name).ok(),
    })?;
    let store_line = match &mut config.store {
        StoreBackend::Embedded { data_file } => {
            if args.in_memory {
                *data_file = None;
            } else if let Some(path) = &args.data_file {
                *data_file = Some(path.clone());
            } else if data_file.is_none() {
                *data_file = Some(default_data_file()?);
            }
            match data_file {
                // Said once the store has opened (created) the file, with its mode.
                Some(_) => String::new(),
                None => "embedded store, in memory (nothing is kept)".to_string(),
            }
        }
        StoreBackend::DynamoDb { table_name } => {
            format!("DynamoDB table {table_name} (created if missing)")
        }
    };
    let settings = LocalServerConfig::from_env()?;
    // The key is printed only when this process made it up: one the operator set stays out
    // of the output, which often ends up in a log store.
    let secret_line = if set_key.is_some() {
        "Backend API secret key from BACKEND_API_SECRET_KEY (not printed)".to_string()
    } else {
        format!("Backend API secret key: {generated_key}")
    };
    let publishable_key = config.publishable_key();
    let mode_line = match config.instance_type {
        InstanceType::Production => {
            "production instance (dev browser off; INSTANCE_TYPE=development turns it on)"
        }
        InstanceType::Development => {
            "development instance (dev browser on: never expose it to the internet)"
        }
    };
    let database = match &config.store {
        StoreBackend::Embedded {
            data_file: Some(path),
        } => Some(path.clone()),
        _ => None,
    };
    // Before the state: its per-request metrics register with the installed recorder.
    let metrics = local_api::install_metrics();
    let state = Arc::new(AppState::from_config(config, true).await?);
    let store_line = match database {
        Some(path) => format!(
            "embedded store, SQLite database {} ({})",
            std::path::absolute(&path)?.display(),
            file_mode(&path)
        ),
        None => store_line,
    };
    // Listening for the stop signals before saying ready: a SIGTERM sent as soon as the
    // ready line is read must stop the server gracefully, not kill it.
    let stop = stop_signal()?;

    println!("local-api: {store_line}");
    println!("local-api: {mode_line}");
    println!("local-api: {secret_line}");
    println!("local-api: publishable key: {publishable_key}");
    println!("local-api: ready on {url}");
    local_api::serve(listener, state, settings, metrics, stop).await?;
    println!("local-api: stopped");
    Ok(())
}

/// `mode 0600`, as the file's permissions are.
fn file_mode(path: &Path) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            return format!("mode {:04o}", meta.permissions().mode() & 0o777);
        }
    }
    let _ = path;
    "mode unknown".to_string()
}

/// The default database, migrating the JSON data file that earlier versions kept by
/// default into it on the first start.
fn default_data_file() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let path = PathBuf::from(DEFAULT_DATA_FILE);
    let legacy = Path::new(LEGACY_DATA_FILE);
    if !path.exists() && shared::store::sqlite::legacy::is_json_data_file(legacy) {
        migrate(legacy, &path)?;
    }
    Ok(path)
}

/// `local-api migrate-data-file`: copies a JSON data file of an earlier version into a
/// new SQLite database, leaving the JSON file as it was.
fn migrate(from: &Path, to: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let migrated = shared::store::sqlite::legacy::migrate_json_data_file(from, to)?;
    println!(
        "local-api: migrated {} into {}: {migrated}; {} is no longer read and can be deleted",
        from.display(),
        to.display(),
        from.display()
    );
    Ok(())
}

/// The configuration of a command that works on the store and exits: the embedded
/// store's database is `--data-file`, else `EMBEDDED_STORE_PATH`, else the default.
fn command_config(args: &Args) -> Result<Config, Box<dyn std::error::Error>> {
    let mut config = Config::from_lookup(|name| match name {
        // Never used here: token issuers and cookies are not touched by these commands.
        "FRONTEND_API_URL" => std::env::var(name)
            .ok()
            .or_else(|| Some("http://127.0.0.1".into())),
        _ => std::env::var(name).ok(),
    })?;
    if let StoreBackend::Embedded { data_file } = &mut config.store {
        if let Some(path) = &args.data_file {
            *data_file = Some(path.clone());
        } else if data_file.is_none() {
            *data_file = Some(default_data_file()?);
        }
    }
    Ok(config)
}

/// `local-api backup DEST`: an online backup of the embedded store's database, safe while
/// servers are running on it (docs/embedded-store.md).
async fn backup(args: &Args, dest: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let StoreBackend::Embedded {
        data_file: Some(path),
    } = command_config(args)?.store
    else {
        return Err("backup: the configured store is not the embedded store's database".into());
    };
    if dest.exists() {
        return Err(format!("backup: {} exists already", dest.display()).into());
    }
    shared::store::SqliteStore::open(&path)?
        .backup_to(dest)
        .await?;
    println!(
        "local-api: backed up {} to {}",
        path.display(),
        dest.display()
    );
    // The backup's keys are sealed with the local key-encryption key, which is not in it.
    if std::env::var_os(shared::keyring::local_kek::ENV).is_none() {
        println!(
            "local-api: keep {} with the backup: without that key its keys cannot be read",
            shared::keyring::local_kek::key_file(&path).display()
        );
    }
    Ok(())
}

/// `local-api rotate-keys`: rotates the keyring of the configured store, prints its
/// lifecycle, and exits. Servers running on the same database pick the new keyring up
/// when they next reload it (docs/keys.md); a running server also rotates with
/// `POST /v1/instance/keys/rotate`.
async fn rotate_keys(args: &Args, rotation: Rotation) -> Result<(), Box<dyn std::error::Error>> {
    let config = command_config(args)?;
    let state = AppState::from_config(config, true).await?;
    let record = shared::app::keys::rotate(&state, rotation)
        .await
        .map_err(|e| format!("{}: {}", e.code, e.long_message))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&record.describe(state.now()))?
    );
    Ok(())
}

/// `local-api index-identifiers`: gives the users stored before this version their
/// identifier items, so that they sign in by email address or username
/// (docs/sign-in.md). DynamoDB only needs it: an embedded store's database indexes its
/// users when it is opened.
async fn index_identifiers(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    match command_config(args)?.store {
        StoreBackend::DynamoDb { table_name } => {
            let store = shared::store::DynamoDbStore::from_env(table_name.clone()).await;
            let (written, conflicts) = store.index_identifiers().await?;
            println!(
                "local-api: DynamoDB table {table_name}: {written} identifier item(s) written; \
                 {conflicts} address(es) or username(s) held by another, older user (left to it)"
            );
        }
        StoreBackend::Embedded {
            data_file: Some(path),
        } => {
            shared::store::SqliteStore::open(&path)?;
            println!(
                "local-api: {}: its users' identifiers are indexed (the database does it when opened)",
                path.display()
            );
        }
        StoreBackend::Embedded { data_file: None } => {
            println!("local-api: an in-memory store has nothing to index");
        }
    }
    Ok(())
}

/// `local-api seed --fixtures`: writes the data the fixtures of `events/` are played
/// against into the configured store, with fixed ids and the fixtures' public keyring
/// (`shared::fixtures`), and exits. Run again, it puts the fixture records back as seeded.
async fn seed_fixtures(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    use shared::fixtures as f;
    let config = command_config(args)?;
    let store = match &config.store {
        StoreBackend::Embedded {
            data_file: Some(path),
        } => format!("SQLite database {}", std::path::absolute(path)?.display()),
        StoreBackend::Embedded { data_file: None } => "in-memory store".to_string(),
        StoreBackend::DynamoDb { table_name } => format!("DynamoDB table {table_name}"),
    };
    // No keyring access: a process that loads the keyring would first make one of its own,
    // and the seed writes the fixtures' keyring only over none or the fixtures' own.
    let state = AppState::from_config_with_access(config, true, KeyAccess::None).await?;
    shared::fixtures::seed(&state).await?;
    let env: Vec<String> = f::FUNCTION_ENV
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    println!("local-api: seeded the fixtures' data into the {store}");
    println!(
        "local-api: user {}, client {}, sessions {} (active, last active) and {} (ended), \
         template {} ({}), an unused sign-in ticket",
        f::USER_ID,
        f::CLIENT_ID,
        f::SESSION_ID,
        f::ENDED_SESSION_ID,
        f::TEMPLATE_NAME,
        f::TEMPLATE_ID
    );
    println!(
        "local-api: the functions that play events/ need {} (public, fixtures-only values)",
        env.join(" ")
    );
    println!(
        "local-api: this store now signs with the fixtures' public keys: never let it serve real users"
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
