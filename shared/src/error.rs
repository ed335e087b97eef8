//! The one error type of the DM API and the one place that turns it into an HTTP answer.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The seed answers a second join of a room with 406.
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    Conflict(String),
    /// A sync token older than the events kept: the client reloads.
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A request that reuses an `Idempotency-Key` with another body, as Stripe answers it.
    #[error("{0}")]
    Unprocessable(String),
    #[error("Too many requests, retry later")]
    Throttled(#[source] BoxError),
    /// One caller's attempts of one kind past their limit: retry after this many seconds.
    #[error("Too many attempts: retry in {0} s")]
    RateLimited(u64),
    #[error("Service unavailable")]
    Unavailable(#[source] BoxError),
    #[error("Internal error")]
    Internal(#[source] BoxError),
}

impl Error {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }
    pub fn internal(cause: impl Into<BoxError>) -> Self {
        Self::Internal(cause.into())
    }
    pub fn internal_msg(message: &str) -> Self {
        Self::Internal(message.to_owned().into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Gone(_) => StatusCode::GONE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Throttled(_) | Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The whole `source()` chain on one line, for the one log entry an unexpected error gets.
fn cause_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match self {
            Self::RateLimited(secs) => Some(HeaderValue::from(secs)),
            Self::Throttled(_) | Self::Unavailable(_) => Some(HeaderValue::from_static("1")),
            _ => None,
        };
        // A caller over their own limit is no fault of the service's.
        if status.is_server_error() || matches!(self, Self::Throttled(_)) {
            tracing::error!(status = status.as_u16(), cause = %cause_chain(&self), "request failed");
        }
        let body = json!({ "status": status.as_u16(), "message": self.to_string() });
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(retry_after) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, retry_after);
        }
        response
    }
}
