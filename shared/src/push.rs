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
    /// When the browser will drop it (epoch ms), if it says.
    #[serde(default, rename = "expirationTime")]
    pub expiration_time: Option<serde_json::Number>,
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

impl NewSubscription {
    /// The subscription, checked: an https endpoint (or http to loopback where `reach` allows it)
    /// whose host resolves to public addresses only, and keys of the right shape. 400 otherwise,
    /// saying which; nothing is ever sent to a refused endpoint.
    pub async fn check(self, reach: Reach) -> Result<Self> {
        let refused = |why: &str| Err(Error::bad_request(format!("endpoint {why}")));
        if self.endpoint.len() > MAX_ENDPOINT {
            return refused(&format!("is longer than {MAX_ENDPOINT} characters"));
        }
        let Ok(url) = url::Url::parse(&self.endpoint) else { return refused("is not a URL") };
        if !url.username().is_empty() || url.password().is_some() {
            return refused("must not carry credentials");
        }
        let loopback_allowed = reach == Reach::PublicAndLoopback;
        let addresses = resolve(&url).await?;
        let loopback = addresses.iter().all(IpAddr::is_loopback);
        match url.scheme() {
            "https" => {}
            "http" if loopback_allowed && loopback => {}
            _ => return refused("must be an https URL"),
        }
        let allowed = |ip: &IpAddr| is_public(ip) || (loopback_allowed && ip.is_loopback());
        if let Some(bad) = addresses.iter().find(|ip| !allowed(ip)) {
            return refused(&format!("must be a push service's, not a private or reserved address ({bad})"));
        }
        let p256dh = URL_SAFE_NO_PAD.decode(self.keys.p256dh.trim_end_matches('=')).unwrap_or_default();
        if p256dh.len() != 65 || p256dh[0] != 4 {
            return Err(Error::bad_request("keys.p256dh is a P-256 public key: 65 bytes, uncompressed, base64url"));
        }
        let auth = URL_SAFE_NO_PAD.decode(self.keys.auth.trim_end_matches('=')).unwrap_or_default();
        if auth.len() != 16 {
            return Err(Error::bad_request("keys.auth is 16 bytes, base64url"));
        }
        Ok(self)
    }
}

/// Every address the endpoint's host names: an IP literal itself, else what DNS answers (400 when
/// nothing).
async fn resolve(url: &url::Url) -> Result<Vec<IpAddr>> {
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(url::Host::Domain(name)) => {
            match tokio::time::timeout(RESOLVE_WITHIN, tokio::net::lookup_host((name, port))).await {
                Ok(Ok(found)) => found.map(|address| address.ip()).collect(),
                _ => Vec::new(),
            }
        }
        None => Vec::new(),
    };
    match addresses.is_empty() {
        true => Err(Error::bad_request("endpoint's host does not resolve")),
        false => Ok(addresses),
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

fn is_public_v6(ip: &Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || first == 0x2001 && ip.segments()[1] == 0x0db8
        || first == 0x0064 && ip.segments()[1] == 0xff9b
        || ip.to_ipv4().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ] {
            assert!(!is_public(&refused.parse().unwrap()), "{refused}");
        }
        for allowed in ["142.250.74.46", "2a00:1450:4001:82a::200a", "::ffff:8.8.8.8"] {
            assert!(is_public(&allowed.parse().unwrap()), "{allowed}");
        }
    }
}
