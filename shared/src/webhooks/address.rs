//! Where deliveries may go: public addresses only. An endpoint's URL is chosen by whoever
//! holds the secret key, yet the delivering process sits inside the deployment's network,
//! so a URL must not turn it into a way in (cloud metadata at 169.254.169.254, private
//! services, the process's own host). Checked twice: an IP literal when the endpoint is
//! created ([`super::parse_url`]), and every address a name resolves to when a delivery
//! connects ([`CheckedConnector`]), which then connects only to those checked addresses.
//! Loopback is allowed only with `WEBHOOK_ALLOW_LOOPBACK=true` (a receiver on the same
//! machine, in development and the tests).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;

/// Why an address is refused: the kind of range it is in, for the error and the log.
pub fn refusal(ip: IpAddr, allow_loopback: bool) -> Option<&'static str> {
    let why = match ip {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => v6_range(v6),
    }?;
    (!(allow_loopback && why == LOOPBACK)).then_some(why)
}

/// The one range `WEBHOOK_ALLOW_LOOPBACK=true` lets through.
pub const LOOPBACK: &str = "a loopback address";

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, ..) => "an unspecified address (0.0.0.0/8)",
        (127, ..) => LOOPBACK,
        (10, ..) | (192, 168, _) => "a private address",
        (172, b, _) if b & 0xf0 == 16 => "a private address",
        (100, b, _) if b & 0xc0 == 64 => "a shared (carrier-grade NAT) address",
        (169, 254, _) => "a link-local address",
        (192, 0, 0) => "an IETF protocol address (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (198, b, _) if b & 0xfe == 18 => "a benchmarking address",
        (224..=239, ..) => "a multicast address",
        (240..=255, ..) => "a reserved or broadcast address",
        _ => return None,
    })
}

fn v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip.is_unspecified() {
        return Some("an unspecified address (::)");
    }
    if ip.is_loopback() {
        return Some(LOOPBACK);
    }
    // Forms that carry an IPv4 address reach it: judged by that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_range(v4);
    }
    if s[..6] == [0; 6] {
        // IPv4-compatible (::a.b.c.d, deprecated).
        return v4_range(embedded_v4(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64's well-known prefix.
        return v4_range(embedded_v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        // 6to4.
        return v4_range(embedded_v4(s[1], s[2]));
    }
    Some(match s[0] {
        0x64 if s[1] == 0xff9b && s[2] == 1 => "a local-use NAT64 address (64:ff9b:1::/48)",
        0x100 if s[1..4] == [0, 0, 0] => "a discard-only address (100::/64)",
        0x2001 if s[1] < 0x200 => "an IETF protocol address (2001::/23, Teredo included)",
        0x2001 if s[1] == 0xdb8 => "a documentation address",
        0x3fff if s[1] < 0x1000 => "a documentation address",
        x if x & 0xfe00 == 0xfc00 => "a unique-local address (fc00::/7)",
        x if x & 0xffc0 == 0xfe80 => "a link-local address",
        x if x & 0xffc0 == 0xfec0 => "a site-local address",
        x if x & 0xff00 == 0xff00 => "a multicast address",
        _ => return None,
    })
}

/// Whether a host name stands for this machine whatever DNS says (RFC 6761).
pub fn is_loopback_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A refused address, as the connection's error: names the range, never the URL (whose
/// path or query may carry a receiver's token).
#[derive(Debug, thiserror::Error)]
#[error("address {ip} refused: {why}")]
pub struct Refused {
    ip: IpAddr,
    why: &'static str,
}

/// Resolves a name, and answers its addresses only when every one of them is allowed: a
/// name that also points inward is refused whole.
#[derive(Clone)]
pub struct CheckedResolver {
    allow_loopback: bool,
}

impl tower_service::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            check_all(&addrs, allow_loopback)?;
            Ok(addrs.into_iter())
        })
    }
}

fn check_all(addrs: &[SocketAddr], allow_loopback: bool) -> Result<(), Refused> {
    for addr in addrs {
        if let Some(why) = refusal(addr.ip(), allow_loopback) {
            return Err(Refused { ip: addr.ip(), why });
        }
    }
    Ok(())
}

/// The TCP connector of deliveries: an IP literal is checked before connecting (the HTTP
/// connector does not resolve those), a name is resolved by [`CheckedResolver`], and the
/// connection goes to exactly the addresses checked. TLS, wrapped around it, still names
/// the host for SNI and the certificate.
#[derive(Clone)]
pub struct CheckedConnector {
    inner: HttpConnector<CheckedResolver>,
    allow_loopback: bool,
}

impl CheckedConnector {
    pub fn new(allow_loopback: bool) -> Self {
        let mut inner = HttpConnector::new_with_resolver(CheckedResolver { allow_loopback });
        // https:// URLs pass through here too; the TLS layer around it handles them.
        inner.enforce_http(false);
        Self {
            inner,
            allow_loopback,
        }
    }
}

impl tower_service::Service<http::Uri> for CheckedConnector {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let literal = uri
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|h| h.parse::<IpAddr>().ok());
        if let Some(ip) = literal {
            if let Some(why) = refusal(ip, self.allow_loopback) {
                return Box::pin(async move { Err(Refused { ip, why }.into()) });
            }
        }
        let connecting = self.inner.call(uri);
        Box::pin(async move { connecting.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> bool {
        refusal(ip.parse().unwrap(), false).is_some()
    }

    #[test]
    fn private_and_special_ranges_are_refused() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "169.254.169.254",
            "192.0.0.192",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.7",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "::ffff:169.254.169.254",
            "::ffff:127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:a9fe:a9fe::1",
            "2002:7f00:1::1",
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!refused(ip), "{ip} is public");
        }
    }

    #[test]
    fn loopback_passes_only_when_allowed() {
        for ip in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(refusal(ip, false), Some(LOOPBACK));
            assert_eq!(refusal(ip, true), None);
        }
        // The allowance is for loopback only.
        assert!(refusal("10.0.0.1".parse().unwrap(), true).is_some());
        assert!(refusal("0.0.0.0".parse().unwrap(), true).is_some());
    }

    #[test]
    fn localhost_names_are_loopback() {
        assert!(is_loopback_name("localhost"));
        assert!(is_loopback_name("LOCALHOST."));
        assert!(is_loopback_name("app.localhost"));
        assert!(!is_loopback_name("localhost.example.com"));
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_unless_allowed() {
        use tower_service::Service;
        let name: Name = "localhost".parse().unwrap();
        let err = CheckedResolver {
            allow_loopback: false,
        }
        .call(name.clone())
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("refused: a loopback address"), "{err}");
        let addrs: Vec<SocketAddr> = CheckedResolver {
            allow_loopback: true,
        }
        .call(name)
        .await
        .unwrap()
        .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }
}
