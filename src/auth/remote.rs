//! The external index, as a delegated registry (`standalone = false`) sees it.
//!
//! A v1 token is only a claim until the index that issued it says yes: for each (token,
//! repository, access) the registry asks `PUT {index}/v1/repositories/{repo}/auth?access=...`
//! with the client's own `Authorization` header, and remembers a yes for `cache_ttl_secs` (never
//! past the token's own expiry). The registry names the access the call needs; the index
//! decides, so a client cannot upgrade a read token by editing the `access=` text it sends.
//!
//! Fail closed: anything but a clear yes refuses the call. A refusal (401/403) is the client's
//! problem and says so; an index that cannot be reached in time, errors, or answers something
//! unreadable is the operator's problem and answers 503 naming the index. Neither is cached, so
//! the registry recovers on the very next request once the index is back.

use crate::config::Config;
use crate::error::{AppError, AppResult, Kind};
use crate::index::Access;
use crate::names::RepoName;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Enough entries for every token of a busy site; past it the cache is swept, then emptied.
const MAX_CACHE_ENTRIES: usize = 10_000;
/// An answer to a yes/no question is tiny; anything larger is not an index talking.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A v1 token as a delegated registry receives it: not checked yet. `repo` is what the token
/// text claims; it is only trusted once the index has confirmed an access on it.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenClaim {
    header: String,
    key: [u8; 32],
    repo: Option<RepoName>,
}

impl TokenClaim {
    /// `header` is the `Authorization` value as sent (forwarded to the index unchanged).
    pub fn new(header: &str, signatures: &[String]) -> TokenClaim {
        // The cache key is a digest, so the cache never holds a usable secret.
        let mut h = Sha256::new();
        for s in signatures {
            h.update(s.as_bytes());
            h.update(b",");
        }
        TokenClaim {
            header: header.trim().to_string(),
            key: h.finalize().into(),
            repo: claimed_repository(header),
        }
    }

    pub fn claimed_repo(&self) -> Option<&RepoName> {
        self.repo.as_ref()
    }

    /// A short, non-secret name for the token in logs.
    fn short(&self) -> String {
        hex::encode(&self.key[..4])
    }
}

impl fmt::Debug for TokenClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the header: it is a bearer secret.
        f.debug_struct("TokenClaim")
            .field("token", &self.short())
            .field("repo", &self.repo)
            .finish()
    }
}

/// The first `repository="ns/name"` of a token header.
fn claimed_repository(header: &str) -> Option<RepoName> {
    let (_, rest) = header.split_once("repository=")?;
    let name: String = rest
        .trim_start_matches('"')
        .chars()
        .take_while(|c| *c != '"' && *c != ',')
        .collect();
    RepoName::parse(name.trim()).ok()
}

/// Delegated-decision counters, readable on `/metrics`. The registry role counts cache hits,
/// misses (questions sent to the index), failures (no usable answer) and denials; the index
/// role counts the answers it gives to registries.
#[derive(Debug, Default)]
pub struct DelegateStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub failures: AtomicU64,
    pub denials: AtomicU64,
    pub index_granted: AtomicU64,
    pub index_refused: AtomicU64,
}

impl DelegateStats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
    /// Index role: one answer given to a registry.
    pub fn index_answer(&self, granted: bool) {
        Self::bump(if granted {
            &self.index_granted
        } else {
            &self.index_refused
        });
    }
}

/// What the index confirmed. `user` is the account behind the token, when the index says.
#[derive(Debug, Clone)]
pub struct Confirmed {
    pub user: Option<String>,
}

type CacheKey = ([u8; 32], String, Access);

struct Cached {
    until: Instant,
    user: Option<String>,
}

enum Answer {
    Granted { ttl: Duration, user: Option<String> },
    Refused(AppError),
}

pub struct RemoteIndex {
    endpoint: String,
    client: reqwest::Client,
    timeout: Duration,
    cache_ttl: Duration,
    cache: Mutex<HashMap<CacheKey, Cached>>,
    stats: Arc<DelegateStats>,
}

impl RemoteIndex {
    pub fn new(config: &Config, stats: Arc<DelegateStats>) -> Result<RemoteIndex, String> {
        let timeout = Duration::from_secs(config.delegate.timeout_secs);
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            // The index is a known host on the LAN; a proxy picked up from the environment
            // would only be one more thing that can fail closed.
            .no_proxy()
            .user_agent(concat!("skiff/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client for the index: {e}"))?;
        Ok(RemoteIndex {
            endpoint: config.index_endpoint.trim_end_matches('/').to_string(),
            client,
            timeout,
            cache_ttl: Duration::from_secs(config.delegate.cache_ttl_secs),
            cache: Mutex::new(HashMap::new()),
            stats,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// 401 for calls that carry no token: only the index hands them out.
    pub fn token_required(&self) -> AppError {
        AppError::unauthorized(format!(
            "This registry accepts v1 tokens only (standalone = false): get one from the index at {}",
            self.endpoint
        ))
    }

    /// Does the index grant `access` on `repo` to the holder of this token?
    pub async fn confirm(&self, claim: &TokenClaim, repo: &RepoName, access: Access) -> AppResult<Confirmed> {
        let what = format!("{} on {repo} (token {})", access.as_str(), claim.short());
        let key: CacheKey = (claim.key, repo.as_str().to_string(), access);
        if let Some(user) = self.cached(&key) {
            DelegateStats::bump(&self.stats.hits);
            log::debug!("delegated check: {what}: granted (cached)");
            return Ok(Confirmed { user });
        }
        DelegateStats::bump(&self.stats.misses);
        // One deadline for the whole exchange, retry included: no request waits longer.
        let answer = match tokio::time::timeout(self.timeout, self.ask(claim, repo, access)).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("no answer within {}s", self.timeout.as_secs())),
        };
        match answer {
            Ok(Answer::Granted { ttl, user }) => {
                let ttl = ttl.min(self.cache_ttl);
                if !ttl.is_zero() {
                    self.remember(key, ttl, user.clone());
                }
                log::debug!(
                    "delegated check: {what}: granted by {} (cached {}s)",
                    self.endpoint,
                    ttl.as_secs()
                );
                Ok(Confirmed { user })
            }
            Ok(Answer::Refused(err)) => {
                DelegateStats::bump(&self.stats.denials);
                log::debug!("delegated check: {what}: refused: {}", err.message);
                Err(err)
            }
            Err(reason) => {
                DelegateStats::bump(&self.stats.failures);
                log::warn!("delegated check: {what}: index {} unavailable: {reason}", self.endpoint);
                Err(AppError::new(
                    Kind::Unavailable,
                    format!("index {} unavailable: {reason}", self.endpoint),
                ))
            }
        }
    }

    fn cached(&self, key: &CacheKey) -> Option<Option<String>> {
        let cache = self.cache.lock().ok()?;
        let entry = cache.get(key)?;
        (entry.until > Instant::now()).then(|| entry.user.clone())
    }

    fn remember(&self, key: CacheKey, ttl: Duration, user: Option<String>) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= MAX_CACHE_ENTRIES {
            let now = Instant::now();
            cache.retain(|_, e| e.until > now);
            if cache.len() >= MAX_CACHE_ENTRIES {
                cache.clear();
            }
        }
        let until = Instant::now() + ttl;
        cache.insert(key, Cached { until, user });
    }

    /// One question to the index. `Err` is a short reason the index could not answer.
    async fn ask(&self, claim: &TokenClaim, repo: &RepoName, access: Access) -> Result<Answer, String> {
        let url = format!(
            "{}/v1/repositories/{repo}/auth?access={}",
            self.endpoint,
            access.as_str()
        );
        let send = || {
            self.client
                .put(&url)
                .header(reqwest::header::AUTHORIZATION, &claim.header)
                .body("")
                .send()
        };
        let resp = match send().await {
            Ok(r) => r,
            // A kept-alive connection the index closed (it restarted) fails at once; the check
            // has no side effect, so asking again on a fresh connection is safe.
            Err(e) if !e.is_timeout() => send().await.map_err(|e| self.reason(&e))?,
            Err(e) => return Err(self.reason(&e)),
        };
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (granted_access, expires, user) = (
            header("X-Docker-Token-Access"),
            header("X-Docker-Token-Expires"),
            header("X-Docker-Token-User"),
        );
        let body = self.read_capped(resp).await?;
        match status {
            200 => self.grant(access, granted_access, expires, user, &body),
            401 => Ok(Answer::Refused(AppError::unauthorized(self.refusal(&body)))),
            403 => Ok(Answer::Refused(AppError::forbidden(self.refusal(&body)))),
            s => Err(format!("unexpected answer {s}")),
        }
    }

    /// A 200: a yes, unless its own headers say otherwise. A foreign v1 index that ignores
    /// `?access=` and sends no headers is taken at its word for the cache TTL.
    fn grant(
        &self,
        wanted: Access,
        granted_access: Option<String>,
        expires: Option<String>,
        user: Option<String>,
        body: &[u8],
    ) -> Result<Answer, String> {
        let body = String::from_utf8_lossy(body);
        if !body.trim().is_empty() && serde_json::from_str::<serde_json::Value>(&body).is_err() {
            return Err("unreadable answer (not JSON)".into());
        }
        if let Some(a) = granted_access {
            let granted = Access::parse(&a).ok_or_else(|| format!("unreadable X-Docker-Token-Access {a:?}"))?;
            if !granted.permits(wanted) {
                // An index that ignored `?access=` but told us what the token really allows.
                return Ok(Answer::Refused(AppError::forbidden(format!(
                    "token refused by the index at {}: it grants {} access, not {}",
                    self.endpoint,
                    granted.as_str(),
                    wanted.as_str()
                ))));
            }
        }
        let ttl = match expires {
            None => self.cache_ttl,
            Some(e) => {
                let at: u64 = e
                    .trim()
                    .parse()
                    .map_err(|_| format!("unreadable X-Docker-Token-Expires {e:?}"))?;
                // Sub-second precision, so a cached yes never outlives the token itself.
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                Duration::from_secs(at).saturating_sub(now)
            }
        };
        Ok(Answer::Granted {
            ttl,
            user: user.filter(|u| !u.is_empty()),
        })
    }

    fn refusal(&self, body: &[u8]) -> String {
        let said = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| "access denied".into());
        let said: String = said.chars().take(200).collect();
        format!("token refused by the index at {}: {said}", self.endpoint)
    }

    fn reason(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            return format!("no answer within {}s", self.timeout.as_secs());
        }
        // The innermost cause is the useful one ("Connection refused", "invalid HTTP version").
        let mut cause: &dyn std::error::Error = e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        let what = if e.is_connect() { "cannot connect" } else { "bad answer" };
        format!("{what} ({cause})")
    }

    async fn read_capped(&self, mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.reason(&e))? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(format!("answer larger than {MAX_ANSWER_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_read_the_repository_and_never_print_the_secret() {
        let sigs = vec!["s3cretsig".to_string()];
        let c = TokenClaim::new(
            "Token Token signature=s3cretsig,repository=\"alice/app\",access=write",
            &sigs,
        );
        assert_eq!(c.claimed_repo().map(|r| r.as_str()), Some("alice/app"));
        assert!(!format!("{c:?}").contains("s3cretsig"));
        let bare = TokenClaim::new("Token signature=s3cretsig,repository=busybox", &sigs);
        assert_eq!(bare.claimed_repo().map(|r| r.as_str()), Some("library/busybox"));
        assert_eq!(bare.key, c.key, "the cache key depends on the signatures only");
        assert!(TokenClaim::new("Token signature=x", &sigs).claimed_repo().is_none());
    }
}
