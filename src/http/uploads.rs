//! What every upload route (v2 `PATCH`, `PUT` with a body, monolithic `POST`; v1 layer `PUT`)
//! does with its request body: it takes one of the caller's upload slots first (so one user
//! cannot occupy the whole server: 429 beyond `limits.uploads_per_user`), and reads the body
//! through [`TimedBody`], which ends it with 408 once it has sent nothing for
//! `limits.body_timeout_secs`.

use crate::auth::Identity;
use crate::error::{AppError, AppResult, Kind};
use crate::state::AppState;
use actix_web::{web, HttpRequest};
use bytes::Bytes;
use futures::Stream;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// What a refused upload is told to wait: slots free as other uploads end, which the server
/// cannot predict, so a short fixed pause.
const RETRY_AFTER_SECS: u64 = 5;

/// In-flight upload bodies per user.
#[derive(Clone)]
pub struct UploadSlots {
    limit: usize,
    taken: Arc<Mutex<HashMap<String, usize>>>,
}

/// One taken slot, given back when dropped, however the request ends.
pub struct Slot {
    key: String,
    taken: Arc<Mutex<HashMap<String, usize>>>,
}

impl UploadSlots {
    /// `limit` slots per user; 0 = no limit.
    pub fn new(limit: usize) -> UploadSlots {
        UploadSlots {
            limit,
            taken: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Takes a slot for `key` (a user name, or `addr:<ip>`), or says 429.
    pub fn take(&self, key: String) -> AppResult<Option<Slot>> {
        if self.limit == 0 {
            return Ok(None);
        }
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        let count = taken.entry(key.clone()).or_insert(0);
        if *count >= self.limit {
            return Err(AppError::new(
                Kind::TooManyRequests,
                format!(
                    "too many concurrent uploads: at most {} per user (limits.uploads_per_user); retry when one ends",
                    self.limit
                ),
            )
            .retry_after(RETRY_AFTER_SECS));
        }
        *count += 1;
        Ok(Some(Slot {
            key,
            taken: self.taken.clone(),
        }))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = taken.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                taken.remove(&self.key);
            }
        }
    }
}

/// Whether the request has a body to stream (a `PUT` that only closes an upload has none).
pub fn has_body(req: &HttpRequest) -> bool {
    let headers = req.headers();
    if headers.contains_key(actix_web::http::header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > 0)
}

/// The slot of the account `name` (the user a token acts for), or of the client's address when
/// the caller names no account.
pub fn take_slot(state: &AppState, req: &HttpRequest, name: Option<&str>) -> AppResult<Option<Slot>> {
    let key = match name.filter(|n| !n.is_empty()) {
        Some(n) => format!("user:{n}"),
        None => format!(
            "addr:{}",
            req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default()
        ),
    };
    state.upload_slots.take(key)
}

/// The slot for `who`, when the request has a body.
pub fn slot_for(state: &AppState, req: &HttpRequest, who: &Identity) -> AppResult<Option<Slot>> {
    if !has_body(req) {
        return Ok(None);
    }
    take_slot(state, req, who.username())
}

/// A request body that fails with 408 `BodyTimeout` once it has sent nothing for `timeout`,
/// and tells a broken body (the client went away) as 400 `BLOB_UPLOAD_INVALID`.
pub struct TimedBody {
    body: web::Payload,
    timeout: Duration,
    /// When the body times out unless another chunk comes (moved on by every chunk).
    deadline: Instant,
    sleep: Pin<Box<Sleep>>,
    done: bool,
    /// Counted in `skiff_uploads_in_flight` while it lives.
    _in_flight: crate::metrics::UploadInFlight,
}

impl TimedBody {
    pub fn new(state: &AppState, body: web::Payload) -> TimedBody {
        let timeout = Duration::from_secs(state.config.limits.body_timeout_secs);
        let deadline = Instant::now() + timeout;
        TimedBody {
            body,
            timeout,
            deadline,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            done: false,
            _in_flight: crate::metrics::UploadInFlight::start(),
        }
    }
}

impl Stream for TimedBody {
    type Item = Result<Bytes, AppError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.body).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                // Only the deadline moves here; the timer is re-armed when it fires early.
                this.deadline = Instant::now() + this.timeout;
                return Poll::Ready(Some(Ok(chunk)));
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                return Poll::Ready(Some(Err(AppError::new(
                    Kind::BlobUploadInvalid,
                    format!("upload interrupted: {e}"),
                ))));
            }
            Poll::Ready(None) => {
                this.done = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        loop {
            if this.sleep.deadline() < this.deadline {
                let deadline = this.deadline;
                this.sleep.as_mut().reset(deadline);
            }
            match this.sleep.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) if this.sleep.deadline() < this.deadline => continue,
                Poll::Ready(()) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(AppError::new(
                        Kind::BodyTimeout,
                        format!(
                            "request body stalled: nothing received for {} s (limits.body_timeout_secs)",
                            this.timeout.as_secs()
                        ),
                    ))));
                }
            }
        }
    }
}

/// Runs `work` to its end even if the request is dropped meanwhile (the client went away):
/// an upload session is then left consistent (its offset is what reached the file) rather
/// than cut off between a write and its bookkeeping.
pub async fn detached<T: 'static>(work: impl Future<Output = AppResult<T>> + 'static) -> AppResult<T> {
    actix_web::rt::spawn(work)
        .await
        .map_err(|e| AppError::internal(format!("upload task failed: {e}")))?
}
