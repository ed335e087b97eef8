//! Web Push as push services take it: the payload encrypted to the browser's keys (RFC 8291,
//! `aes128gcm`, by `web-push-native`), the server identified by a VAPID JWT (RFC 8292, ES256, signed
//! by `jsonwebtoken`), `TTL` and `Urgency` set (RFC 8030). Sends go only to addresses the stack's
//! reach allows, checked again at connect time: a host that resolved to a public address when the
//! subscription was taken may name a private one now (DNS rebinding). Redirects are not followed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dm_shared::push::{Reach, SubscriptionKeys};
use dm_shared::store::Subscription;
use dm_shared::{Error, Result};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use reqwest::StatusCode;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::Serialize;
use web_push_native::{Auth, WebPushBuilder};

use crate::decide::Urgency;

/// How long a push service keeps a push for a device that is offline: a chat notification older
/// than this is noise.
pub const PUSH_TTL: Duration = Duration::from_secs(4 * 60 * 60);
/// How long a VAPID JWT is valid (RFC 8292 allows at most a day).
const JWT_VALID_SECS: u64 = 12 * 60 * 60;
/// How long a push service may take to accept a connection, and to answer.
const CONNECT_WITHIN: Duration = Duration::from_secs(3);
pub const SEND_WITHIN: Duration = Duration::from_secs(10);

/// The stack's VAPID key pair and whom push services may contact about it.
pub struct Vapid {
    key: jsonwebtoken::EncodingKey,
    public_key: String,
    subject: String,
}

impl Vapid {
    /// From the private key as `dm-local vapid` prints it (the 32-byte P-256 scalar, base64url) and
    /// a `mailto:` or `https:` contact.
    pub fn new(private_key: &str, subject: &str) -> Result<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(private_key.trim().trim_end_matches('=')).map_err(Error::internal)?;
        let secret = p256::SecretKey::from_slice(&bytes).map_err(Error::internal)?;
        let der = secret.to_pkcs8_der().map_err(Error::internal)?;
        let public_key = URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes());
        let key = jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes());
        Ok(Self { key, public_key, subject: subject.to_owned() })
    }

    /// `Authorization: vapid t=..., k=...` for a push to `endpoint`: the JWT names the push
    /// service's origin as its audience.
    fn authorization(&self, endpoint: &url::Url) -> Result<String> {
        #[derive(Serialize)]
        struct Claims<'a> {
            aud: String,
            exp: u64,
            sub: &'a str,
        }
        let claims = Claims {
            aud: endpoint.origin().ascii_serialization(),
            exp: dm_shared::time::epoch_secs() + JWT_VALID_SECS,
            sub: &self.subject,
        };
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        let token = jsonwebtoken::encode(&header, &claims, &self.key).map_err(Error::internal)?;
        Ok(format!("vapid t={token}, k={}", self.public_key))
    }
}

/// What a push service answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Accepted,
    /// The subscription is no more (404, 410): forget it.
    Gone,
    /// Try again later (429, 5xx, or no connection made), after what the service asked if it did.
    Later(Option<Duration>),
    /// Not delivered, and not to be tried again: refused for good (another 4xx, an address the
    /// stack may not reach), or sent without an answer (it may have been delivered).
    Missed(String),
}

/// Sends pushes: one HTTP client for the whole run.
pub struct Pusher {
    client: reqwest::Client,
    vapid: Vapid,
    reach: Reach,
}

impl Pusher {
    pub fn new(vapid: Vapid, reach: Reach) -> Result<Self> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(Guarded(reach)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_WITHIN)
            .timeout(SEND_WITHIN)
            .build()
            .map_err(Error::internal)?;
        Ok(Self { client, vapid, reach })
    }

    /// Pushes `payload` to one subscription.
    pub async fn push(&self, subscription: &Subscription, payload: &[u8], urgency: Urgency) -> Result<Delivery> {
        let Ok(endpoint) = url::Url::parse(&subscription.endpoint) else {
            return Ok(Delivery::Missed("the endpoint is not a URL".into()));
        };
        // A host given as an address is never resolved: it is checked here instead.
        let literal = match endpoint.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if literal.is_some_and(|ip| !self.reach.allows(&ip)) {
            return Ok(Delivery::Missed(UNREACHABLE.into()));
        }
        let (public, auth) = keys(&subscription.keys)?;
        let uri = subscription.endpoint.parse().map_err(Error::internal)?;
        let mut request = WebPushBuilder::new(uri, public, auth)
            .with_valid_duration(PUSH_TTL)
            .build(payload.to_vec())
            .map_err(Error::internal)?;
        let headers = request.headers_mut();
        headers.insert("authorization", self.vapid.authorization(&endpoint)?.parse().map_err(Error::internal)?);
        headers.insert("urgency", reqwest::header::HeaderValue::from_static(urgency.header()));
        let request = reqwest::Request::try_from(request).map_err(Error::internal)?;
        // An endpoint's path is its subscription's secret: errors are told without the URL.
        let response = match self.client.execute(request).await {
            Ok(response) => response,
            Err(err) if is_refused_address(&err) => return Ok(Delivery::Missed(UNREACHABLE.into())),
            Err(err) if err.is_connect() => return Ok(Delivery::Later(None)),
            Err(err) => return Ok(Delivery::Missed(format!("no answer: {}", err.without_url()))),
        };
        let status = response.status();
        Ok(match status {
            _ if status.is_success() => Delivery::Accepted,
            StatusCode::NOT_FOUND | StatusCode::GONE => Delivery::Gone,
            StatusCode::TOO_MANY_REQUESTS => Delivery::Later(retry_after(&response)),
            _ if status.is_server_error() => Delivery::Later(retry_after(&response)),
            _ => Delivery::Missed(format!("the push service answered {status}")),
        })
    }
}

/// The browser's keys, as the encryption takes them.
fn keys(keys: &SubscriptionKeys) -> Result<(p256::PublicKey, Auth)> {
    let decode = |text: &str| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).map_err(Error::internal);
    let public = p256::PublicKey::from_sec1_bytes(&decode(&keys.p256dh)?).map_err(Error::internal)?;
    let auth = decode(&keys.auth)?;
    if auth.len() != 16 {
        return Err(Error::internal_msg("a kept subscription's auth secret is not 16 bytes"));
    }
    Ok((public, Auth::clone_from_slice(&auth)))
}

/// `Retry-After`: seconds, or an HTTP date (how long until then).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse() {
        return Some(Duration::from_secs(seconds));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    Some(Duration::try_from(at.duration_since(jiff::Timestamp::now())).unwrap_or_default())
}

/// Why a push was not sent to an endpoint whose host is, or resolves to, a forbidden address.
const UNREACHABLE: &str = "the endpoint's host is an address this stack may not reach";

/// A host that resolved to an address the stack may not reach, as the resolver refuses it.
#[derive(Debug)]
struct Unreachable(String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} resolves to an address this stack may not reach", self.0)
    }
}

impl std::error::Error for Unreachable {}

/// Whether the resolver refused the request's host (somewhere in the error's chain of causes).
fn is_refused_address(err: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(err) = source {
        if err.is::<Unreachable>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// DNS as the sender sees it: a name that resolves to any address the stack may not reach is not
/// connected to at all.
struct Guarded(Reach);

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let reach = self.0;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if found.is_empty() || !found.iter().all(|address| reach.allows(&address.ip())) {
                return Err(Box::new(Unreachable(name.as_str().to_owned())) as _);
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A browser's subscription keys (RFC 8291's example) and a VAPID key: any valid pair serves.
    const P256DH: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const VAPID_PRIVATE: &str = "RS0WdYWWo1HajXg3NZR1olzCf31i-ZBGDkFyCs7j1jw";

    fn at(endpoint: &str) -> Subscription {
        Subscription {
            subscription_id: dm_shared::ids::SubscriptionId::parse("device").expect("an id"),
            endpoint: endpoint.to_owned(),
            keys: SubscriptionKeys { p256dh: P256DH.into(), auth: AUTH.into() },
            created_at: "2026-12-05T00:00:00Z".into(),
        }
    }

    /// Whatever a kept endpoint's host resolves to now, a deployed stack sends nothing to a private
    /// or loopback address: refused when connecting, so no request leaves.
    #[tokio::test]
    async fn a_deployed_stack_connects_to_no_private_address_whatever_dns_says_now() {
        let vapid = Vapid::new(VAPID_PRIVATE, "mailto:ops@example.com").expect("a VAPID key");
        let pusher = Pusher::new(vapid, Reach::Public).expect("a pusher");
        for endpoint in
            ["https://localhost/push", "http://127.0.0.1:9/push", "https://[::1]/push", "https://10.0.0.1/push"]
        {
            let sent = pusher.push(&at(endpoint), b"{}", Urgency::High).await.expect("an answer");
            assert!(matches!(&sent, Delivery::Missed(why) if why.contains("may not reach")), "{endpoint}: {sent:?}");
        }
    }
}
