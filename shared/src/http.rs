//! Request parsing and replies shared by every route: our own extractors, so a bad path, query or body
//! gets our JSON 400 (or 413) instead of axum's plain-text rejection.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::Error;

/// A JSON body, parsed into `T`.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> Error {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            Error::bad_request("expected a JSON body with Content-Type: application/json")
        }
        JsonRejection::JsonSyntaxError(_) => Error::bad_request("the body is not valid JSON"),
        JsonRejection::JsonDataError(err) => Error::bad_request(format!("invalid body: {}", err.body_text())),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Error::PayloadTooLarge("the body is too large".into())
        }
        other => Error::bad_request(other.body_text()),
    }
}

/// Typed path parameters; an id that does not parse is a 400.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(err)) => Err(Error::bad_request(err.body_text())),
            Err(other) => Err(Error::bad_request(other.body_text())),
        }
    }
}

/// Typed query parameters; a bad value is a 400.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(err)) => {
                Err(Error::bad_request(format!("invalid query: {}", err.body_text())))
            }
            Err(other) => Err(Error::bad_request(other.body_text())),
        }
    }
}

/// A JSON reply whose body carries its own status, as every reply of the seed does.
pub fn reply(status: StatusCode, mut body: Value) -> Response {
    body["status"] = json!(status.as_u16());
    (status, axum::Json(body)).into_response()
}

pub fn ok(body: Value) -> Response {
    reply(StatusCode::OK, body)
}

pub fn created(body: Value) -> Response {
    reply(StatusCode::CREATED, body)
}

/// Marks a reply that means "no route of this function matched", so the local gateway can try the
/// next function, as API Gateway would have picked the right one from the template.
#[derive(Clone, Copy, Debug)]
pub struct NoRoute;

pub async fn no_route() -> Response {
    let mut response = Error::not_found("No such route").into_response();
    response.extensions_mut().insert(NoRoute);
    response
}

/// The largest JSON body a route takes (the messages contract's 256 KB).
pub const MAX_JSON_BODY: usize = 256 * 1024;

/// A function's routes as the one service Lambda (or the local gateway) calls: unknown routes and
/// methods get the marked JSON 404, bodies are capped.
pub fn service(routes: axum::Router<crate::AppState>, state: crate::AppState) -> axum::Router {
    routes
        .layer(axum::middleware::from_fn(log_request))
        .fallback(no_route)
        .method_not_allowed_fallback(no_route)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_JSON_BODY))
        .with_state(state)
}

/// A JSON body that may be absent: an empty body is `None`, anything else must parse as `T`.
pub fn optional_json<T: DeserializeOwned>(body: &[u8]) -> Result<Option<T>, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body).map(Some).map_err(|err| Error::bad_request(format!("invalid body: {err}")))
}

/// One log line a request: Lambda's request id (the one on the `REPORT` line) and API Gateway's,
/// route, caller (recorded by the `Caller` extractor), status, latency, and what it asked of DynamoDB,
/// which also goes out as metrics per route. Never a token or a body.
async fn log_request(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    let started = std::time::Instant::now();
    let lambda_request_id = request.lambda_context_ref().map(|context| context.request_id.clone()).unwrap_or_default();
    let api_request_id = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone().unwrap_or_default(),
        #[allow(unreachable_patterns)]
        _ => String::new(),
    };
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let route = format!("{} {route}", request.method());
    let span = tracing::info_span!(
        "request",
        request_id = %lambda_request_id,
        api_request_id = %api_request_id,
        route = %route,
        caller = tracing::field::Empty,
    );
    let (response, usage) =
        crate::store::measured(tracing::Instrument::instrument(next.run(request), span.clone())).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    let _entered = span.enter();
    tracing::info!(status, latency_ms, dynamodb_calls = usage.calls, capacity_units = usage.capacity_units, "request");
    // The marked 404 of a route another function owns is no request of this one.
    if response.extensions().get::<NoRoute>().is_none() {
        crate::metrics::Record::default()
            .dimension("Function", crate::metrics::function_name())
            .dimension("Route", route)
            .value("Latency", latency_ms, crate::metrics::Unit::Milliseconds)
            .value("DynamoDbCalls", usage.calls as f64, crate::metrics::Unit::Count)
            .value("DynamoDbCapacity", usage.capacity_units, crate::metrics::Unit::None)
            .value("ServerErrors", f64::from(u8::from(status >= 500)), crate::metrics::Unit::Count)
            .property("RequestId", lambda_request_id)
            .property("ApiRequestId", api_request_id)
            .emit();
    }
    response
}

/// A body read whole, for routes whose body is optional; too large is our JSON 413.
pub struct RawBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(Error::PayloadTooLarge("the body is too large".into()))
            }
            Err(rejection) => Err(Error::bad_request(rejection.body_text())),
        }
    }
}
