//! Checking the bearer token at `$connect`. WebSocket APIs have no JWT authorizer: where an issuer is
//! configured (AWS), tokens are checked against the issuer's published keys, fetched once per cold
//! start (again only for a key id not seen yet); elsewhere, HS256 with `DM_JWT_SECRET`, as the HTTP
//! functions do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dm_shared::auth::Verifier;
use dm_shared::ids::UserId;
use dm_shared::{Error, Result};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use tokio::sync::RwLock;

/// How often an unknown key id may make us fetch the keys again.
const REFETCH_AFTER: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub enum Tokens {
    Secret(Arc<Verifier>),
    Issuer(Arc<Issuer>),
}

impl Tokens {
    pub async fn verify(&self, token: &str) -> Result<UserId> {
        match self {
            Self::Secret(verifier) => verifier.verify(token),
            Self::Issuer(issuer) => issuer.verify(token).await,
        }
    }
}

pub struct Issuer {
    issuer: String,
    audience: Vec<String>,
    http: reqwest::Client,
    keys: RwLock<Option<(JwkSet, Instant)>>,
}

#[derive(Deserialize)]
struct Discovery {
    jwks_uri: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    aud: Option<Audience>,
    /// Cognito access tokens name their app client here instead of in `aud`.
    client_id: Option<String>,
}

fn unauthorized() -> Error {
    Error::Unauthorized("invalid or expired token".into())
}

/// The algorithm a key is for: its own `alg`, else its family's usual one. Never the token's say-so.
fn algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if let Some(alg) = jwk.common.key_algorithm {
        return Algorithm::try_from(alg).ok();
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(_) => Some(Algorithm::ES256),
        _ => None,
    }
}

impl Issuer {
    /// `issuer` is compared exactly, as API Gateway's JWT authorizer compares it (a trailing `/`
    /// included). An empty `audience` would accept tokens minted for any app: it is refused.
    pub fn new(issuer: &str, audience: Vec<String>) -> Result<Self> {
        if audience.is_empty() {
            return Err(Error::internal_msg("an issuer needs at least one audience (DM_JWT_AUDIENCE)"));
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            audience,
            http: reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap_or_default(),
            keys: RwLock::new(None),
        })
    }

    async fn fetch(&self) -> Result<JwkSet> {
        let unavailable = |err: reqwest::Error| Error::Unavailable(Box::new(err));
        let discovery_url = format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'));
        let discovery: Discovery =
            self.http.get(discovery_url).send().await.map_err(unavailable)?.json().await.map_err(unavailable)?;
        self.http.get(discovery.jwks_uri).send().await.map_err(unavailable)?.json().await.map_err(unavailable)
    }

    /// The key `kid`, fetching the keys on first use and when a new key id shows up.
    async fn key(&self, kid: &str) -> Result<Jwk> {
        if let Some((keys, fetched)) = &*self.keys.read().await {
            if let Some(jwk) = keys.find(kid) {
                return Ok(jwk.clone());
            }
            if fetched.elapsed() < REFETCH_AFTER {
                return Err(unauthorized());
            }
        }
        let keys = self.fetch().await?;
        let jwk = keys.find(kid).cloned();
        *self.keys.write().await = Some((keys, Instant::now()));
        jwk.ok_or_else(unauthorized)
    }

    pub async fn verify(&self, token: &str) -> Result<UserId> {
        let header = decode_header(token).map_err(|_| unauthorized())?;
        let jwk = self.key(header.kid.as_deref().ok_or_else(unauthorized)?).await?;
        let alg = algorithm(&jwk).filter(|alg| *alg == header.alg).ok_or_else(unauthorized)?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| unauthorized())?;
        let mut validation = Validation::new(alg);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.set_issuer(&[&self.issuer]);
        // Checked below: Cognito access tokens carry `client_id` rather than `aud`.
        validation.validate_aud = false;
        let claims = decode::<Claims>(token, &key, &validation).map_err(|_| unauthorized())?.claims;
        let audiences = match claims.aud {
            Some(Audience::One(aud)) => vec![aud],
            Some(Audience::Many(auds)) => auds,
            None => Vec::new(),
        };
        let accepted = audiences.iter().chain(claims.client_id.iter()).any(|aud| self.audience.contains(aud));
        if !accepted {
            return Err(unauthorized());
        }
        UserId::parse(claims.sub).map_err(|_| unauthorized())
    }
}
