//! The hyper service: every request that is not a subscribe (publish, demo page, health,
//! stats, Mercure's subscriptions API), routed by one table, with JSON errors. Never touches a
//! subscriber.
//!
//! Which routes a listener serves is its [`Routes`]: the internal listener serves publish,
//! health and stats only, and once it exists the public one serves no publish.

mod assets;
pub mod budget;
pub mod cors;
pub mod error;
mod health;
mod metrics;
pub(crate) mod publish;
mod stats;
mod subscriptions;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_ORIGIN, ALLOW, CONNECTION,
    CONTENT_TYPE, LOCATION, ORIGIN, VARY,
};
use hyper::{Method, Request, Response, StatusCode};

use self::budget::BodyBudget;
use self::cors::Cors;
use crate::address::ClientAddress;
use crate::auth::Verifier;
use crate::broadcast::Broadcaster;
use crate::cluster::Cluster;
use crate::metrics::Metrics;
use crate::sse::subscribe::MERCURE_PATH;
use crate::stats::Stats;
use publish::Dialect;

/// What the service needs, shared by every connection.
pub struct Context {
    /// Where publishes go.
    pub broadcaster: Broadcaster,
    /// With `--redis`: publishes go through Redis to every node, this one included.
    pub cluster: Option<Arc<Cluster>>,
    /// The server's counters.
    pub stats: Arc<Stats>,
    /// The server's metrics, for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// What publish tokens are verified with; `None` when publishing is open.
    pub publisher: Option<Arc<Verifier>>,
    /// What subscriber tokens are verified with (for the subscriptions API), if anything.
    pub subscriber: Option<Arc<Verifier>>,
    /// The largest publish body accepted.
    pub max_body_bytes: usize,
    /// The most events in one batch publish.
    pub max_batch: usize,
    /// The time a publish body has to arrive whole, from the start of its request.
    pub body_timeout: Duration,
    /// The bytes publish bodies being read on this listener may hold.
    pub body_budget: Arc<BodyBudget>,
    /// `Access-Control-Allow-Origin` for every answer, if set.
    pub cors: Cors,
    /// The routes this listener serves.
    pub routes: Routes,
}

/// Which routes a listener serves; health and stats are on every listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routes {
    /// The public listener: subscribes, and the demo page and publishes when they are on.
    Public {
        /// Publishes are served here (no internal listener takes them).
        publish: bool,
        /// The demo page and its assets are served (`--demo`).
        demo: bool,
    },
    /// The internal listener: publish, health and stats only.
    Internal,
}

impl Routes {
    /// Whether `POST /publish` is served.
    pub fn publish(self) -> bool {
        matches!(self, Self::Internal | Self::Public { publish: true, .. })
    }

    /// Whether `GET /events` is served.
    pub fn subscribe(self) -> bool {
        matches!(self, Self::Public { .. })
    }

    /// Whether the demo page is served.
    pub fn demo(self) -> bool {
        matches!(self, Self::Public { demo: true, .. })
    }
}

/// Answers one request from `client`, whose share of the body budget a publish counts against
/// (`None`: the total only).
pub async fn serve(
    request: Request<Incoming>,
    context: Arc<Context>,
    client: Option<ClientAddress>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let origin = request.headers().get(ORIGIN).cloned();
    let mut response = route(request, &context, client).await;
    if let Some(allowed) = context
        .cors
        .allow(origin.as_ref().map(HeaderValue::as_bytes))
    {
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allowed.origin);
        if allowed.credentials {
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            headers.insert(VARY, HeaderValue::from_static("origin"));
        }
    }
    Ok(response)
}

async fn route(
    request: Request<Incoming>,
    context: &Context,
    client: Option<ClientAddress>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    let method = request.method();
    let routes = context.routes;
    match (method, path) {
        (&Method::GET | &Method::HEAD, "/healthz") => health::handle(context),
        (&Method::GET | &Method::HEAD, "/stats") => stats::handle(context),
        (&Method::GET | &Method::HEAD, "/metrics") => metrics::handle(context),
        (&Method::GET | &Method::HEAD, path) if routes.demo() && assets::exists(path) => {
            assets::get(path).unwrap_or_else(not_found)
        }
        (&Method::POST, "/publish") if routes.publish() => {
            publish::handle(request, context, client, Dialect::Ssecast).await
        }
        (&Method::POST, MERCURE_PATH) if routes.publish() => {
            publish::handle(request, context, client, Dialect::Mercure).await
        }
        (_, "/publish") if routes.subscribe() && !routes.publish() => publish_elsewhere(),
        (&Method::GET, "/events" | MERCURE_PATH) if routes.subscribe() => {
            reconnect_elsewhere(request.uri())
        }
        (&Method::GET, path) if routes.subscribe() && subscriptions::is_api(path) => {
            subscriptions::handle(&request, context).unwrap_or_else(not_found)
        }
        (&Method::OPTIONS, _) if context.cors.is_on() => preflight(),
        (_, "/publish") => not_allowed("POST"),
        (_, "/events") if routes.subscribe() => not_allowed("GET"),
        (_, "/healthz" | "/stats" | "/metrics") => not_allowed("GET, HEAD"),
        (_, path) if routes.demo() && assets::exists(path) => not_allowed("GET, HEAD"),
        _ => not_found(),
    }
}

/// A publish on the public listener when the internal one takes them.
fn publish_elsewhere() -> Response<Full<Bytes>> {
    error::response(
        StatusCode::NOT_FOUND,
        "publishing is served on the internal listener only",
    )
}

fn not_found() -> Response<Full<Bytes>> {
    error::response(StatusCode::NOT_FOUND, "not found")
}

fn not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response = error::response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// A subscribe reaches hyper only on a connection `conn::handback` could not frame (HTTP/1.0
/// keep-alive, say); it is sent to the same URL on a new connection, which the raw path serves.
fn reconnect_elsewhere(uri: &hyper::Uri) -> Response<Full<Bytes>> {
    let mut response = error::response(
        StatusCode::TEMPORARY_REDIRECT,
        "subscribe on a new connection",
    );
    let location = uri.path_and_query().map_or("/events", |p| p.as_str());
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(LOCATION, location);
    }
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

fn preflight() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("authorization, content-type, last-event-id"),
    );
    headers.insert("access-control-max-age", HeaderValue::from_static("86400"));
    response
}

/// A JSON answer.
fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
