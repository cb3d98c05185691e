//! Every setting the service reads, in one place. Lambda functions and the local server read
//! the same environment variables.

use crate::domain::SessionsPerClient;
use std::time::Duration;

/// A setting that is missing or cannot be used: the process does not start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing required setting {0}")]
    Missing(&'static str),
    #[error("invalid setting {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Where sessions are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreBackend {
    /// The embedded store: a SQLite database file, or (no file) in memory only.
    Embedded {
        data_file: Option<std::path::PathBuf>,
    },
    /// DynamoDB, one table.
    DynamoDb { table_name: String },
}

/// The Backend API secret key. Never printed by `Debug`, never logged.
#[derive(Clone)]
pub struct SecretKey(String);

impl SecretKey {
    pub fn parse(value: String) -> Result<Self, ConfigError> {
        if value.len() < 32 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::Invalid {
                name: "BACKEND_API_SECRET_KEY",
                reason: "must be at least 32 characters without whitespace".into(),
            });
        }
        Ok(Self(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

/// Whether the instance serves development browsers. Production is the default: the
/// dev-browser flow (`POST /v1/dev_browser`, `__clerk_db_jwt`) carries the client token in
/// URLs, which is fine on a developer's machine and a leak anywhere else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceType {
    Development,
    Production,
}

impl InstanceType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Production => "production",
        }
    }
}

/// Checks one `ALLOWED_ORIGINS` value: `scheme://host[:port]` with scheme http or https,
/// nothing else. Answers it lowercased, as browsers send it.
pub fn parse_origin(raw: &str) -> Result<String, String> {
    let value = raw.trim();
    let lower = value.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| format!("`{value}` is not an origin: it must start with https:// or http:// (`null` and `*` are never allowed)"))?;
    // A lone trailing slash is the root path, which browsers never send: drop it.
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !host.starts_with(['.', '-'])
        && !host.ends_with(['.', '-']);
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok_and(|n| n > 0)
    });
    if !host_ok || !port_ok {
        return Err(format!(
            "`{value}` is not an origin: expected scheme://host[:port], without a path, query, user or wildcard"
        ));
    }
    let scheme = if lower.starts_with("https://") {
        "https"
    } else {
        "http"
    };
    Ok(match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    })
}

#[derive(Clone, Debug)]
pub struct Config {
    /// The Frontend API URL: the `iss` of session tokens, and the origin that is always allowed.
    pub frontend_api_url: String,
    /// Browser origins allowed to call the Frontend API with credentials (exact match).
    pub allowed_origins: Vec<String>,
    pub session_max_lifetime: Duration,
    pub session_inactivity_timeout: Duration,
    /// How often a session's activity is written at most (docs/sessions.md, "Activity").
    pub session_activity_interval: Duration,
    pub session_token_lifetime: Duration,
    pub client_token_lifetime: Duration,
    /// How long a client that never signed in lives after its last use.
    pub anonymous_client_lifetime: Duration,
    pub instance_type: InstanceType,
    /// Only the Backend API function needs it (template.yaml gives it to no other); without
    /// it every Backend API call is refused.
    pub secret_key: Option<SecretKey>,
    /// How long a new signing key is published before it signs: the JWKS cache window of
    /// Clerk's verifiers (@clerk/backend caches `/v1/jwks` for 5 minutes). JWKS answers
    /// carry it as `Cache-Control: max-age`.
    pub jwks_cache_window: Duration,
    /// The KMS key that seals the keyring's private material (envelope encryption); unset,
    /// the embedded store's database seals it with its local key-encryption key.
    pub kms_key_id: Option<String>,
    /// `LOCAL_KEY_ENCRYPTION_KEY`: the embedded store's local key-encryption key (base64
    /// of 32 bytes); unset, the key file beside the database (`keyring::local_kek`).
    pub local_key_encryption_key: Option<SecretKey>,
    pub application_name: String,
    pub store: StoreBackend,
    /// Set when a CDN sits in front (template.yaml's EdgeRateLimiting): every request must
    /// carry it in `x-origin-verify`, so the API's own URL cannot bypass the CDN's limits.
    pub origin_verify_secret: Option<SecretKey>,
    pub webhooks: WebhookSettings,
    /// Clerk's `instance_id` in webhook events: `ins_` and a hash of the Frontend API URL,
    /// so it is stable for a deployment and needs no setting.
    pub instance_id: String,
    /// How many sessions one client may hold signed in (`SESSION_MODE`,
    /// `MAX_SESSIONS_PER_CLIENT`; docs/sessions.md, "Sessions per client").
    pub sessions_per_client: SessionsPerClient,
    /// How long start-up keeps retrying a store that is throttled or down before it gives
    /// up (`STARTUP_RETRY_SECONDS`): within Lambda's 10 s init phase by default.
    pub startup_retry: Duration,
    /// How one-time codes reach users by email (`EMAIL_DELIVERY`, `SMTP_URL`, `EMAIL_FROM`;
    /// docs/email.md).
    pub email: EmailSettings,
    /// What sign-up and sign-in offer (`auth_settings`, docs/sign-in.md).
    pub auth: crate::auth_settings::AuthSettings,
    cookies: CookieNames,
}

/// Webhooks (`WEBHOOKS`, `WEBHOOK_RETRY_SCHEDULE`, `WEBHOOK_ALLOW_LOOPBACK`): whether
/// changes record events, when a failed delivery is tried again, and whether endpoints may
/// be on this machine.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    pub enabled: bool,
    pub retry_schedule: crate::webhooks::RetrySchedule,
    /// Endpoints on a loopback address (`http://127.0.0.1:…`, `localhost`) are accepted
    /// and delivered to. Off unless set, on every instance type: a receiver on the
    /// service's own machine is a development setup, and elsewhere loopback reaches the
    /// host's own services (docs/webhooks.md, "Where deliveries may go").
    pub allow_loopback: bool,
}

/// Email delivery of one-time codes (`EMAIL_DELIVERY`, `SMTP_URL`, `EMAIL_FROM`): how
/// `email::Mailer` sends, and from whom (docs/email.md).
#[derive(Clone, Debug)]
pub struct EmailSettings {
    pub delivery: EmailDelivery,
    /// The sender (`EMAIL_FROM`): `My App <no-reply@example.com>` or a bare address.
    pub from: lettre::message::Mailbox,
}

/// How codes are delivered (`EMAIL_DELIVERY`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmailDelivery {
    /// An SMTP server (`SMTP_URL`).
    Smtp(SmtpUrl),
    /// Amazon SES (`SendEmail`), endpoint and credentials from the AWS environment.
    Ses,
    /// Printed on the process's standard error: development instances only.
    Console,
    /// Nothing configured (a production instance's default): codes cannot be sent.
    None,
}

impl EmailDelivery {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Smtp(_) => "smtp",
            Self::Ses => "ses",
            Self::Console => "console",
            Self::None => "none",
        }
    }
}

/// `SMTP_URL`: `smtp://[user:pass@]host[:port][?tls=required|opportunistic]` or
/// `smtps://…`, as lettre reads it. `Debug` shows neither the user nor the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl(String);

impl SmtpUrl {
    /// Checks what lettre will need (scheme, host, `tls` mode, credentials decodable)
    /// without opening anything. Errors never quote the URL, which may hold a password.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::Invalid {
            name: "SMTP_URL",
            reason: reason.to_string(),
        };
        let raw = raw.trim();
        let url = url::Url::parse(raw)
            .map_err(|_| invalid("expected smtp://[user:password@]host[:port] or smtps://…"))?;
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        match (url.scheme(), tls.as_deref()) {
            ("smtp", None | Some("required" | "opportunistic")) | ("smtps", None) => {}
            ("smtp" | "smtps", Some(_)) => {
                return Err(invalid(
                    "`tls` must be `required` or `opportunistic` (smtp:// only; smtps:// is always TLS)",
                ))
            }
            _ => return Err(invalid("the scheme must be smtp:// or smtps://")),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("the URL names no host"));
        }
        let decodes = |s: &str| percent_decode_utf8(s).is_some();
        if !decodes(url.username()) || !url.password().is_none_or(decodes) {
            return Err(invalid(
                "the user or password is not valid percent-encoded UTF-8",
            ));
        }
        if !url.username().is_empty() && url.password().is_none() {
            return Err(invalid(
                "a user without a password: write smtp://user:password@host (lettre sends no credentials otherwise)",
            ));
        }
        Ok(Self(raw.to_string()))
    }

    /// The URL itself, credentials included: for lettre only, never for a log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether every connection is encrypted: `smtps://` (TLS from the start) or
    /// `?tls=required` (STARTTLS, or no delivery).
    pub fn requires_tls(&self) -> bool {
        url::Url::parse(&self.0).is_ok_and(|url| {
            url.scheme() == "smtps"
                || url
                    .query_pairs()
                    .any(|(k, v)| k == "tls" && v == "required")
        })
    }

    /// Whether the URL carries a user and password.
    pub fn has_credentials(&self) -> bool {
        url::Url::parse(&self.0).is_ok_and(|url| url.password().is_some())
    }
}

fn percent_decode_utf8(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(url) => {
                let credentials = if url.username().is_empty() && url.password().is_none() {
                    ""
                } else {
                    "[redacted]@"
                };
                let host = url.host_str().unwrap_or_default();
                let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
                let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
                write!(
                    f,
                    "SmtpUrl({}://{credentials}{host}{port}{query})",
                    url.scheme()
                )
            }
            Err(_) => f.write_str("SmtpUrl([redacted])"),
        }
    }
}

/// The email settings: which delivery, and the sender it needs.
fn email_settings(
    get: impl Fn(&str) -> Option<String>,
    instance_type: InstanceType,
) -> Result<EmailSettings, ConfigError> {
    let smtp_url = get("SMTP_URL")
        .map(|raw| SmtpUrl::parse(&raw))
        .transpose()?;
    let delivery = match get("EMAIL_DELIVERY").as_deref().map(str::trim) {
        None => match smtp_url {
            Some(url) => EmailDelivery::Smtp(url),
            None if instance_type == InstanceType::Development => EmailDelivery::Console,
            None => EmailDelivery::None,
        },
        Some("smtp") => EmailDelivery::Smtp(smtp_url.ok_or(ConfigError::Missing("SMTP_URL"))?),
        Some("ses") => EmailDelivery::Ses,
        Some("console") if instance_type == InstanceType::Development => EmailDelivery::Console,
        Some("console") => {
            return Err(ConfigError::Invalid {
                name: "EMAIL_DELIVERY",
                reason: "`console` prints codes on standard error: development instances only \
                         (INSTANCE_TYPE=development)"
                    .into(),
            })
        }
        Some("none") => EmailDelivery::None,
        Some(_) => {
            return Err(ConfigError::Invalid {
                name: "EMAIL_DELIVERY",
                reason: "expected `smtp`, `ses`, `console` or `none`".into(),
            })
        }
    };
    let from = match get("EMAIL_FROM") {
        Some(raw) => raw
            .trim()
            .parse::<lettre::message::Mailbox>()
            .map_err(|err| ConfigError::Invalid {
                name: "EMAIL_FROM",
                reason: format!("expected an address or `Name <address>` ({err})"),
            })?,
        None => match delivery {
            EmailDelivery::Smtp(_) | EmailDelivery::Ses => {
                return Err(ConfigError::Missing("EMAIL_FROM"))
            }
            EmailDelivery::Console | EmailDelivery::None => lettre::message::Mailbox::new(
                None,
                lettre::Address::new("no-reply", "localhost").map_err(|err| {
                    ConfigError::Invalid {
                        name: "EMAIL_FROM",
                        reason: err.to_string(),
                    }
                })?,
            ),
        },
    };
    Ok(EmailSettings { delivery, from })
}

/// `ins_` and 128 bits of the SHA-256 of the Frontend API URL, in the ids' alphabet.
fn instance_id(frontend_api_url: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, frontend_api_url.as_bytes());
    crate::ids::prefixed("ins", &digest.as_ref()[..16])
}

/// The activity interval: by default an hour, or a tenth of a shorter inactivity timeout.
/// It must stay under half the timeout, so a session in use is never abandoned because its
/// activity was recorded late.
fn activity_interval(raw: Option<String>, inactivity: Duration) -> Result<Duration, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Duration::from_secs(3600).min(inactivity / 10));
    };
    match raw.trim().parse::<u64>() {
        Ok(v) if Duration::from_secs(v) < inactivity / 2 => Ok(Duration::from_secs(v)),
        _ => Err(ConfigError::Invalid {
            name: "SESSION_ACTIVITY_INTERVAL_SECONDS",
            reason: format!(
                "expected whole seconds from 0 to under half of the inactivity timeout ({} s)",
                inactivity.as_secs()
            ),
        }),
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can pass a map instead of the environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let seconds = |name: &'static str,
                       default: u64,
                       min: u64|
         -> Result<Duration, ConfigError> {
            match get(name) {
                None => Ok(Duration::from_secs(default)),
                Some(raw) => match raw.trim().parse::<u64>() {
                    Ok(v) if v >= min && v <= 10 * 365 * 24 * 3600 => Ok(Duration::from_secs(v)),
                    _ => Err(ConfigError::Invalid {
                        name,
                        reason: format!("expected whole seconds from {min} to 315360000"),
                    }),
                },
            }
        };

        let frontend_api_url = get("FRONTEND_API_URL")
            .ok_or(ConfigError::Missing("FRONTEND_API_URL"))?
            .trim()
            .trim_end_matches('/')
            .to_string();
        if !(frontend_api_url.starts_with("https://") || frontend_api_url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: "FRONTEND_API_URL",
                reason: "must start with https:// or http://".into(),
            });
        }
        let allowed_origins = get("ALLOWED_ORIGINS")
            .map(|raw| {
                raw.split(',')
                    .filter(|o| !o.trim().is_empty())
                    .map(parse_origin)
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
            .map_err(|reason| ConfigError::Invalid {
                name: "ALLOWED_ORIGINS",
                reason,
            })?
            .unwrap_or_default();
        let instance_type = match get("INSTANCE_TYPE").as_deref().map(str::trim) {
            None | Some("production") => InstanceType::Production,
            Some("development") => InstanceType::Development,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: "INSTANCE_TYPE",
                    reason: "expected `production` or `development`".into(),
                })
            }
        };
        let secret_key = get("BACKEND_API_SECRET_KEY")
            .map(SecretKey::parse)
            .transpose()?;
        let jwks_cache_window = match get("JWKS_CACHE_WINDOW_SECONDS") {
            None => Duration::from_secs(300),
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(v) if v <= 86_400 => Duration::from_secs(v),
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "JWKS_CACHE_WINDOW_SECONDS",
                        reason: "expected whole seconds from 0 to 86400".into(),
                    })
                }
            },
        };
        let store = match get("STORE_BACKEND").as_deref().unwrap_or("embedded") {
            "embedded" => StoreBackend::Embedded {
                data_file: get("EMBEDDED_STORE_PATH").map(Into::into),
            },
            "dynamodb" => StoreBackend::DynamoDb {
                table_name: get("DYNAMODB_TABLE_NAME")
                    .ok_or(ConfigError::Missing("DYNAMODB_TABLE_NAME"))?,
            },
            _ => {
                return Err(ConfigError::Invalid {
                    name: "STORE_BACKEND",
                    reason: "expected `embedded` or `dynamodb`".into(),
                })
            }
        };

        let session_inactivity_timeout =
            seconds("SESSION_INACTIVITY_TIMEOUT_SECONDS", 30 * 24 * 3600, 60)?;
        let session_activity_interval = activity_interval(
            get("SESSION_ACTIVITY_INTERVAL_SECONDS"),
            session_inactivity_timeout,
        )?;

        // On by default on the embedded store (an event no endpoint wants is dropped
        // at once); off by default on DynamoDB, where each event is an item written
        // (template.yaml sets it from its `Webhooks` parameter).
        let webhooks_enabled = match get("WEBHOOKS").as_deref().map(str::trim) {
            None => matches!(store, StoreBackend::Embedded { .. }),
            Some("on" | "true") => true,
            Some("off" | "false") => false,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: "WEBHOOKS",
                    reason: "expected `on` or `off`".into(),
                })
            }
        };

        let sessions_per_client = match get("SESSION_MODE").as_deref().map(str::trim) {
            Some("single") => SessionsPerClient::Single,
            None | Some("multi") => SessionsPerClient::Multi {
                max: match get("MAX_SESSIONS_PER_CLIENT") {
                    None => SessionsPerClient::DEFAULT_MAX,
                    Some(raw) => match raw.trim().parse::<usize>() {
                        Ok(v) if (1..=SessionsPerClient::LARGEST_MAX).contains(&v) => v,
                        _ => {
                            return Err(ConfigError::Invalid {
                                name: "MAX_SESSIONS_PER_CLIENT",
                                reason: format!(
                                    "expected a whole number from 1 to {}",
                                    SessionsPerClient::LARGEST_MAX
                                ),
                            })
                        }
                    },
                },
            },
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: "SESSION_MODE",
                    reason: "expected `multi` or `single`".into(),
                })
            }
        };

        let allow_loopback = match get("WEBHOOK_ALLOW_LOOPBACK").as_deref().map(str::trim) {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: "WEBHOOK_ALLOW_LOOPBACK",
                    reason: "expected `true` or `false`".into(),
                })
            }
        };

        let email = email_settings(get, instance_type)?;

        Ok(Self {
            email,
            auth: crate::auth_settings::AuthSettings::from_lookup(&get).map_err(|e| {
                ConfigError::Invalid {
                    name: e.name,
                    reason: e.reason,
                }
            })?,
            startup_retry: match get("STARTUP_RETRY_SECONDS") {
                None => Duration::from_secs(8),
                Some(raw) => match raw.trim().parse::<u64>() {
                    Ok(v) if v <= 600 => Duration::from_secs(v),
                    _ => {
                        return Err(ConfigError::Invalid {
                            name: "STARTUP_RETRY_SECONDS",
                            reason: "expected whole seconds from 0 to 600".into(),
                        })
                    }
                },
            },
            sessions_per_client,
            allowed_origins,
            session_max_lifetime: seconds("SESSION_MAX_LIFETIME_SECONDS", 7 * 24 * 3600, 60)?,
            session_inactivity_timeout,
            session_activity_interval,
            session_token_lifetime: seconds("SESSION_TOKEN_LIFETIME_SECONDS", 60, 30)?,
            client_token_lifetime: seconds("CLIENT_TOKEN_LIFETIME_SECONDS", 365 * 24 * 3600, 3600)?,
            anonymous_client_lifetime: seconds("ANONYMOUS_CLIENT_LIFETIME_SECONDS", 24 * 3600, 60)?,
            instance_type,
            secret_key,
            jwks_cache_window,
            kms_key_id: get("KEY_ENCRYPTION_KMS_KEY_ID").map(|v| v.trim().to_string()),
            local_key_encryption_key: get(crate::keyring::local_kek::ENV)
                .map(|v| {
                    use base64::Engine;
                    let v = v.trim().to_string();
                    match base64::engine::general_purpose::STANDARD.decode(&v) {
                        Ok(bytes) if bytes.len() == 32 => Ok(SecretKey(v)),
                        _ => Err(ConfigError::Invalid {
                            name: crate::keyring::local_kek::ENV,
                            reason: "must be the base64 of 32 bytes (`openssl rand -base64 32`)"
                                .into(),
                        }),
                    }
                })
                .transpose()?,
            application_name: get("APPLICATION_NAME").unwrap_or_else(|| "Session service".into()),
            store,
            origin_verify_secret: get("ORIGIN_VERIFY_SECRET")
                .map(|v| match SecretKey::parse(v) {
                    Ok(key) => Ok(key),
                    Err(_) => Err(ConfigError::Invalid {
                        name: "ORIGIN_VERIFY_SECRET",
                        reason: "must be at least 32 characters without whitespace".into(),
                    }),
                })
                .transpose()?,
            webhooks: WebhookSettings {
                enabled: webhooks_enabled,
                retry_schedule: get("WEBHOOK_RETRY_SCHEDULE")
                    .map(|raw| crate::webhooks::RetrySchedule::parse(&raw))
                    .transpose()
                    .map_err(|reason| ConfigError::Invalid {
                        name: "WEBHOOK_RETRY_SCHEDULE",
                        reason,
                    })?
                    .unwrap_or_default(),
                allow_loopback,
            },
            instance_id: instance_id(&frontend_api_url),
            frontend_api_url,
            cookies: CookieNames::default(),
        }
        .with_cookie_names())
    }

    /// Works out once what every browser answer's cookies need.
    fn with_cookie_names(mut self) -> Self {
        let url = url::Url::parse(self.frontend_api_origin()).ok();
        self.cookies = CookieNames {
            domain: url
                .as_ref()
                .and_then(|u| u.host_str())
                .and_then(registrable_domain),
            suffix: suffix_of(&self.publishable_key()),
        };
        self
    }

    /// How often a process re-reads the keyring: well within the JWKS cache window, so
    /// every process knows a new key before it starts signing.
    pub fn keyring_refresh_interval(&self) -> Duration {
        (self.jwks_cache_window / 2).clamp(Duration::from_secs(1), Duration::from_secs(60))
    }

    /// Secure cookies whenever the service is reached over https.
    pub fn secure_cookies(&self) -> bool {
        self.frontend_api_url.starts_with("https://")
    }

    /// The origin of the Frontend API itself, which is always allowed.
    pub fn frontend_api_origin(&self) -> &str {
        // An origin is scheme://host[:port]; the configured URL may carry a path.
        let after_scheme = self.frontend_api_url.find("://").map_or(0, |i| i + 3);
        match self.frontend_api_url[after_scheme..].find('/') {
            Some(i) => &self.frontend_api_url[..after_scheme + i],
            None => &self.frontend_api_url,
        }
    }

    /// Whether dev-browser tokens are served (development instances only).
    pub fn dev_browser_enabled(&self) -> bool {
        self.instance_type == InstanceType::Development
    }

    pub fn origin_allowed(&self, origin: &str) -> bool {
        origin == self.frontend_api_origin() || self.allowed_origins.iter().any(|o| o == origin)
    }

    /// The publishable key that names this Frontend API, in Clerk's form: `pk_live_` (or
    /// `pk_test_` on a development instance) and the standard base64 of `<host[:port]>$`.
    /// Apps give it to clerk-js and to Clerk's server SDKs, which derive their cookie
    /// suffix from it (see [`Config::cookie_suffix`]).
    pub fn publishable_key(&self) -> String {
        use base64::Engine;
        let origin = self.frontend_api_origin();
        let host = origin.find("://").map_or(origin, |i| &origin[i + 3..]);
        let prefix = match self.instance_type {
            InstanceType::Production => "pk_live_",
            InstanceType::Development => "pk_test_",
        };
        format!(
            "{prefix}{}",
            base64::engine::general_purpose::STANDARD.encode(format!("{host}$"))
        )
    }

    /// The domain Clerk's `__client_uat` cookie is set on: the registrable domain of the
    /// Frontend API's host (`clerk.example.com` → `example.com`), so that the app's own
    /// servers on that site read it; none where the host can only have host-only cookies.
    pub fn cookie_domain(&self) -> Option<&str> {
        self.cookies.domain.as_deref()
    }

    /// The suffix Clerk's SDKs add to cookie names (`__session_<suffix>`) so that apps of
    /// several instances on one domain keep apart: the first 8 characters of the base64url
    /// SHA-1 of the publishable key (clerk-js and @clerk/backend compute it the same way).
    pub fn cookie_suffix(&self) -> &str {
        &self.cookies.suffix
    }
}

/// Derived from the Frontend API URL once, at load ([`Config::cookie_domain`],
/// [`Config::cookie_suffix`]): every browser answer sets cookies with them.
#[derive(Clone, Debug, Default)]
struct CookieNames {
    domain: Option<String>,
    suffix: String,
}

/// Clerk's cookie suffix for a publishable key: the first 8 characters of the base64url
/// SHA-1 of its text.
fn suffix_of(publishable_key: &str) -> String {
    use base64::Engine;
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        publishable_key.as_bytes(),
    );
    let mut suffix = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
    suffix.truncate(8);
    suffix
}

/// The registrable domain of `host` (`app.example.com` → `example.com`, by the public
/// suffix list), where clerk-js keeps `__client_uat`; none for IP addresses, `localhost`
/// and other single labels, where cookies can only be host-only.
pub fn registrable_domain(host: &str) -> Option<String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() || !host.contains('.') {
        return None;
    }
    psl::domain_str(host).map(str::to_string)
}

/// The local server's own protections. On AWS, API Gateway holds connections and reads
/// requests; locally the server does, so it bounds what one caller can hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalServerConfig {
    /// A request's head must arrive within this, counted from when the server starts
    /// waiting for it, so it also closes kept-alive connections left idle.
    pub header_read_timeout: Duration,
    /// A request body must arrive within this; past it the answer is 408.
    pub body_read_timeout: Duration,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// How long shutdown waits for in-flight requests before it gives up on them.
    pub shutdown_grace: Duration,
}

impl LocalServerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let number = |name: &'static str, default: u64, max: u64| -> Result<u64, ConfigError> {
            match lookup(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(raw) => match raw.trim().parse::<u64>() {
                    Ok(v) if (1..=max).contains(&v) => Ok(v),
                    _ => Err(ConfigError::Invalid {
                        name,
                        reason: format!("expected a whole number from 1 to {max}"),
                    }),
                },
            }
        };
        Ok(Self {
            header_read_timeout: Duration::from_secs(number(
                "LOCAL_HEADER_READ_TIMEOUT_SECONDS",
                10,
                3600,
            )?),
            body_read_timeout: Duration::from_secs(number(
                "LOCAL_BODY_READ_TIMEOUT_SECONDS",
                30,
                3600,
            )?),
            max_connections: number("LOCAL_MAX_CONNECTIONS", 512, 100_000)? as usize,
            shutdown_grace: Duration::from_secs(number("LOCAL_SHUTDOWN_GRACE_SECONDS", 30, 3600)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const BASE: [(&str, &str); 2] = [
        ("FRONTEND_API_URL", "https://clerk.example.com/"),
        (
            "BACKEND_API_SECRET_KEY",
            "sk_test_0123456789abcdef0123456789",
        ),
    ];

    #[test]
    fn the_publishable_key_suffix_and_cookie_domain_follow_the_frontend_api() {
        let c = config(&BASE).unwrap();
        // As Clerk's SDKs compute them (checked against @clerk/shared's getCookieSuffix).
        assert_eq!(c.publishable_key(), "pk_live_Y2xlcmsuZXhhbXBsZS5jb20k");
        assert_eq!(c.cookie_suffix(), "naoXFJnI");
        assert_eq!(c.cookie_domain(), Some("example.com"));
        let mut dev = BASE.to_vec();
        dev[0] = ("FRONTEND_API_URL", "https://suite.clerk.accounts.dev");
        dev.push(("INSTANCE_TYPE", "development"));
        let dev = config(&dev).unwrap();
        assert_eq!(
            dev.publishable_key(),
            "pk_test_c3VpdGUuY2xlcmsuYWNjb3VudHMuZGV2JA=="
        );
        assert_eq!(dev.cookie_suffix(), "01Kqtofs");
        for (url, domain) in [
            ("http://127.0.0.1:3000", None),
            ("http://localhost:3000", None),
            ("https://clerk.example.co.uk:8443", Some("example.co.uk")),
            ("https://app.example.test/__clerk", Some("example.test")),
        ] {
            let mut pairs = BASE.to_vec();
            pairs[0] = ("FRONTEND_API_URL", url);
            assert_eq!(config(&pairs).unwrap().cookie_domain(), domain, "{url}");
        }
        for host in ["localhost", "127.0.0.1", "[::1]", "com"] {
            assert_eq!(registrable_domain(host), None, "{host}");
        }
        assert_eq!(
            registrable_domain("a.b.example.co.uk").as_deref(),
            Some("example.co.uk")
        );
    }

    #[test]
    fn defaults_follow_clerk() {
        let c = config(&BASE).unwrap();
        assert_eq!(c.frontend_api_url, "https://clerk.example.com");
        assert_eq!(c.session_max_lifetime, Duration::from_secs(604_800));
        assert_eq!(c.session_inactivity_timeout, Duration::from_secs(2_592_000));
        assert_eq!(c.session_token_lifetime, Duration::from_secs(60));
        assert_eq!(c.session_activity_interval, Duration::from_secs(3600));
        assert!(c.secure_cookies());
        assert!(c.origin_allowed("https://clerk.example.com"));
        assert!(!c.origin_allowed("https://evil.example"));
        assert_eq!(c.store, StoreBackend::Embedded { data_file: None });
        assert_eq!(c.jwks_cache_window, Duration::from_secs(300));
        assert_eq!(c.keyring_refresh_interval(), Duration::from_secs(60));
        assert_eq!(c.kms_key_id, None);
    }

    #[test]
    fn rejects_bad_values() {
        assert!(config(&[]).is_err());
        // Only the Backend API needs the secret key.
        assert!(config(&BASE[..1]).unwrap().secret_key.is_none());
        for window in ["-1", "86401", "soon"] {
            let mut bad = BASE.to_vec();
            bad.push(("JWKS_CACHE_WINDOW_SECONDS", window));
            assert!(config(&bad).is_err(), "{window}");
        }
        let mut bad = BASE.to_vec();
        bad.push(("SESSION_TOKEN_LIFETIME_SECONDS", "abc"));
        assert!(config(&bad).is_err());
        let short = [BASE[0], ("BACKEND_API_SECRET_KEY", "short")];
        assert!(config(&short).is_err());
        assert!(!format!("{:?}", config(&BASE).unwrap()).contains("sk_test"));
    }

    #[test]
    fn activity_interval_stays_under_half_the_inactivity_timeout() {
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut all = BASE.to_vec();
            all.extend_from_slice(pairs);
            config(&all).map(|c| c.session_activity_interval.as_secs())
        };
        assert_eq!(
            with(&[("SESSION_INACTIVITY_TIMEOUT_SECONDS", "600")]).unwrap(),
            60
        );
        assert_eq!(
            with(&[("SESSION_ACTIVITY_INTERVAL_SECONDS", "0")]).unwrap(),
            0
        );
        assert!(with(&[
            ("SESSION_INACTIVITY_TIMEOUT_SECONDS", "600"),
            ("SESSION_ACTIVITY_INTERVAL_SECONDS", "300")
        ])
        .is_err());
        assert!(with(&[("SESSION_ACTIVITY_INTERVAL_SECONDS", "soon")]).is_err());
    }

    #[test]
    fn local_server_settings_have_defaults_and_bounds() {
        let c = LocalServerConfig::from_lookup(|_| None).unwrap();
        assert_eq!(c.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.max_connections, 512);
        let zero = LocalServerConfig::from_lookup(|k| {
            (k == "LOCAL_MAX_CONNECTIONS").then(|| "0".to_string())
        });
        assert!(zero.is_err());
    }

    #[test]
    fn production_is_the_default_instance_type() {
        assert_eq!(
            config(&BASE).unwrap().instance_type,
            InstanceType::Production
        );
        let mut dev = BASE.to_vec();
        dev.push(("INSTANCE_TYPE", "development"));
        assert!(config(&dev).unwrap().dev_browser_enabled());
        let mut bad = BASE.to_vec();
        bad.push(("INSTANCE_TYPE", "staging"));
        assert!(config(&bad).is_err());
    }

    #[test]
    fn webhook_loopback_is_allowed_only_when_set() {
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = BASE.to_vec();
            pairs.extend_from_slice(extra);
            config(&pairs).map(|c| c.webhooks.allow_loopback)
        };
        assert!(!with(&[]).unwrap());
        // A development instance does not turn it on by itself.
        assert!(!with(&[("INSTANCE_TYPE", "development")]).unwrap());
        assert!(with(&[("WEBHOOK_ALLOW_LOOPBACK", "true")]).unwrap());
        assert!(!with(&[("WEBHOOK_ALLOW_LOOPBACK", "false")]).unwrap());
        assert!(with(&[("WEBHOOK_ALLOW_LOOPBACK", "yes")]).is_err());
    }

    #[test]
    fn email_delivery_follows_the_instance_type_and_smtp_url() {
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = BASE.to_vec();
            pairs.extend_from_slice(extra);
            config(&pairs).map(|c| c.email)
        };
        let dev = ("INSTANCE_TYPE", "development");
        let from = ("EMAIL_FROM", "My App <no-reply@example.com>");
        let smtp = ("SMTP_URL", "smtps://mailer:s3cr%2Ft@smtp.example.com:465");

        // Unset: nothing on production, the console on development.
        assert_eq!(with(&[]).unwrap().delivery, EmailDelivery::None);
        let console = with(&[dev]).unwrap();
        assert_eq!(console.delivery, EmailDelivery::Console);
        assert_eq!(console.from.to_string(), "no-reply@localhost");
        // SMTP_URL alone chooses SMTP, on either instance type.
        for extra in [&[smtp, from][..], &[smtp, from, dev][..]] {
            let s = with(extra).unwrap();
            assert_eq!(s.delivery.as_str(), "smtp");
            assert_eq!(s.from.to_string(), "My App <no-reply@example.com>");
        }
        assert_eq!(
            with(&[("EMAIL_DELIVERY", "ses"), from]).unwrap().delivery,
            EmailDelivery::Ses
        );
        assert_eq!(
            with(&[("EMAIL_DELIVERY", "none"), smtp, dev])
                .unwrap()
                .delivery,
            EmailDelivery::None
        );
        let bare = with(&[
            ("EMAIL_DELIVERY", "ses"),
            ("EMAIL_FROM", "codes@example.com"),
        ]);
        assert_eq!(bare.unwrap().from.email.to_string(), "codes@example.com");

        let refused = |extra: &[(&'static str, &'static str)], name: &str| {
            let err = with(extra).expect_err(name).to_string();
            assert!(err.contains(name), "{err}");
            // No error ever quotes the URL's password.
            assert!(!err.contains("s3cr"), "{err}");
        };
        // The console prints codes: never on production.
        refused(&[("EMAIL_DELIVERY", "console")], "EMAIL_DELIVERY");
        refused(&[("EMAIL_DELIVERY", "smtp"), from], "SMTP_URL");
        refused(&[("EMAIL_DELIVERY", "postcard")], "EMAIL_DELIVERY");
        // SMTP and SES need a sender; a bad one is refused on every delivery.
        refused(&[smtp], "EMAIL_FROM");
        refused(&[("EMAIL_DELIVERY", "ses")], "EMAIL_FROM");
        for bad in ["no-reply", "My App <no-reply>", "a@b@c", "<>"] {
            refused(&[smtp, ("EMAIL_FROM", bad)], "EMAIL_FROM");
            refused(&[dev, ("EMAIL_FROM", bad)], "EMAIL_FROM");
        }
        for bad in [
            "http://smtp.example.com",
            "smtp://",
            "smtp://smtp.example.com?tls=always",
            "smtps://smtp.example.com?tls=required",
            "smtp://user@smtp.example.com",
            "smtp://user:%ff@smtp.example.com",
            "not a url s3cr",
        ] {
            refused(&[("SMTP_URL", bad), from], "SMTP_URL");
        }
        for ok in [
            "smtp://127.0.0.1:2525",
            "smtp://smtp.example.com:587?tls=required",
            "smtp://smtp.example.com?tls=opportunistic",
            "smtps://smtp.example.com",
        ] {
            assert!(with(&[("SMTP_URL", ok), from]).is_ok(), "{ok}");
        }
    }

    #[test]
    fn the_smtp_password_is_never_printed() {
        let url = SmtpUrl::parse("smtps://mailer:s3cr%2Ft@smtp.example.com:465").unwrap();
        assert_eq!(
            format!("{url:?}"),
            "SmtpUrl(smtps://[redacted]@smtp.example.com:465)"
        );
        assert!(url.requires_tls() && url.has_credentials());
        let plain = SmtpUrl::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(format!("{plain:?}"), "SmtpUrl(smtp://127.0.0.1:2525)");
        assert!(!plain.requires_tls() && !plain.has_credentials());
        let starttls = SmtpUrl::parse("smtp://u:p@smtp.example.com?tls=required").unwrap();
        assert!(starttls.requires_tls());

        let mut pairs = BASE.to_vec();
        pairs.push(("SMTP_URL", "smtps://mailer:s3cr%2Ft@smtp.example.com:465"));
        pairs.push(("EMAIL_FROM", "no-reply@example.com"));
        let printed = format!("{:?}", config(&pairs).unwrap());
        assert!(printed.contains("smtp.example.com"), "{printed}");
        assert!(
            !printed.contains("s3cr") && !printed.contains("mailer"),
            "{printed}"
        );
    }

    #[test]
    fn allowed_origins_take_scheme_host_and_port_only() {
        let with = |origins: &str| {
            let mut pairs = BASE.to_vec();
            pairs.push(("ALLOWED_ORIGINS", origins));
            config(&pairs)
        };
        let ok = with("https://App.example.com/, http://localhost:5173").unwrap();
        assert_eq!(
            ok.allowed_origins,
            ["https://app.example.com", "http://localhost:5173"]
        );
        for bad in [
            "null",
            "*",
            "https://*.example.com",
            "https://app.example.com/path",
            "https://app.example.com?x=1",
            "https://user@app.example.com",
            "ftp://app.example.com",
            "https://app.example.com:0",
            "https://app.example.com:99999",
            "app.example.com",
            "https://",
        ] {
            let err = with(bad).expect_err(bad).to_string();
            assert!(err.contains("ALLOWED_ORIGINS"), "{bad}: {err}");
        }
    }
}
