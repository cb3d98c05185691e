//! Where and on what a request was made, for a session's activity (`SessionActivity`):
//! browser, version and device from the User-Agent (woothee), the caller's address from
//! the transport, and, behind CloudFront (`ORIGIN_VERIFY_SECRET` set, so every request is
//! known to have come through it), the viewer's address, city and country from the headers
//! CloudFront adds. Without CloudFront no place is known: a GeoIP database is not kept.

use super::request::{ClientAddr, Request, RequestExt};
use crate::domain::SessionActivity;
use crate::state::AppState;
use crate::webhooks::RequestOrigin;

/// Longer User-Agent strings are cut before parsing (real ones are a few hundred bytes).
const MAX_USER_AGENT_BYTES: usize = 512;
/// Longer header values (a city) are not kept.
const MAX_PLACE_BYTES: usize = 128;

/// What `req` says about the device and place it came from.
pub fn of_request(state: &AppState, req: &Request) -> SessionActivity {
    let behind_cdn = state.config.origin_verify_secret.is_some();
    let header = |name: &str| {
        req.header_str(name)
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= MAX_PLACE_BYTES)
            .map(str::to_string)
    };
    let mut activity = SessionActivity {
        id: crate::ids::new_id("sessact"),
        ip_address: client_ip(state, req),
        city: behind_cdn
            .then(|| header("cloudfront-viewer-city"))
            .flatten(),
        country: behind_cdn
            .then(|| header("cloudfront-viewer-country"))
            .flatten(),
        ..SessionActivity::default()
    };
    if let Some(ua) = req.header_str("user-agent") {
        device(&mut activity, ua);
    }
    activity
}

/// The caller's address: the viewer's behind CloudFront, else the transport's.
fn client_ip(state: &AppState, req: &Request) -> Option<String> {
    let behind_cdn = state.config.origin_verify_secret.is_some();
    behind_cdn
        .then(|| req.header_str("cloudfront-viewer-address"))
        .flatten()
        .and_then(|a| viewer_ip(a.trim()))
        .or_else(|| {
            req.extensions()
                .get::<ClientAddr>()
                .map(|a| a.0.to_string())
        })
}

/// The request behind a change, as a webhook event names it (`http_request`): the
/// caller's address and User-Agent (cut as for parsing).
pub fn origin(state: &AppState, req: &Request) -> RequestOrigin {
    RequestOrigin {
        client_ip: client_ip(state, req).unwrap_or_default(),
        user_agent: cut(req.header_str("user-agent").unwrap_or_default()).to_string(),
    }
}

/// A User-Agent cut to [`MAX_USER_AGENT_BYTES`], on a character boundary.
fn cut(ua: &str) -> &str {
    let mut end = ua.len().min(MAX_USER_AGENT_BYTES);
    while !ua.is_char_boundary(end) {
        end -= 1;
    }
    &ua[..end]
}

/// `CloudFront-Viewer-Address` is `<ip>:<port>` (an IPv6 address unbracketed).
fn viewer_ip(value: &str) -> Option<String> {
    let (ip, _port) = value.rsplit_once(':')?;
    ip.parse::<std::net::IpAddr>().ok().map(|ip| ip.to_string())
}

/// Browser, version and device from a User-Agent string.
fn device(activity: &mut SessionActivity, ua: &str) {
    let Some(parsed) = woothee::parser::Parser::new().parse(cut(ua)) else {
        return;
    };
    let known =
        |v: &str| (!v.is_empty() && v != woothee::woothee::VALUE_UNKNOWN).then(|| v.to_string());
    activity.browser_name = known(parsed.name);
    activity.browser_version = known(parsed.version);
    activity.device_type = known(parsed.os);
    activity.is_mobile = matches!(parsed.category, "smartphone" | "mobilephone");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(ua: &str) -> SessionActivity {
        let mut a = SessionActivity::default();
        device(&mut a, ua);
        a
    }

    #[test]
    fn browsers_and_devices_are_read_from_the_user_agent() {
        let chrome = parsed("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36");
        assert_eq!(chrome.browser_name.as_deref(), Some("Chrome"));
        assert_eq!(chrome.browser_version.as_deref(), Some("131.0.0.0"));
        assert_eq!(chrome.device_type.as_deref(), Some("Mac OSX"));
        assert!(!chrome.is_mobile);
        let iphone = parsed("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1");
        assert_eq!(iphone.browser_name.as_deref(), Some("Safari"));
        assert_eq!(iphone.device_type.as_deref(), Some("iPhone"));
        assert!(iphone.is_mobile);
        // Nothing made up for what is not a browser.
        let node = parsed("node");
        assert_eq!(node.browser_name, None);
        assert!(!node.is_mobile);
        // A huge or odd string is cut, never a panic.
        let long = format!("Mozilla/5.0 {}é", "x".repeat(600));
        let _ = parsed(&long);
    }

    #[test]
    fn the_viewer_address_is_an_ip_and_a_port() {
        assert_eq!(
            viewer_ip("198.51.100.10:46532").as_deref(),
            Some("198.51.100.10")
        );
        assert_eq!(
            viewer_ip("2001:db8:3333:4444:5555:6666:7777:8888:46532").as_deref(),
            Some("2001:db8:3333:4444:5555:6666:7777:8888")
        );
        assert_eq!(viewer_ip("not an address"), None);
    }
}
