//! Webhook endpoints: where events go, which types each wants, and the secret each is
//! signed with. The secret is sealed like the keyring's material (KMS on AWS).

use serde::{Deserialize, Serialize};

use super::{address, EventType};
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

/// An endpoint's URL: `https://` to a public host, or, with `allow_loopback`
/// (`WEBHOOK_ALLOW_LOOPBACK=true`), `http://` or `https://` to a loopback host (a receiver
/// on the same machine, as in development). No credentials, no fragment. An IP literal
/// in a private, link-local, loopback or other non-public range is refused here; a name
/// is resolved and its addresses checked when a delivery connects (DNS may change, so
/// that check is the one that holds: `super::address`).
pub fn parse_url(raw: &str, allow_loopback: bool) -> Result<String, String> {
    if raw.len() > MAX_URL_BYTES {
        return Err("is too long".into());
    }
    let url = url::Url::parse(raw.trim()).map_err(|_| "is not a URL".to_string())?;
    let refused = match url.host() {
        Some(url::Host::Domain(d)) if address::is_loopback_name(d) => {
            (!allow_loopback).then_some(address::LOOPBACK)
        }
        Some(url::Host::Domain(_)) => None,
        Some(url::Host::Ipv4(ip)) => address::refusal(ip.into(), allow_loopback),
        Some(url::Host::Ipv6(ip)) => address::refusal(ip.into(), allow_loopback),
        None => return Err("has no host".into()),
    };
    if let Some(why) = refused {
        return Err(if why == address::LOOPBACK {
            "must not be a loopback address (WEBHOOK_ALLOW_LOOPBACK=true allows a receiver on this machine)".into()
        } else {
            format!("must be a public address, not {why}")
        });
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => address::is_loopback_name(d),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err("must be https:// (or http:// to a loopback address)".into()),
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err("must not carry credentials or a fragment".into());
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
        let allowed = |url| parse_url(url, true);
        assert!(parse_url("https://hooks.example.com/clerk", false).is_ok());
        assert!(allowed("http://127.0.0.1:9000/hook").is_ok());
        assert!(allowed("http://localhost/hook").is_ok());
        assert!(allowed("http://[::1]:8080/").is_ok());
        assert!(allowed("https://localhost./hook").is_ok());
        assert!(allowed("http://hooks.example.com/").is_err());
        assert!(allowed("ftp://hooks.example.com/").is_err());
        assert!(allowed("https://user:pw@hooks.example.com/").is_err());
        assert!(allowed("not a url").is_err());
    }

    #[test]
    fn loopback_urls_need_the_allowance() {
        for url in [
            "http://127.0.0.1:9000/hook",
            "https://127.0.0.1/hook",
            "http://localhost/hook",
            "https://LOCALHOST./hook",
            "https://app.localhost/hook",
            "http://[::1]:8080/",
            "https://[::ffff:127.0.0.1]/",
            // Other spellings of 127.0.0.1, as URL parsers read them.
            "https://2130706433/",
            "https://0x7f.1/",
        ] {
            let err = parse_url(url, false).unwrap_err();
            assert!(err.contains("loopback"), "{url}: {err}");
        }
    }

    #[test]
    fn private_and_metadata_addresses_are_refused_even_with_the_allowance() {
        for url in [
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.1/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://0.0.0.0/",
            "https://[fd00:ec2::254]/",
            "https://100.64.0.1/",
            "https://[::ffff:169.254.169.254]/",
            "https://[fe80::1]/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
            "https://192.0.2.1/",
            "https://[2001:db8::1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[2002:a00:1::]/",
            "http://10.0.0.1/",
        ] {
            for allow_loopback in [false, true] {
                let err = parse_url(url, allow_loopback).unwrap_err();
                assert!(err.starts_with("must be a public address"), "{url}: {err}");
            }
        }
    }
}
