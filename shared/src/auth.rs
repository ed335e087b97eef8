//! Who is calling: the `sub` of a bearer JWT.
//!
//! In AWS the HttpApi's JWT authorizer has already checked the token and hands its claims over in the
//! request context; wherever no authorizer ran (locally, `sam local`), the token is verified here as
//! HS256 with `DM_JWT_SECRET`.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::UserId;
use crate::state::AppState;

/// The authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller(pub UserId);

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
}

/// Verifies HS256 tokens; built once per cold start.
pub struct Verifier {
    key: Option<DecodingKey>,
    validation: Validation,
}

impl Verifier {
    pub fn new(secret: Option<&str>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        // A token that is not valid yet is refused, as API Gateway's JWT authorizer refuses it.
        validation.validate_nbf = true;
        Self { key: secret.map(|s| DecodingKey::from_secret(s.as_bytes())), validation }
    }

    pub fn verify(&self, token: &str) -> Result<UserId, Error> {
        let key = self.key.as_ref().ok_or_else(|| Error::Unauthorized("no token verifier is configured".into()))?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|_| Error::Unauthorized("invalid or expired token".into()))?;
        UserId::parse(data.claims.sub).map_err(|_| Error::Unauthorized("the token's sub is not a valid user id".into()))
    }
}

/// Mints an HS256 token for `user`, valid `ttl_secs` (dev tokens and tests).
pub fn mint(secret: &str, user: &str, ttl_secs: u64) -> Result<String, Error> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_err(Error::internal)?.as_secs();
    let claims = Claims { sub: user.to_owned(), exp: now + ttl_secs };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))
        .map_err(Error::internal)
}

fn authorizer_sub(parts: &Parts) -> Option<&str> {
    match parts.extensions.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => {
            ctx.authorizer.as_ref()?.jwt.as_ref()?.claims.get("sub").map(String::as_str)
        }
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let caller = Self::authenticate(parts, state)?;
        tracing::Span::current().record("caller", caller.0.as_str());
        Ok(caller)
    }
}

impl Caller {
    fn authenticate(parts: &Parts, state: &AppState) -> Result<Self, Error> {
        if let Some(sub) = authorizer_sub(parts) {
            return UserId::parse(sub)
                .map(Caller)
                .map_err(|_| Error::Unauthorized("the token's sub is not a valid user id".into()));
        }
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| Error::Unauthorized("missing Authorization: Bearer <token>".into()))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| Error::Unauthorized("the Authorization header must be Bearer <token>".into()))?;
        state.verifier.verify(token).map(Caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_verifies_and_a_foreign_one_does_not() {
        let verifier = Verifier::new(Some("s3cret"));
        let token = mint("s3cret", "alice", 60).unwrap();
        assert_eq!(verifier.verify(&token).unwrap().as_str(), "alice");
        let foreign = mint("other", "alice", 60).unwrap();
        assert!(matches!(verifier.verify(&foreign), Err(Error::Unauthorized(_))));
        assert!(matches!(verifier.verify("not.a.jwt"), Err(Error::Unauthorized(_))));
    }

    #[test]
    fn a_token_not_valid_yet_is_refused() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let claims = serde_json::json!({ "sub": "alice", "exp": now + 600, "nbf": now + 300 });
        let key = EncodingKey::from_secret(b"s3cret");
        let early = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
        assert!(matches!(Verifier::new(Some("s3cret")).verify(&early), Err(Error::Unauthorized(_))));
        let claims = serde_json::json!({ "sub": "alice", "exp": now + 600, "nbf": now - 1 });
        let valid = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
        assert!(Verifier::new(Some("s3cret")).verify(&valid).is_ok());
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let claims = b64.encode(r#"{"sub":"alice","exp":99999999999}"#);
        let verifier = Verifier::new(Some("s3cret"));
        assert!(verifier.verify(&format!("{header}.{claims}.")).is_err());
    }
}
