//! What a process builds once at start-up and shares with every request.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::clock::{Clock, Millis, SystemClock};
use crate::config::{Config, StoreBackend};
use crate::domain::{JwtTemplate, Lifetimes};
use crate::email::Mailer;
use crate::keyring::service::{self, KeyAccess, KeySource, KeyringError, LoadKeys};
use crate::keyring::{Keyring, Sealer};
use crate::metrics::Metrics;
use crate::store::{
    DynamoDbStore, MemoryStore, MeteredStore, NoStore, SqliteStore, Store, StoreError,
};
use crate::tokens::template_token::{CompiledTemplate, TemplateInvalid};
use crate::tokens::KeyError;

/// How often the embedded store on a data file deletes expired records.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// A boxed future: one type for functions chosen through pointers.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a Lambda function builds its state. Each function names one in its route table
/// (`routes.rs`), so its binary links only the store and key code that start uses.
pub type Start = fn(Config) -> BoxFuture<'static, Result<AppState, StartupError>>;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

impl From<KeyringError> for StartupError {
    fn from(err: KeyringError) -> Self {
        match err {
            KeyringError::Store(err) => Self::Store(err),
            KeyringError::Keys(err) => Self::Keys(err),
        }
    }
}

pub struct AppState {
    pub config: Config,
    /// The store, counted and timed ([`MeteredStore`]).
    pub store: Arc<dyn Store>,
    /// The per-request metrics, registered with the recorder installed at start-up.
    pub metrics: Metrics,
    pub clock: Arc<dyn Clock>,
    pub sealer: Sealer,
    key_access: KeyAccess,
    load_keys: LoadKeys,
    keyring: RwLock<Arc<Keyring>>,
    keyring_loaded_at: AtomicI64,
    /// One reload at a time; the others keep using the keyring they have.
    keyring_reload: tokio::sync::Mutex<()>,
    /// The `GET /v1/environment` document, serialized once.
    pub environment_json: String,
    secret_key_digest: Option<aws_lc_rs::digest::Digest>,
    origin_verify_digest: Option<aws_lc_rs::digest::Digest>,
    /// Parsed JWT templates by id; an entry is used only while its version is current.
    templates: Mutex<HashMap<String, Arc<CompiledTemplate>>>,
    /// `last_active_token`s signed lately, served again while young.
    pub recent_tokens: crate::tokens::recent::RecentTokens,
    /// Users and sessions as the Frontend API shows them, rendered lately; an entry
    /// serves only records equal to those it was rendered from.
    pub rendered: crate::wire::RenderCache,
    /// Sends one-time codes by email: as configured in the processes that serve sign-ins
    /// and sign-ups, disabled in those that never send (docs/email.md).
    pub mailer: Arc<Mailer>,
}

impl AppState {
    /// Builds the store named by the configuration, then the state. On Lambda the table
    /// comes from `template.yaml`; the local server asks to `create_table` when missing.
    pub async fn from_config(config: Config, create_table: bool) -> Result<Self, StartupError> {
        Self::from_config_with_access(config, create_table, KeyAccess::Private).await
    }

    /// Like [`AppState::from_config`], for a process with only `access` to the keyring.
    pub async fn from_config_with_access(
        config: Config,
        create_table: bool,
        access: KeyAccess,
    ) -> Result<Self, StartupError> {
        let store = configured_store(&config, create_table).await?;
        let sealer = configured_sealer(&config, store.as_ref()).await?;
        Self::build(config, store, Arc::new(SystemClock), sealer, access).await
    }

    /// A function that signs and verifies: the configured store, private keys unsealed
    /// as configured (KMS on Lambda).
    pub fn start_with_private_keys(
        config: Config,
    ) -> BoxFuture<'static, Result<Self, StartupError>> {
        Box::pin(async move {
            let mailer = Mailer::from_config(&config.email).await?;
            Self::start_sealing(config, KeyAccess::Private, service::load_private, mailer).await
        })
    }

    /// The Backend API: as [`AppState::start_with_private_keys`], and it cannot serve
    /// without the secret key, which only it holds.
    pub fn start_backend_api(config: Config) -> BoxFuture<'static, Result<Self, StartupError>> {
        Box::pin(async move {
            if config.secret_key.is_none() {
                let missing = crate::config::ConfigError::Missing("BACKEND_API_SECRET_KEY");
                return Err(missing.into());
            }
            // It signs, but never sends a code.
            let mailer = Mailer::disabled();
            Self::start_sealing(config, KeyAccess::Private, service::load_private, mailer).await
        })
    }

    /// A function that publishes public keys only: the configured store, and no way to
    /// open private material (no KMS client is made).
    pub fn start_with_public_keys(
        config: Config,
    ) -> BoxFuture<'static, Result<Self, StartupError>> {
        Box::pin(async move {
            let store = configured_store(&config, false).await?;
            let clock = Arc::new(SystemClock);
            Self::build_with(
                config,
                store,
                clock,
                Sealer::Plain,
                KeyAccess::Public,
                service::load_public,
                Mailer::disabled(),
            )
            .await
        })
    }

    /// The webhooks function: the configured store and the sealer that opens endpoint
    /// secrets (KMS on Lambda); no keyring is loaded, nothing is signed.
    pub fn start_webhooks(config: Config) -> BoxFuture<'static, Result<Self, StartupError>> {
        Box::pin(Self::start_sealing(
            config,
            KeyAccess::None,
            service::load_none,
            Mailer::disabled(),
        ))
    }

    /// The configured store, and the sealer of the configuration (KMS when a key is set):
    /// a process that opens sealed material, with `access` to the keyring.
    async fn start_sealing(
        config: Config,
        access: KeyAccess,
        load_keys: LoadKeys,
        mailer: Mailer,
    ) -> Result<Self, StartupError> {
        let store = configured_store(&config, false).await?;
        let sealer = configured_sealer(&config, store.as_ref()).await?;
        let clock = Arc::new(SystemClock);
        Self::build_with(config, store, clock, sealer, access, load_keys, mailer).await
    }

    /// A function that serves what configuration alone decides (`GET /v1/environment`):
    /// no store is opened and no keys are loaded.
    pub fn start_without_store(config: Config) -> BoxFuture<'static, Result<Self, StartupError>> {
        Box::pin(async move {
            let clock = Arc::new(SystemClock);
            Self::build_with(
                config,
                Arc::new(NoStore),
                clock,
                Sealer::Plain,
                KeyAccess::None,
                service::load_none,
                Mailer::disabled(),
            )
            .await
        })
    }

    /// The state of a process that signs and verifies on `store`, keys sealed as
    /// configured ([`configured_sealer`]: plain in memory, the local key-encryption key
    /// on the embedded store's database).
    pub async fn new(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        let sealer = configured_sealer(&config, store.as_ref()).await?;
        Self::build(config, store, clock, sealer, KeyAccess::Private).await
    }

    /// Loads the keyring as `access` allows, creating it on the first start. The mailer
    /// is the configured one.
    pub async fn build(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        sealer: Sealer,
        access: KeyAccess,
    ) -> Result<Self, StartupError> {
        let mailer = Mailer::from_config(&config.email).await?;
        Self::build_with(
            config,
            store,
            clock,
            sealer,
            access,
            service::loader(access),
            mailer,
        )
        .await
    }

    /// The same state with `mailer` instead (the tests' `Mailer::capture()`).
    pub fn with_mailer(mut self, mailer: Mailer) -> Self {
        self.mailer = Arc::new(mailer);
        self
    }

    async fn build_with(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        sealer: Sealer,
        access: KeyAccess,
        load_keys: LoadKeys,
        mailer: Mailer,
    ) -> Result<Self, StartupError> {
        if access == KeyAccess::Private
            && sealer_is_plain(&sealer)
            && matches!(config.store, StoreBackend::DynamoDb { .. })
        {
            tracing::warn!(
                "KEY_ENCRYPTION_KMS_KEY_ID is not set: the keyring's private material is stored unencrypted in the table"
            );
        }
        let environment_json = crate::environment::document(&config);
        let secret_key_digest = config
            .secret_key
            .as_ref()
            .map(|k| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, k.expose().as_bytes()));
        let origin_verify_digest = config
            .origin_verify_secret
            .as_ref()
            .map(|s| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.expose().as_bytes()));
        // Registered after the process installed its recorder (telemetry comes first).
        let metrics = Metrics::register();
        let store: Arc<dyn Store> = Arc::new(MeteredStore::new(store, metrics.clone()));
        let state = Self {
            origin_verify_digest,
            config,
            store,
            metrics,
            clock,
            sealer,
            key_access: access,
            load_keys,
            keyring: RwLock::new(Arc::new(Keyring::empty())),
            keyring_loaded_at: AtomicI64::new(0),
            keyring_reload: tokio::sync::Mutex::new(()),
            environment_json,
            secret_key_digest,
            templates: Mutex::new(HashMap::new()),
            recent_tokens: Default::default(),
            rendered: Default::default(),
            mailer: Arc::new(mailer),
        };
        let none = Keyring::empty();
        let keyring = at_start(
            state.config.startup_retry,
            "loading the keyring",
            || async { Ok((state.load_keys)(state.key_source(), &none, true).await?) },
        )
        .await?;
        state.install_keyring(keyring);
        Ok(state)
    }

    /// What each in-process cache holds: (name, entries, bytes where counted). Every one
    /// is bounded (docs/operations.md, "Memory").
    pub fn cache_sizes(&self) -> Vec<(&'static str, usize, Option<usize>)> {
        let [(users, user_bytes), (sessions, session_bytes)] = self.rendered.sizes();
        let (verified, verified_bytes) = self.keys().verified_tokens();
        let templates = self.templates.lock().map_or(0, |t| t.len());
        vec![
            ("rendered_users", users, Some(user_bytes)),
            ("rendered_sessions", sessions, Some(session_bytes)),
            ("recent_tokens", self.recent_tokens.len(), None),
            ("verified_client_tokens", verified, Some(verified_bytes)),
            ("compiled_templates", templates, None),
        ]
    }

    /// The keyring as this process last loaded it (cheap: an `Arc` clone).
    pub fn keys(&self) -> Arc<Keyring> {
        Arc::clone(&self.keyring.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn key_access(&self) -> KeyAccess {
        self.key_access
    }

    /// Where this process loads its keyring from.
    fn key_source(&self) -> KeySource<'_> {
        KeySource {
            store: self.store.as_ref(),
            sealer: &self.sealer,
            clock: self.clock.as_ref(),
        }
    }

    /// Uses `keyring` from now on (after this process rotated the keys).
    pub(crate) fn replace_keys(&self, keyring: Keyring) {
        self.install_keyring(keyring);
    }

    fn install_keyring(&self, keyring: Keyring) {
        *self.keyring.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keyring);
        self.keyring_loaded_at.store(self.now(), Ordering::Relaxed);
    }

    /// Re-reads the keyring when the refresh interval has passed, or at once (at most once
    /// a second) when `urgent`: a client token named a secret this process does not know.
    /// A failed read keeps the keys in hand and is tried again a second later.
    pub async fn refresh_keys(&self, urgent: bool) {
        if self.key_access == KeyAccess::None {
            return;
        }
        let interval = self.config.keyring_refresh_interval().as_millis() as Millis;
        let due = |now: Millis| {
            let age = now - self.keyring_loaded_at.load(Ordering::Relaxed);
            age >= interval || (urgent && age >= 1_000)
        };
        if !due(self.now()) {
            return;
        }
        let _reloading = self.keyring_reload.lock().await;
        let now = self.now();
        if !due(now) {
            return;
        }
        let previous = self.keys();
        match (self.load_keys)(self.key_source(), &previous, false).await {
            Ok(keyring) => self.install_keyring(keyring),
            Err(err) => {
                tracing::warn!(error = %err, "keyring not refreshed; keeping the keys in hand");
                self.keyring_loaded_at
                    .store(now - interval + 1_000, Ordering::Relaxed);
            }
        }
    }

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    pub fn lifetimes(&self) -> Lifetimes {
        Lifetimes {
            session_max_ms: self.config.session_max_lifetime.as_millis() as Millis,
            inactivity_ms: self.config.session_inactivity_timeout.as_millis() as Millis,
            activity_interval_ms: self.config.session_activity_interval.as_millis() as Millis,
        }
    }

    /// Compares a presented Backend API key with ours in constant time (over digests, so
    /// not even the length leaks).
    pub fn secret_key_matches(&self, presented: &str) -> bool {
        let Some(expected) = &self.secret_key_digest else {
            return false;
        };
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, presented.as_bytes());
        aws_lc_rs::constant_time::verify_slices_are_equal(digest.as_ref(), expected.as_ref())
            .is_ok()
    }

    /// Whether the request came through the CDN, when one is configured: its
    /// `x-origin-verify` header must equal the secret (compared over digests).
    pub fn origin_verified(&self, req: &crate::http::Request) -> bool {
        let Some(digest) = &self.origin_verify_digest else {
            return true;
        };
        let presented = req
            .headers()
            .get("x-origin-verify")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        let presented = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, presented);
        aws_lc_rs::constant_time::verify_slices_are_equal(presented.as_ref(), digest.as_ref())
            .is_ok()
    }

    /// The template parsed and its key loaded: once per template version, not per mint.
    pub fn compiled_template(
        &self,
        t: &JwtTemplate,
    ) -> Result<Arc<CompiledTemplate>, TemplateInvalid> {
        let cached = self
            .templates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&t.id)
            .filter(|c| c.version == t.version)
            .cloned();
        if let Some(compiled) = cached {
            return Ok(compiled);
        }
        let compiled = Arc::new(CompiledTemplate::compile(t)?);
        self.templates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(t.id.clone(), Arc::clone(&compiled));
        Ok(compiled)
    }
}

/// How a process that opens key material seals it, on `store` as `config` names it:
/// - KMS when `KEY_ENCRYPTION_KMS_KEY_ID` is set;
/// - on the embedded store's database, its local key-encryption key
///   (`LOCAL_KEY_ENCRYPTION_KEY`, else the key file beside the database, made on the first
///   start; a missing key the database needs, or the wrong one, is a start-up error);
/// - else plain (the in-memory store; DynamoDB without KMS, with a warning).
///
/// On the embedded store's database, what is stored plain (by earlier versions) is sealed
/// with it before the process serves, and everything sealed is checked to open with it.
pub async fn configured_sealer(config: &Config, store: &dyn Store) -> Result<Sealer, StartupError> {
    let database = match &config.store {
        StoreBackend::Embedded {
            data_file: Some(path),
        } => Some(path),
        _ => None,
    };
    let sealer = match (&config.kms_key_id, database) {
        (Some(key_id), _) => Sealer::from_config(Some(key_id)).await,
        (None, Some(path)) => {
            let from_env = config.local_key_encryption_key.as_ref().map(|k| k.expose());
            let may_create = !crate::keyring::reseal::holds_local(store).await?;
            Sealer::Local(crate::keyring::local_kek::resolve(
                path, from_env, may_create,
            )?)
        }
        (None, None) => return Ok(Sealer::Plain),
    };
    if database.is_some() {
        crate::keyring::reseal::seal_plain_material(store, &sealer).await?;
    }
    Ok(sealer)
}

fn sealer_is_plain(sealer: &Sealer) -> bool {
    matches!(sealer, Sealer::Plain)
}

/// The store the configuration names, opened. On Lambda the table comes from
/// `template.yaml`; the local server asks to `create_table` when missing.
async fn configured_store(
    config: &Config,
    create_table: bool,
) -> Result<Arc<dyn Store>, StartupError> {
    Ok(match &config.store {
        StoreBackend::Embedded {
            data_file: Some(path),
        } => {
            let store = SqliteStore::open(path)?;
            store.start_maintenance(SWEEP_INTERVAL);
            Arc::new(store)
        }
        StoreBackend::Embedded { data_file: None } => Arc::new(MemoryStore::new()),
        StoreBackend::DynamoDb { table_name } => {
            let store = DynamoDbStore::from_env(table_name.clone()).await;
            if create_table {
                at_start(config.startup_retry, "checking the table", || async {
                    Ok(store.ensure_table().await?)
                })
                .await?;
            }
            Arc::new(store)
        }
    })
}

/// Runs a start-up step, retrying while the store is unavailable (throttled, unreachable):
/// pauses from 100 ms, doubling up to 2 s, each with up to half of it added at random (so
/// processes starting together do not retry in step), until `budget` is spent. Then the
/// last failure, saying how long it was tried. Any other failure is answered at once.
async fn at_start<T, F, Fut>(budget: Duration, what: &str, mut step: F) -> Result<T, StartupError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StartupError>>,
{
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        match step().await {
            Err(StartupError::Store(StoreError::Unavailable(why))) => {
                let jitter = pause.mul_f64(f64::from(crate::ids::random_bytes::<1>()[0]) / 510.0);
                let next = pause + jitter;
                if started.elapsed() + next > budget {
                    return Err(StartupError::Store(StoreError::Unavailable(format!(
                        "{what}: still unavailable after {:.1} s of retries \
                         (STARTUP_RETRY_SECONDS={}): {why}",
                        started.elapsed().as_secs_f64(),
                        budget.as_secs()
                    ))));
                }
                tracing::warn!(step = what, error = %why, "store unavailable at start-up, retrying");
                tokio::time::sleep(next).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}
