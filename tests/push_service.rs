//! A push service for the tests, on 127.0.0.1, that speaks the Web Push protocol as browsers' push
//! services do: it hands out subscriptions (a P-256 key pair and an auth secret per device, the
//! private half kept here as a browser keeps it), checks each push's VAPID JWT (ES256 signature by
//! the key the request names, that key the stack's, the audience its own origin, not expired) and
//! its headers, decrypts the payload (`aes128gcm`) with the device's private key, and answers as
//! each device is set to: accepted, gone (410), or busy once (429 with `Retry-After`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{Value, json};

/// How a device answers pushes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Gone,
    /// 429 with `Retry-After: 1` the first time, then accepted.
    BusyOnce,
}

/// A push as the device received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub urgency: String,
    pub ttl: u64,
    pub payload: Value,
}

struct Device {
    secret: p256::SecretKey,
    auth: [u8; 16],
    answer: Answer,
    /// Every request that reached it, accepted or not.
    requests: usize,
    received: Vec<Received>,
}

#[derive(Clone)]
pub struct PushService {
    origin: String,
    vapid_key: String,
    devices: Arc<Mutex<HashMap<String, Device>>>,
    /// Pushes refused for a bad signature, audience or header: the stack's bugs.
    faults: Arc<Mutex<Vec<String>>>,
}

impl PushService {
    /// Starts the service; it accepts pushes signed with `vapid_key` (the stack's public key).
    pub async fn start(vapid_key: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let origin = format!("http://{}", listener.local_addr().expect("an address"));
        let service = Self { origin, vapid_key: vapid_key.to_owned(), devices: Arc::default(), faults: Arc::default() };
        let app = Router::new().route("/push/{device}", post(receive)).with_state(service.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        service
    }

    /// A new device's subscription, as `PushSubscription.toJSON()` gives it, and its name here.
    pub fn subscribe(&self, answer: Answer) -> (String, Value) {
        let secret = loop {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).expect("randomness");
            if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
                break secret;
            }
        };
        let mut auth = [0u8; 16];
        getrandom::fill(&mut auth).expect("randomness");
        let name = ulid::Ulid::new().to_string();
        let subscription = json!({
            "endpoint": format!("{}/push/{name}", self.origin),
            "expirationTime": null,
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes()),
                "auth": URL_SAFE_NO_PAD.encode(auth),
            },
        });
        let device = Device { secret, auth, answer, requests: 0, received: Vec::new() };
        self.devices.lock().unwrap().insert(name.clone(), device);
        (name, subscription)
    }

    /// What `device` received, decrypted.
    pub fn received(&self, device: &str) -> Vec<Received> {
        self.devices.lock().unwrap()[device].received.clone()
    }

    /// How many requests reached `device`, accepted or not.
    pub fn requests(&self, device: &str) -> usize {
        self.devices.lock().unwrap()[device].requests
    }

    /// Pushes refused for not following the protocol.
    pub fn faults(&self) -> Vec<String> {
        self.faults.lock().unwrap().clone()
    }
}

async fn receive(
    State(service): State<PushService>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let checked = service.check(&headers).and_then(|(urgency, ttl)| {
        let mut devices = service.devices.lock().unwrap();
        let device = devices.get_mut(&name).ok_or("no such device")?;
        device.requests += 1;
        match device.answer {
            Answer::Gone => return Ok(StatusCode::GONE.into_response()),
            Answer::BusyOnce if device.requests == 1 => {
                return Ok((StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response());
            }
            _ => {}
        }
        let auth = web_push_native::Auth::clone_from_slice(&device.auth);
        let plain = web_push_native::decrypt(body.to_vec(), &device.secret, &auth).map_err(|e| e.to_string())?;
        let payload = serde_json::from_slice(&plain).map_err(|e| e.to_string())?;
        device.received.push(Received { urgency, ttl, payload });
        Ok(StatusCode::CREATED.into_response())
    });
    checked.unwrap_or_else(|fault: String| {
        service.faults.lock().unwrap().push(fault.clone());
        (StatusCode::FORBIDDEN, fault).into_response()
    })
}

impl PushService {
    /// RFC 8292 and RFC 8030's headers checked: the push's urgency and TTL.
    fn check(&self, headers: &HeaderMap) -> Result<(String, u64), String> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let authorization = header("authorization").ok_or("no Authorization")?;
        let rest = authorization.strip_prefix("vapid ").ok_or("not a vapid authorization")?;
        let mut token = None;
        let mut key = None;
        for part in rest.split(',') {
            match part.trim().split_once('=') {
                Some(("t", value)) => token = Some(value.to_owned()),
                Some(("k", value)) => key = Some(value.to_owned()),
                _ => return Err(format!("an unknown vapid parameter: {part}")),
            }
        }
        let (token, key) = (token.ok_or("no t=")?, key.ok_or("no k=")?);
        if key != self.vapid_key {
            return Err("signed with a key that is not the stack's".into());
        }
        let point = URL_SAFE_NO_PAD.decode(&key).map_err(|e| e.to_string())?;
        let (x, y) = (URL_SAFE_NO_PAD.encode(&point[1..33]), URL_SAFE_NO_PAD.encode(&point[33..65]));
        let decoding = jsonwebtoken::DecodingKey::from_ec_components(&x, &y).map_err(|e| e.to_string())?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&[&self.origin]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Value>(&token, &decoding, &validation).map_err(|e| e.to_string())?.claims;
        let exp = claims["exp"].as_u64().ok_or("no exp")?;
        if exp > dm_shared::time::epoch_secs() + 24 * 60 * 60 {
            return Err("a JWT valid for more than a day".into());
        }
        if header("content-encoding").as_deref() != Some("aes128gcm") {
            return Err("not aes128gcm".into());
        }
        let ttl = header("ttl").and_then(|ttl| ttl.parse().ok()).ok_or("no TTL")?;
        let urgency = header("urgency").ok_or("no Urgency")?;
        Ok((urgency, ttl))
    }
}
