//! axum-peer: a plain axum SSE broadcast server, written the way a team usually writes one,
//! for ssecast's loadtest to compare against (see README.md).
//!
//! Each topic is a tokio `broadcast` channel, made by its first subscriber and kept. `GET
//! /events?topic=a&topic=b` streams the subscriber's topics as `Sse`, with the default
//! `KeepAlive` and an `id:` per event; a subscriber that lags more than [`CAPACITY`] events
//! behind skips what it missed. `POST /publish` takes the form `topic=...&data=...` and answers
//! `{"id":"<n>","subscribers":<receivers>}`. `GET /healthz` answers 200.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use futures::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

/// Events a topic's channel holds for its slowest subscriber.
const CAPACITY: usize = 1024;

/// A plain axum SSE broadcast server.
#[derive(Debug, Parser)]
#[command(name = "axum-peer", version)]
struct Cli {
    /// Address to listen on; prints `listening ADDR` once bound (port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

/// An event as every subscriber of its topic receives it.
#[derive(Debug, Clone)]
struct Message {
    /// Its `id:`, counted over all topics.
    id: u64,
    /// Its data, shared by every receiver.
    data: Arc<str>,
}

/// What every handler shares.
#[derive(Debug, Default)]
struct AppState {
    /// The topics, by name.
    topics: Mutex<HashMap<String, broadcast::Sender<Message>>>,
    /// The last id given out.
    last_id: AtomicU64,
}

/// The body of `POST /publish`.
#[derive(Debug, Deserialize)]
struct Publish {
    topic: String,
    data: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    let state = Arc::new(AppState::default());
    let app = Router::new()
        .route("/events", get(subscribe))
        .route("/publish", post(publish))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    println!("listening {}", listener.local_addr()?);
    axum::serve(listener, app).await
}

/// `GET /events?topic=...`: one stream of every named topic's events.
async fn subscribe(
    State(state): State<Arc<AppState>>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let topics: Vec<String> = query
        .into_iter()
        .filter(|(key, value)| key == "topic" && !value.is_empty())
        .map(|(_, value)| value)
        .collect();
    if topics.is_empty() {
        return (StatusCode::BAD_REQUEST, "name at least one topic\n").into_response();
    }
    let receivers = {
        let mut channels = state.topics.lock().unwrap_or_else(PoisonError::into_inner);
        topics
            .iter()
            .map(|topic| {
                let sender = channels
                    .entry(topic.clone())
                    .or_insert_with(|| broadcast::channel(CAPACITY).0);
                BroadcastStream::new(sender.subscribe())
            })
            .collect::<Vec<_>>()
    };
    Sse::new(events(receivers))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The SSE events of `receivers`, merged; what a lagging receiver missed is skipped.
fn events(
    receivers: Vec<BroadcastStream<Message>>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::select_all(receivers).filter_map(|received| async move {
        let message = received.ok()?;
        Some(Ok(Event::default()
            .id(message.id.to_string())
            .data(&*message.data)))
    })
}

/// `POST /publish`: sends the event to its topic's subscribers, if it has any.
async fn publish(State(state): State<Arc<AppState>>, Form(form): Form<Publish>) -> Response {
    if form.topic.is_empty() {
        return (StatusCode::BAD_REQUEST, "name a topic\n").into_response();
    }
    let id = state.last_id.fetch_add(1, Ordering::Relaxed) + 1;
    let message = Message {
        id,
        data: form.data.into(),
    };
    let sender = {
        let channels = state.topics.lock().unwrap_or_else(PoisonError::into_inner);
        channels.get(&form.topic).cloned()
    };
    // `send` fails only when nobody listens: then no one got it.
    let subscribers = sender.map_or(0, |sender| sender.send(message).unwrap_or(0));
    Json(json!({ "id": id.to_string(), "subscribers": subscribers })).into_response()
}
