//! Webhook endpoints: where events go, which types each wants, and the secret each is
//! signed with. The secret is sealed like the keyring's material (KMS on AWS).

use serde::{Deserialize, Serialize};

use super::EventType;
use crate::clock::Millis;
use crate::keyring::Sealed;

/// How long the secret before a rotation still signs deliveries beside the new one, so
/// receivers can switch over without dropping any (as Svix does).
pub const PREVIOUS_SECRET_GRACE_MS: Millis = 24 * 3600 * 1000;
/// More endpoints than this is a configuration error, not a use.
pub const MAX_ENDPOINTS: usize = 20;
const MAX_URL_BYTES: usize = 2048;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    /// `ep_…`
    pub id: String,
    pub url: String,
    /// The types it receives; empty: all of them.
    pub events: Vec<EventType>,
    pub secret: Sealed,
    /// The secret before the last rotation, still signed with until `previous_until`.
    #[serde(default)]
    pub previous_secret: Option<Sealed>,
    #[serde(default)]
    pub previous_until: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub version: u64,
}

impl WebhookEndpoint {
    pub fn wants(&self, kind: EventType) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }

    /// Whether the secret before the last rotation still signs beside the current one
    /// at `now`.
    pub fn previous_signs(&self, now: Millis) -> bool {
        self.previous_secret.is_some() && self.previous_until.is_some_and(|until| now < until)
    }
}

/// An endpoint's URL: `https://`, or `http://` to a loopback host (a receiver on the same
/// machine, as in development). No credentials, no fragment.
pub fn parse_url(raw: &str) -> Result<String, &'static str> {
    if raw.len() > MAX_URL_BYTES {
        return Err("is too long");
    }
    let url = url::Url::parse(raw.trim()).map_err(|_| "is not a URL")?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err("has no host"),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err("must be https:// (or http:// to a loopback address)"),
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err("must not carry credentials or a fragment");
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_secret_signs_only_during_its_grace() {
        let sealed = Sealed::Plain {
            material: "a2V5".into(),
        };
        let mut e = WebhookEndpoint {
            id: "ep_1".into(),
            url: "https://hooks.example.com/".into(),
            events: Vec::new(),
            secret: sealed.clone(),
            previous_secret: None,
            previous_until: None,
            created_at: 0,
            updated_at: 0,
            version: 1,
        };
        assert!(!e.previous_signs(0));
        e.previous_secret = Some(sealed);
        e.previous_until = Some(1_000);
        assert!(e.previous_signs(999));
        assert!(!e.previous_signs(1_000));
    }

    #[test]
    fn urls_are_https_or_loopback_http() {
        assert!(parse_url("https://hooks.example.com/clerk").is_ok());
        assert!(parse_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(parse_url("http://localhost/hook").is_ok());
        assert!(parse_url("http://[::1]:8080/").is_ok());
        assert!(parse_url("http://hooks.example.com/").is_err());
        assert!(parse_url("ftp://hooks.example.com/").is_err());
        assert!(parse_url("https://user:pw@hooks.example.com/").is_err());
        assert!(parse_url("not a url").is_err());
    }
}
