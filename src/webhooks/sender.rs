//! The sender: one task that takes due deliveries off the queue and sends each, at most
//! [`CONCURRENCY`] at once, with `[webhooks] timeout_secs` per attempt. A 2xx answer delivers;
//! anything else (another status, a refused connection, a timeout) is retried after
//! `backoff_secs`, doubling each time up to an hour, until `max_attempts`; then the delivery
//! is failed. The answer's body is never read (only its status line and headers), nor kept.
//!
//! A delivery whose attempt was under way when the process stopped is sent again at start:
//! delivery is at least once (receivers may deduplicate on `X-Skiff-Delivery` or the event id).

use super::{target, Inner, KEEP_DELIVERIES};
use crate::config::WebhooksConfig;
use crate::index::webhooks::{parse_hook_key, Delivery, DeliveryStatus};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::cmp::Reverse;
use std::sync::Arc;
use std::time::Duration;

/// Deliveries in flight at most: a few slow receivers take no more than this many sockets and
/// tasks, whatever the number of events waiting.
pub const CONCURRENCY: usize = 8;
/// The longest wait between two attempts.
const MAX_BACKOFF_SECS: u64 = 3600;

/// One client for repositories' hooks (guarded: see `target`), one for the operator's.
#[derive(Clone)]
pub struct Clients {
    guarded: reqwest::Client,
    open: reqwest::Client,
}

impl Clients {
    pub fn new(config: &WebhooksConfig) -> Result<Clients, String> {
        let timeout = Duration::from_secs(config.timeout_secs);
        let builder = || {
            reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                // A connection to a receiver is not kept: most send rarely, and an idle pool of
                // sockets to hosts that may be gone is no gain.
                .pool_max_idle_per_host(0)
                .user_agent(concat!("skiff/", env!("CARGO_PKG_VERSION")))
        };
        let open = builder().build().map_err(|e| e.to_string())?;
        let guarded = match config.allow_loopback {
            true => open.clone(),
            false => builder()
                .dns_resolver(Arc::new(target::Guarded))
                .build()
                .map_err(|e| e.to_string())?,
        };
        Ok(Clients { guarded, open })
    }
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait after `attempts` failed attempts.
pub fn backoff(config: &WebhooksConfig, attempts: u32) -> u64 {
    let doublings = attempts.saturating_sub(1).min(20);
    config
        .backoff_secs
        .saturating_mul(1u64 << doublings)
        .min(MAX_BACKOFF_SECS)
}

pub async fn run(inner: Arc<Inner>, clients: Clients) {
    let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let key = next_due(&inner).await;
        let (inner, clients) = (inner.clone(), clients.clone());
        actix_web::rt::spawn(async move {
            attempt(&inner, &clients, key).await;
            drop(slot);
        });
    }
}

/// Waits for the earliest delivery to fall due and takes it off the queue.
async fn next_due(inner: &Inner) -> Vec<u8> {
    loop {
        let now = super::now_ms();
        let wait = {
            let Ok(mut q) = inner.queue.lock() else {
                // A poisoned queue cannot be trusted to ever produce: wait to be stopped.
                std::future::pending::<()>().await;
                continue;
            };
            match q.due.peek() {
                Some(Reverse((due, _))) if *due <= now => {
                    if let Some(Reverse((_, key))) = q.due.pop() {
                        q.queued.remove(&key);
                        return key;
                    }
                    None
                }
                Some(Reverse((due, _))) => Some(Duration::from_millis(due - now)),
                None => None,
            }
        };
        match wait {
            Some(d) => {
                let _ = tokio::time::timeout(d, inner.wake.notified()).await;
            }
            None => inner.wake.notified().await,
        }
    }
}

/// One attempt of the delivery at `key`, and its outcome recorded.
async fn attempt(inner: &Arc<Inner>, clients: &Clients, key: Vec<u8>) {
    let k = key.clone();
    let loaded = inner
        .index
        .run(move |ix| {
            let Some(d) = ix.delivery(&k)? else { return Ok(None) };
            // A repository's hook as it is now (its URL or secret may have changed).
            let hook = match parse_hook_key(&d.hook_key) {
                Some((repo, id)) => ix.hook(&repo, id)?,
                None => None,
            };
            Ok(Some((d, hook)))
        })
        .await;
    let (mut d, hook) = match loaded {
        Ok(Some(found)) => found,
        Ok(None) => return,
        Err(e) => {
            log::warn!("webhooks: cannot read a delivery: {e}");
            return;
        }
    };
    if d.status != DeliveryStatus::Pending {
        return;
    }
    let global = parse_hook_key(&d.hook_key).is_none();
    let hook_gone = !global && hook.is_none();
    if let Some(h) = &hook {
        d.url = h.url.clone();
        d.secret = h.secret.clone();
    }
    let outcome = send(inner, clients, global, &d).await;
    let now = crate::clock::now_secs();
    d.attempts += 1;
    d.last_attempt = Some(now);
    match outcome {
        Ok(code) => {
            d.response_code = Some(code);
            d.error = (!(200..300).contains(&code)).then(|| format!("answered HTTP {code}"));
        }
        Err(e) => {
            d.response_code = None;
            d.error = Some(e);
        }
    }
    if d.error.is_none() {
        d.status = DeliveryStatus::Delivered;
        d.next_attempt = None;
    } else if d.attempts >= inner.config.max_attempts {
        d.status = DeliveryStatus::Failed;
        d.next_attempt = None;
        log::info!(
            "webhooks: delivery {} to {} failed after {} attempts: {}",
            d.id,
            d.url,
            d.attempts,
            d.error.as_deref().unwrap_or("")
        );
    } else {
        d.next_attempt = Some(now + backoff(&inner.config, d.attempts));
    }
    let retry = d.next_attempt;
    let requeue = key.clone();
    let stored = inner
        .index
        .run(move |ix| {
            // Deleted while it was sent (its hook went): nothing to record.
            if ix.delivery(&key)?.is_none() {
                return Ok(false);
            }
            if d.status == DeliveryStatus::Pending {
                ix.put_delivery(&d)?;
            } else if hook_gone {
                ix.remove_delivery(&key)?;
            } else {
                ix.put_delivery(&d)?;
                ix.prune_deliveries(&d.hook_key, KEEP_DELIVERIES, true)?;
            }
            Ok(true)
        })
        .await;
    match (stored, retry) {
        (Ok(true), Some(at)) => inner.enqueue(requeue, at.saturating_mul(1000)),
        (Err(e), _) => log::warn!("webhooks: attempt not recorded: {e}"),
        _ => {}
    }
}

/// Sends the delivery once: the answer's status, or why there was none.
async fn send(inner: &Inner, clients: &Clients, global: bool, d: &Delivery) -> Result<u16, String> {
    let guarded = !global && !inner.config.allow_loopback;
    let checked = match guarded {
        true => target::check_repository_url(&d.url, false),
        false => target::check_url(&d.url),
    };
    let url = checked?;
    let client = if guarded { &clients.guarded } else { &clients.open };
    let mut req = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, &d.content_type)
        .header("X-Skiff-Event", &d.event)
        .header("X-Skiff-Delivery", d.id.to_string());
    if !d.secret.is_empty() {
        req = req.header("X-Skiff-Signature-256", signature(&d.secret, d.body.as_bytes()));
    }
    match req.body(d.body.clone()).send().await {
        // Only the status: the body is dropped unread with the connection.
        Ok(resp) => Ok(resp.status().as_u16()),
        Err(e) => Err(reason(&e, inner.config.timeout_secs)),
    }
}

fn reason(e: &reqwest::Error, timeout: u64) -> String {
    if e.is_timeout() {
        return format!("no answer within {timeout}s");
    }
    // The innermost cause is the useful one ("Connection refused").
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let what = if e.is_connect() { "cannot connect" } else { "failed" };
    format!("{what}: {cause}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The HMAC-SHA256 test vector of RFC 4231 (case 2), in the header's form.
    #[test]
    fn signature_is_hmac_sha256() {
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let c = WebhooksConfig {
            backoff_secs: 5,
            ..WebhooksConfig::default()
        };
        let waits: Vec<u64> = (1..=5).map(|n| backoff(&c, n)).collect();
        assert_eq!(waits, vec![5, 10, 20, 40, 80]);
        assert_eq!(backoff(&c, 30), 3600);
    }
}
