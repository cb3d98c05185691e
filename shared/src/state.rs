//! What a process builds once at start-up and shares with every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::clock::{Clock, Millis, SystemClock};
use crate::config::{Config, StoreBackend};
use crate::domain::{JwtTemplate, Lifetimes};
use crate::store::{DynamoDbStore, EmbeddedStore, Store, StoreError};
use crate::tokens::client_token::ClientTokenKeys;
use crate::tokens::template_token::{CompiledTemplate, TemplateInvalid};
use crate::tokens::{InstanceKeys, KeyError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::error::ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

pub struct AppState {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub keys: InstanceKeys,
    pub client_tokens: ClientTokenKeys,
    /// The `GET /v1/environment` document, serialized once.
    pub environment_json: String,
    secret_key_digest: aws_lc_rs::digest::Digest,
    origin_verify_digest: Option<aws_lc_rs::digest::Digest>,
    /// Parsed JWT templates by id; an entry is used only while its version is current.
    templates: Mutex<HashMap<String, Arc<CompiledTemplate>>>,
}

impl AppState {
    /// Builds the store named by the configuration, then the state. On Lambda the table
    /// comes from `template.yaml`; the local server asks to `create_table` when missing.
    pub async fn from_config(config: Config, create_table: bool) -> Result<Self, StartupError> {
        let store: Arc<dyn Store> = match &config.store {
            StoreBackend::Embedded {
                data_file: Some(path),
            } => Arc::new(EmbeddedStore::open(path)?),
            StoreBackend::Embedded { data_file: None } => Arc::new(EmbeddedStore::in_memory()),
            StoreBackend::DynamoDb { table_name } => {
                let store = DynamoDbStore::from_env(table_name.clone()).await;
                if create_table {
                    store.ensure_table().await?;
                }
                Arc::new(store)
            }
        };
        Self::new(config, store, Arc::new(SystemClock)).await
    }

    /// Loads the instance keys from the store, creating them on the first start.
    pub async fn new(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        let record = match store.instance_keys().await? {
            Some(record) => record,
            None => {
                let fresh = InstanceKeys::generate_record(clock.now_ms())?;
                // If another process raced us, the store answers its keys and we use those.
                store.create_instance_keys(fresh).await?
            }
        };
        let keys = InstanceKeys::from_record(&record)?;
        let client_tokens = ClientTokenKeys::new(&keys);
        let environment_json = crate::api::fapi::environment::document(&config);
        let secret_key_digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            config.secret_key.expose().as_bytes(),
        );
        let origin_verify_digest = config
            .origin_verify_secret
            .as_ref()
            .map(|s| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.expose().as_bytes()));
        Ok(Self {
            origin_verify_digest,
            config,
            store,
            clock,
            keys,
            client_tokens,
            environment_json,
            secret_key_digest,
            templates: Mutex::new(HashMap::new()),
        })
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
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, presented.as_bytes());
        aws_lc_rs::constant_time::verify_slices_are_equal(
            digest.as_ref(),
            self.secret_key_digest.as_ref(),
        )
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
