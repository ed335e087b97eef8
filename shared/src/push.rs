//! Web Push subscriptions as browsers give them (`PushSubscription.toJSON()`), checked before one is
//! kept: the endpoint is where the notifier will send, so it must be a push service's, never a
//! private, link-local or metadata address of the network the functions run in (an SSRF guard).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Subscriptions a member may keep in an org (their browsers and devices).
pub const MAX_SUBSCRIPTIONS: u32 = 10;
const MAX_ENDPOINT: usize = 2_048;
/// A host that takes longer to resolve is refused: a request waits on it.
const RESOLVE_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// The browser's subscription.
#[derive(Clone, Debug, Deserialize)]
pub struct NewSubscription {
    pub endpoint: String,
    pub keys: SubscriptionKeys,
}

/// The keys the payload is encrypted to (RFC 8291): the browser's P-256 public key (65 bytes,
/// uncompressed) and its 16-byte authentication secret, both base64url.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionKeys {
    pub p256dh: String,
    pub auth: String,
}

/// Where pushes may go: push services over https; plain http to loopback only where the local stack
/// allows it (its tests' push service).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    Public,
    PublicAndLoopback,
}

impl Reach {
    /// Whether a push may go to `ip`.
    pub fn allows(self, ip: &IpAddr) -> bool {
        is_public(ip) || (self == Self::PublicAndLoopback && ip.is_loopback())
    }
}

impl NewSubscription {
    /// The subscription, checked, its endpoint as a URL parser writes it (so one browser is one
    /// subscription however it spelled the URL): an https URL on the default port (or plain http to
    /// loopback where `reach` allows it) whose host resolves to public addresses only, and keys of
    /// the right shape. 400 otherwise; a refused endpoint gets one answer, whatever its host
    /// resolved to, so the check tells nobody what names resolve to inside the network. DNS may
    /// answer differently later: whoever sends to the endpoint checks the address it connects to.
    pub async fn check(mut self, reach: Reach) -> Result<Self> {
        let refused = || Err(Error::bad_request(ENDPOINT_RULE));
        if self.endpoint.len() > MAX_ENDPOINT {
            return Err(Error::bad_request(format!("endpoint is longer than {MAX_ENDPOINT} bytes")));
        }
        let Ok(url) = url::Url::parse(self.endpoint.trim()) else { return refused() };
        let loopback_allowed = reach == Reach::PublicAndLoopback;
        let scheme_allowed = match url.scheme() {
            "https" => url.port().is_none() || loopback_allowed,
            "http" => loopback_allowed,
            _ => false,
        };
        if !scheme_allowed || !url.username().is_empty() || url.password().is_some() {
            return refused();
        }
        let addresses = resolve(&url).await;
        let http_only_to_loopback = url.scheme() == "https" || addresses.iter().all(IpAddr::is_loopback);
        if addresses.is_empty() || !addresses.iter().all(|ip| reach.allows(ip)) || !http_only_to_loopback {
            return refused();
        }
        let p256dh = URL_SAFE_NO_PAD.decode(self.keys.p256dh.trim_end_matches('=')).unwrap_or_default();
        if p256dh.len() != 65 || p256dh[0] != 4 {
            return Err(Error::bad_request("keys.p256dh is a P-256 public key: 65 bytes, uncompressed, base64url"));
        }
        let auth = URL_SAFE_NO_PAD.decode(self.keys.auth.trim_end_matches('=')).unwrap_or_default();
        if auth.len() != 16 {
            return Err(Error::bad_request("keys.auth is 16 bytes, base64url"));
        }
        self.endpoint = url.into();
        Ok(self)
    }
}

/// What an endpoint must be, as a refusal says it.
const ENDPOINT_RULE: &str = "endpoint must be a push service's https URL whose host resolves to public addresses only";

/// Every address the endpoint's host names: an IP literal itself, else what DNS answers (none when
/// it answers nothing in time).
async fn resolve(url: &url::Url) -> Vec<IpAddr> {
    let port = url.port_or_known_default().unwrap_or(443);
    match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(url::Host::Domain(name)) => {
            match tokio::time::timeout(RESOLVE_WITHIN, tokio::net::lookup_host((name, port))).await {
                Ok(Ok(found)) => found.map(|address| address.ip()).collect(),
                _ => Vec::new(),
            }
        }
        None => Vec::new(),
    }
}

/// Whether `ip` is a public unicast address: not loopback, private, link-local (the cloud's
/// metadata service at 169.254.169.254 among them), shared (CGNAT), documentation, benchmarking,
/// multicast or reserved, nor an IPv6 form of one of those.
pub fn is_public(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => is_public_v4(&v4),
            None => is_public_v6(ip),
        },
    }
}

fn is_public_v4(ip: &Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

/// Public IPv6 unicast: not unique-local, link- or site-local, documentation, nor a form that carries
/// an IPv4 address inside (NAT64, 6to4, Teredo and the IETF's protocol block, SIIT, compatible).
fn is_public_v6(ip: &Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] == 0x0064 && s[1] == 0xff9b)
        || s[0] == 0x2002
        || (s[0] == 0x2001 && s[1] < 0x0200)
        || (s[..5] == [0, 0, 0, 0, 0xffff] && s[5] == 0)
        || ip.to_ipv4().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(endpoint: &str) -> NewSubscription {
        let keys =
            SubscriptionKeys { p256dh: URL_SAFE_NO_PAD.encode([4u8; 65]), auth: URL_SAFE_NO_PAD.encode([1u8; 16]) };
        NewSubscription { endpoint: endpoint.to_owned(), keys }
    }

    #[tokio::test]
    async fn a_deployed_stack_refuses_loopback_in_every_spelling_and_anything_but_https() {
        for endpoint in [
            "http://127.0.0.1/push",
            "https://127.0.0.1/push",
            "https://2130706433/push",
            "https://0x7f.1/push",
            "https://017700000001/push",
            "https://[::ffff:7f00:1]/push",
            "https://[fe80::1%25eth0]/push",
            "https://localhost./push",
            "http://8.8.8.8/push",
            "ftp://8.8.8.8/push",
            "https://8.8.8.8:8443/push",
            "https://user@8.8.8.8/push",
        ] {
            let refused = at(endpoint).check(Reach::Public).await;
            assert!(matches!(&refused, Err(Error::BadRequest(message)) if message == ENDPOINT_RULE), "{endpoint}");
        }
        let kept = at("HTTPS://8.8.8.8:443/push?x").check(Reach::Public).await.expect("a public https endpoint");
        assert_eq!(kept.endpoint, "https://8.8.8.8/push?x", "kept as a URL parser writes it");
        let local = at("http://127.0.0.1:9/push").check(Reach::PublicAndLoopback).await;
        assert!(local.is_ok(), "the local stack's tests' push service");
    }

    #[test]
    fn private_link_local_and_metadata_addresses_are_not_public() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::",
            "fec0::1",
            "2002:a00:1::1",
            "2001:0:4136:e378::1",
            "::ffff:0:a00:1",
        ] {
            assert!(!is_public(&refused.parse().unwrap()), "{refused}");
        }
        for allowed in ["142.250.74.46", "2a00:1450:4001:82a::200a", "::ffff:8.8.8.8"] {
            assert!(is_public(&allowed.parse().unwrap()), "{allowed}");
        }
    }
}
