//! `GET /metrics`: Prometheus text. Served in every mode and never behind auth, like `_ping`:
//! it holds counts, no names. Requests, bytes, storage, gc and uploads are kept by the
//! `metrics` crate (see `crate::metrics`) and rendered by its Prometheus exporter; the counters
//! of delegated token checks, older than that, are written here by hand.
//!
//! [`track`] is the middleware that counts every request by its route's pattern (as routed,
//! `/v2/{name:.+}/blobs/{digest}`, never the raw path, so the label set stays small), method
//! and status, with the time to the response head and the bytes of request and response
//! bodies. A blob download that the connection sends itself (`net::conn::Handoff`) is counted
//! with its `Content-Length` (a range: the range's length), like every sized response; a
//! stream of unknown length is not counted (no route sends one today).

use crate::auth::remote::DelegateStats;
use crate::state::AppState;
use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use bytes::Bytes;
use futures::Stream;
use std::cell::Cell;
use std::fmt::Write;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How often histogram samples are folded in between scrapes (their memory stays small).
const UPKEEP_EVERY: Duration = Duration::from_secs(10);
/// How often the storage gauges are refreshed (also after every garbage collection).
const STORAGE_EVERY: Duration = Duration::from_secs(300);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics));
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let s = state.gate.stats();
    let get = DelegateStats::get;
    let mut out = crate::metrics::handle().render();
    for (name, help, value) in [
        (
            "skiff_delegate_cache_hits_total",
            "Delegated token checks answered from the cache (standalone = false).",
            get(&s.hits),
        ),
        (
            "skiff_delegate_cache_misses_total",
            "Delegated token checks sent to the external index (standalone = false).",
            get(&s.misses),
        ),
        (
            "skiff_delegate_failures_total",
            "Delegated token checks the external index did not answer usably: refused with 503.",
            get(&s.failures),
        ),
        (
            "skiff_delegate_denials_total",
            "Delegated token checks the external index refused (401/403).",
            get(&s.denials),
        ),
    ] {
        counter(&mut out, name, help, &[("", value)]);
    }
    counter(
        &mut out,
        "skiff_index_token_checks_total",
        "Token checks this index answered for registries (PUT /v1/repositories/{repo}/auth).",
        &[
            ("result=\"granted\"", get(&s.index_granted)),
            ("result=\"refused\"", get(&s.index_refused)),
        ],
    );
    if let Some(cache) = state.storage.blob_cache() {
        counter(
            &mut out,
            "skiff_blob_cache_hits_total",
            "Blob reads served from this node's copy rather than the S3 store ([storage.s3] cache_mib).",
            &[("", cache.hits())],
        );
        let name = "skiff_blob_cache_bytes";
        let _ = writeln!(out, "# HELP {name} Bytes of the blob copies this node keeps.");
        let _ = writeln!(out, "# TYPE {name} gauge\n{name} {}", cache.used());
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header(("Cache-Control", "no-cache"))
        .body(out)
}

fn counter(out: &mut String, name: &str, help: &str, values: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    for (labels, v) in values {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

/// Counts every request (see the module's comment).
pub async fn track(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let read = Rc::new(Cell::new(0u64));
    if crate::http::uploads::has_body(req.request()) {
        let inner = req.take_payload();
        let counted = Counted {
            inner,
            read: read.clone(),
        };
        req.set_payload(Payload::Stream {
            payload: Box::pin(counted),
        });
    }
    let res = next.call(req).await?;
    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_string());
    if read.get() > 0 {
        metrics::counter!(crate::metrics::BYTES_IN, "route" => route.clone()).increment(read.get());
    }
    let sent = match (method, res.response().body().size()) {
        ("HEAD", _) => 0,
        (_, BodySize::Sized(n)) => n,
        // A body the connection sends itself, or a stream of a known length: `Content-Length`.
        (_, BodySize::Stream) => res
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0),
        (_, BodySize::None) => 0,
    };
    if sent > 0 {
        metrics::counter!(crate::metrics::BYTES_OUT, "route" => route.clone()).increment(sent);
    }
    crate::metrics::request(&route, method, res.status().as_u16(), started.elapsed().as_secs_f64());
    Ok(res)
}

/// The method as a label: the ones routes use, anything else as `other` (a client chooses
/// the method, and must not choose the label set).
fn method_label(m: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "other",
    }
}

/// A request body that counts the bytes a handler reads from it.
struct Counted {
    inner: Payload,
    read: Rc<Cell<u64>>,
}

impl Stream for Counted {
    type Item = Result<Bytes, actix_web::error::PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &next {
            self.read.set(self.read.get() + chunk.len() as u64);
        }
        next
    }
}

/// Keeps the metrics current in the background: histogram upkeep, and the storage gauges.
pub fn spawn_upkeep(state: web::Data<AppState>) {
    let handle = crate::metrics::handle();
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(UPKEEP_EVERY);
        let mut refreshed: Option<Instant> = None;
        loop {
            tick.tick().await;
            handle.run_upkeep();
            if state.config.registry && refreshed.is_none_or(|t| t.elapsed() >= STORAGE_EVERY) {
                refresh_storage(&state.storage).await;
                refreshed = Some(Instant::now());
            }
        }
    });
}

/// Sets the storage gauges from a walk of the blobs (one listing and one stat per blob).
pub async fn refresh_storage(storage: &crate::storage::Storage) {
    match stored(storage).await {
        Ok((blobs, bytes)) => crate::metrics::storage(blobs, bytes),
        Err(e) => log::warn!("metrics: cannot measure storage: {e}"),
    }
}

async fn stored(storage: &crate::storage::Storage) -> std::io::Result<(u64, u64)> {
    let (mut blobs, mut bytes) = (0u64, 0u64);
    for key in storage.walk(crate::storage::keys::BLOBS).await? {
        if crate::storage::keys::parse_blob(&key).is_none() {
            continue;
        }
        if let Some(stat) = storage.stat(&key).await? {
            blobs += 1;
            bytes += stat.size;
        }
    }
    Ok((blobs, bytes))
}
