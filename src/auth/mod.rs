//! The gate: every access decision of v1, v2 and the UI goes through here. It answers two
//! questions: who is calling (Basic credentials, a v1 Token, a v2 Bearer JWT), and may they read,
//! write or delete repository R. Handlers never decide access themselves.
//!
//! With `standalone = false` there is no local index: a v1 token becomes an unchecked
//! [`Identity::Delegated`] claim, and every `check` asks the external index (see [`remote`]).

pub mod credentials;
pub mod images;
pub mod jwt;
mod pats;
pub mod policy;
pub mod remote;
pub mod scopes;
pub mod throttle;

use crate::error::{AppError, AppResult};
use crate::index::password;
use crate::index::{Access, Index, Pat, Repo, TokenGrant};
use crate::names::RepoName;
use actix_web::http::header;
use actix_web::HttpRequest;
use base64::Engine;
use credentials::CredentialCache;
use remote::{DelegateStats, RemoteIndex, TokenClaim};
use std::net::IpAddr;
use std::sync::Arc;
use throttle::Throttle;

pub use images::Uploader;

/// Compares two secrets in time that depends on their lengths only, never on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The caller, once their credentials have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Anonymous,
    User(Principal),
    /// A v1 token: the holder may do `access` on one repository, on behalf of `user`.
    Token(TokenGrant, Holder),
    /// A v2 bearer token (JWT) listing repositories and actions, on behalf of `sub`.
    Bearer(jwt::Claims, Holder),
    /// An access token (personal or a robot's) sent as a Basic password: its scopes, on behalf
    /// of its owner.
    Pat(Pat, Holder),
    /// A v1 token on a delegated registry: unchecked until the external index confirms an
    /// access (every `check` asks it, through a short cache).
    Delegated(TokenClaim),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub admin: bool,
    /// The account's generation when it was checked (see `User::generation`).
    pub generation: u64,
}

/// Whom a token acts for, as the index sees them now. A token never allows more than its
/// holder may do at the moment it is used, so revoking the holder's rights revokes the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// A token issued without credentials: it reads what anyone may read.
    Anonymous,
    /// The account, active and of the generation the token was issued under.
    User(Principal),
    /// A delegated registry verifies the index's JWTs by signature alone: their grant stands
    /// until they expire (see the README).
    Unchecked,
}

impl Identity {
    /// The account acting, if any (a token acts for the user it was issued to, an access
    /// token for its owner: what it creates is the owner's).
    pub fn username(&self) -> Option<&str> {
        match self {
            Identity::Anonymous | Identity::Delegated(_) => None,
            Identity::User(p) => Some(&p.name),
            Identity::Token(g, _) => Some(&g.user),
            Identity::Bearer(c, _) => Some(&c.sub),
            Identity::Pat(p, _) => Some(&p.owner),
        }
    }

    /// The access token behind this caller: signed in with it, or holding a token issued on it.
    pub fn pat_id(&self) -> Option<&str> {
        match self {
            Identity::Pat(p, _) => Some(&p.id),
            Identity::Token(g, _) => g.pat.as_deref(),
            Identity::Bearer(c, _) => c.pat.as_deref(),
            _ => None,
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Identity::User(p) if p.admin)
    }
}

/// Credentials as sent, before checking.
#[derive(Debug, PartialEq, Eq)]
pub enum Credentials {
    None,
    Basic { user: String, password: String },
    Token(Vec<String>),
    Bearer(String),
}

impl Credentials {
    pub fn from_request(req: &HttpRequest) -> Credentials {
        match authorization(req) {
            Some(v) => Credentials::parse(v),
            None => Credentials::None,
        }
    }

    pub fn parse(value: &str) -> Credentials {
        let value = value.trim();
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(rest.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok());
                match decoded.as_deref().and_then(|s| s.split_once(':')) {
                    // Docker 1.3 sends `Basic Og==` (empty user and password) when logged out.
                    Some(("", _)) | None => Credentials::None,
                    Some((u, p)) => Credentials::Basic {
                        user: u.to_string(),
                        password: p.to_string(),
                    },
                }
            }
            "token" => {
                let sigs = crate::index::tokens::signatures(rest);
                if sigs.is_empty() {
                    // Docker 1.3 sends a bare `Token` when it has none.
                    Credentials::None
                } else {
                    Credentials::Token(sigs)
                }
            }
            "bearer" => Credentials::Bearer(rest.trim().to_string()),
            _ => Credentials::None,
        }
    }
}

fn authorization(req: &HttpRequest) -> Option<&str> {
    req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

/// The shortest time between two fetches of the index's keys.
const JWKS_REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
/// After a failed fetch, requests fail at once for this long instead of each trying again.
const JWKS_RETRY_AFTER_FAILURE: std::time::Duration = std::time::Duration::from_secs(1);

/// The last fetch of the index's keys: when it began, its error if it failed, and whether it
/// was a refresh that still did not know the key it was made for (then refreshes wait
/// `JWKS_REFRESH_INTERVAL`: made-up key ids cannot make the registry hammer the index).
#[derive(Default)]
struct KeyFetch {
    began: Option<std::time::Instant>,
    failed: Option<AppError>,
    fruitless: bool,
}

pub struct Gate {
    index: Option<Index>,
    /// The external index, when `standalone = false`.
    remote: Option<RemoteIndex>,
    stats: Arc<DelegateStats>,
    cache: Arc<CredentialCache>,
    /// Signs v2 tokens (the index role only).
    signer: Option<jwt::Signer>,
    /// Verifies v2 tokens: from our own key, a configured key, or the external index's JWKS.
    verifier: std::sync::RwLock<Option<Arc<jwt::Verifier>>>,
    /// Where to fetch the verification keys from when there is no local signer.
    jwks_url: Option<String>,
    /// Held while the keys are fetched (one fetch at a time, however many requests wait for
    /// it), with when the last fetch began.
    jwks_fetch: tokio::sync::Mutex<KeyFetch>,
    audience: String,
    http_timeout: std::time::Duration,
    throttle: Throttle,
    /// Take the client's address from `X-Forwarded-For` (behind a trusted proxy only).
    trust_forwarded: bool,
}

impl Gate {
    pub fn new(index: Option<Index>) -> Gate {
        Gate {
            index,
            remote: None,
            stats: Arc::new(DelegateStats::default()),
            cache: Arc::new(CredentialCache::default()),
            signer: None,
            verifier: std::sync::RwLock::new(None),
            jwks_url: None,
            jwks_fetch: tokio::sync::Mutex::new(KeyFetch::default()),
            audience: "skiff".into(),
            http_timeout: std::time::Duration::from_secs(5),
            throttle: Throttle::new(&crate::config::LimitsConfig::default()),
            trust_forwarded: false,
        }
    }

    /// Login throttling and the password-hashing pool, from `[limits]`.
    pub fn with_limits(mut self, limits: &crate::config::LimitsConfig, trust_forwarded: bool) -> Gate {
        self.throttle = Throttle::new(limits);
        self.trust_forwarded = trust_forwarded;
        self
    }

    /// The client's address, for throttling and the audit log: the peer, or the first `X-Forwarded-For` hop when
    /// the operator trusts the proxy in front.
    pub fn client_address(&self, req: &HttpRequest) -> Option<IpAddr> {
        if self.trust_forwarded {
            let forwarded = req
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok());
            if forwarded.is_some() {
                return forwarded;
            }
        }
        req.peer_addr().map(|a| a.ip())
    }

    /// Sets up v2 token signing and verification for this process's role.
    pub fn with_tokens(
        mut self,
        signer: Option<jwt::Signer>,
        configured_key: Option<Vec<u8>>,
        jwks_url: Option<String>,
        audience: &str,
        timeout: std::time::Duration,
    ) -> Gate {
        let keys: Vec<Vec<u8>> = signer
            .iter()
            .map(|s| s.public_key().to_vec())
            .chain(configured_key)
            .collect();
        if !keys.is_empty() {
            self.verifier = std::sync::RwLock::new(Some(Arc::new(jwt::Verifier::new(&keys, audience))));
        }
        self.signer = signer;
        self.jwks_url = jwks_url;
        self.audience = audience.to_string();
        self.http_timeout = timeout;
        self
    }

    pub fn signer(&self) -> Option<&jwt::Signer> {
        self.signer.as_ref()
    }

    /// The verifier, fetching the external index's public keys on first use.
    async fn verifier(&self) -> AppResult<Arc<jwt::Verifier>> {
        match self.verifier.read().ok().and_then(|g| g.clone()) {
            Some(v) => Ok(v),
            None => self.fetch_keys(None).await,
        }
    }

    /// Verifies a JWT. A token signed with a key the verifier does not know sends it to fetch
    /// the index's keys again (the index changed its key).
    async fn verify_bearer(&self, token: &str) -> AppResult<jwt::Claims> {
        let v = self.verifier().await?;
        match v.verify(token) {
            Err(_) if self.jwks_url.is_some() && v.unknown_key(token) => {
                self.fetch_keys(Some((&v, token))).await?.verify(token)
            }
            result => result,
        }
    }

    /// Fetches the external index's keys (JWKS), one fetch at a time: requests arriving during
    /// a fetch wait for it and use its result. `stale`: the verifier that did not know the
    /// token's key, and the token; `None` on first use.
    async fn fetch_keys(&self, stale: Option<(&Arc<jwt::Verifier>, &str)>) -> AppResult<Arc<jwt::Verifier>> {
        let mut last = self.jwks_fetch.lock().await;
        let since = |d| last.began.is_some_and(|t| t.elapsed() < d);
        let current = self.verifier.read().ok().and_then(|g| g.clone());
        if let Some(current) = &current {
            // Fetched by another request while this one waited.
            let newer = stale.is_none_or(|(s, _)| !Arc::ptr_eq(s, current));
            if newer || (last.fruitless && since(JWKS_REFRESH_INTERVAL)) {
                return Ok(current.clone());
            }
        }
        if let Some(e) = &last.failed {
            if since(JWKS_RETRY_AFTER_FAILURE) {
                return Err(e.clone());
            }
        }
        last.began = Some(std::time::Instant::now());
        let result = self.download_keys().await;
        last.failed = result.as_ref().err().cloned();
        last.fruitless = match (&result, stale) {
            (Ok(v), Some((_, token))) => v.unknown_key(token),
            _ => false,
        };
        result
    }

    async fn download_keys(&self) -> AppResult<Arc<jwt::Verifier>> {
        let url = self
            .jwks_url
            .as_deref()
            .ok_or_else(|| AppError::unauthorized("bearer tokens are not accepted here"))?;
        let unavailable = |why: String| {
            AppError::new(
                crate::error::Kind::Unavailable,
                format!("index at {url} unavailable for token keys: {why}"),
            )
        };
        let client = reqwest::Client::builder()
            .timeout(self.http_timeout)
            .build()
            .map_err(AppError::internal)?;
        let resp = client.get(url).send().await.map_err(|e| unavailable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!("status {}", resp.status())));
        }
        let jwks: serde_json::Value = resp.json().await.map_err(|e| unavailable(e.to_string()))?;
        let keys = jwt::Verifier::keys_from_jwks(&jwks);
        if keys.is_empty() {
            return Err(unavailable("no Ed25519 keys in the JWKS".into()));
        }
        log::info!("fetched {} token key(s) from {url}", keys.len());
        let v = Arc::new(jwt::Verifier::new(&keys, &self.audience));
        if let Ok(mut slot) = self.verifier.write() {
            *slot = Some(v.clone());
        }
        Ok(v)
    }

    /// Delegates token checks to an external index (`standalone = false`).
    pub fn set_remote(&mut self, remote: RemoteIndex) {
        self.remote = Some(remote);
    }

    pub fn remote(&self) -> Option<&RemoteIndex> {
        self.remote.as_ref()
    }

    /// Delegated-decision counters (both roles), shared with the remote index client.
    pub fn stats(&self) -> Arc<DelegateStats> {
        self.stats.clone()
    }

    fn local(&self) -> AppResult<&Index> {
        self.index
            .as_ref()
            .ok_or_else(|| AppError::new(crate::error::Kind::Unavailable, "this server has no index"))
    }

    /// Who is calling. Bad credentials are an error (401 or 403), never silently anonymous.
    pub async fn identify(&self, req: &HttpRequest) -> AppResult<Identity> {
        let creds = Credentials::from_request(req);
        if let Some(remote) = &self.remote {
            // No local users or tokens here: only the index can vouch for a token.
            return match creds {
                Credentials::None => Ok(Identity::Anonymous),
                Credentials::Token(sigs) => Ok(Identity::Delegated(TokenClaim::new(
                    authorization(req).unwrap_or_default(),
                    &sigs,
                ))),
                Credentials::Basic { .. } => Err(remote.token_required()),
                // v2 tokens are signed by the index: verified here with its public key.
                Credentials::Bearer(token) => {
                    let claims = self.verify_bearer(&token).await?;
                    Ok(Identity::Bearer(claims, Holder::Unchecked))
                }
            };
        }
        match creds {
            Credentials::None => Ok(Identity::Anonymous),
            Credentials::Basic { user, password } if crate::index::pats::is_secret(&password) => {
                self.pat_login(&user, &password, self.client_address(req)).await
            }
            Credentials::Basic { user, password } => self
                .login(&user, &password, self.client_address(req))
                .await
                .map(Identity::User),
            Credentials::Token(sigs) => {
                let grant = self.token(sigs).await?;
                let holder = self.holder(&grant.user, grant.generation, grant.pat.as_deref())?;
                Ok(Identity::Token(grant, holder))
            }
            Credentials::Bearer(token) => {
                let claims = self.verify_bearer(&token).await?;
                let holder = self.holder(&claims.sub, claims.gen, claims.pat.as_deref())?;
                Ok(Identity::Bearer(claims, holder))
            }
        }
    }

    /// The account a web UI session (its cookie value) stands for, with the session, if the
    /// session is live and the account still stands as it did when the session opened.
    pub async fn session(&self, id: &str) -> AppResult<Option<(Principal, crate::index::sessions::Session)>> {
        let index = self.local()?.clone();
        let id = id.to_string();
        let Some(session) = index.run(move |ix| ix.session(&id)).await? else {
            return Ok(None);
        };
        match self.holder(&session.user, session.generation, None) {
            Ok(Holder::User(p)) => Ok(Some((p, session))),
            _ => Ok(None),
        }
    }

    /// The holder of a token issued to `user` under `generation`, if the account still stands
    /// as it did then: a changed password, a deactivation or a lost admin role end every token
    /// issued before, also across restarts (the generation is stored with the account). A token
    /// issued on an access token (`pat`) also needs that one alive.
    fn holder(&self, user: &str, generation: u64, pat: Option<&str>) -> AppResult<Holder> {
        if user.is_empty() {
            return Ok(Holder::Anonymous);
        }
        if let Some(id) = pat {
            self.pat_alive(id, user)?;
        }
        match self.local()?.user(user)? {
            Some(account) if account.active && account.generation == generation => Ok(Holder::User(Principal {
                name: account.username,
                admin: account.admin,
                generation,
            })),
            _ => Err(AppError::unauthorized("Token is no longer valid; please log in again")),
        }
    }

    /// Checks a username and password: 401 if wrong, 403 if the account is not active, 429
    /// while the account or the address has used up its failed logins.
    pub async fn login(&self, user: &str, password: &str, address: Option<IpAddr>) -> AppResult<Principal> {
        let index = self.local()?.clone();
        // Inline for the same reason as `repo_meta`: a cached read on every authenticated call.
        let account = index.user(user)?;
        // A credential verified before costs nothing and proves nothing new: only guesses are
        // throttled (a guess never hits the cache, which holds verified passwords only).
        let cached = account
            .as_ref()
            .is_some_and(|a| self.cache.hit(user, password, &a.password));
        if !cached {
            self.throttle.admit(user, address)?;
        }
        let wrong = || AppError::unauthorized("Wrong login/password, please try again");
        let Some(account) = account else {
            // Spend the same time as a real check so usernames cannot be probed by timing.
            let (pw, ix) = (password.to_string(), index.clone());
            let _ = self
                .throttle
                .hash(move || ix.dummy_phc().map(|phc| password::verify(&pw, &phc)))
                .await?;
            self.throttle.failed(user, address);
            return Err(wrong());
        };
        if !cached {
            let flight = self.cache.flight(user, password);
            let _turn = flight.lock().await;
            // Another request may have verified this very credential while we waited.
            if !self.cache.hit(user, password, &account.password) {
                let (pw, phc) = (password.to_string(), account.password.clone());
                let ok = self.throttle.hash(move || password::verify(&pw, &phc)).await;
                if matches!(ok, Ok(true)) {
                    self.cache.remember(user, password, &account.password);
                }
                self.cache.land(user, password);
                if !ok? {
                    self.throttle.failed(user, address);
                    return Err(wrong());
                }
                self.throttle.succeeded(user);
            }
        }
        if !account.active {
            return Err(AppError::forbidden(
                "Account is not Active. Please ask an administrator to activate it",
            ));
        }
        Ok(Principal {
            name: account.username,
            admin: account.admin,
            generation: account.generation,
        })
    }

    async fn token(&self, signatures: Vec<String>) -> AppResult<TokenGrant> {
        let index = self.local()?.clone();
        index
            .run(move |ix| {
                for s in &signatures {
                    if let Some(g) = ix.token(s)? {
                        return Ok(Some(g));
                    }
                }
                Ok(None)
            })
            .await?
            .ok_or_else(|| AppError::unauthorized("Invalid or expired token"))
    }

    pub async fn repo_meta(&self, repo: &RepoName) -> AppResult<Option<Repo>> {
        match &self.index {
            // Read inline, not on the blocking pool: this lookup is on every request, sled serves
            // it from its page cache in well under a microsecond, and a blocking-pool round
            // trip would cost more than the read itself.
            Some(ix) => ix.repo(repo),
            None => Ok(None),
        }
    }

    /// May `who` do `access` on `repo`? Err is the answer to give: 401, 403, or 404 where the
    /// repository must stay invisible.
    pub async fn check(&self, who: &Identity, repo: &RepoName, access: Access) -> AppResult<()> {
        if let Some(remote) = &self.remote {
            return match who {
                Identity::Delegated(claim) => remote.confirm(claim, repo, access).await.map(drop),
                // The JWT itself lists what the index granted; no round trip needed.
                Identity::Bearer(..) => policy::decide(who, repo, None, access),
                _ => Err(remote.token_required()),
            };
        }
        // Every use sees the repository as it is now (visibility, collaborators), so a token
        // never outlives the rights it was issued under.
        let meta = self.repo_meta(repo).await?;
        policy::decide(who, repo, meta.as_ref(), access)
    }

    /// Delegated mode: the index confirms `access` on the repository the token claims.
    async fn confirm_claimed(
        remote: &RemoteIndex,
        who: &Identity,
        access: Access,
    ) -> AppResult<(RepoName, remote::Confirmed)> {
        let Identity::Delegated(claim) = who else {
            return Err(remote.token_required());
        };
        let repo = claim
            .claimed_repo()
            .ok_or_else(|| AppError::unauthorized("Token names no repository"))?
            .clone();
        let confirmed = remote.confirm(claim, &repo, access).await?;
        Ok((repo, confirmed))
    }

    /// The records among `records` that `who` may see in a listing (search, the catalog): the
    /// same rule as a read, decided on the record at hand without another lookup.
    pub fn visible<'a>(&self, who: &Identity, records: impl IntoIterator<Item = &'a Repo>) -> Vec<&'a Repo> {
        records
            .into_iter()
            .filter(|r| {
                RepoName::parse(&r.name).is_ok_and(|name| policy::decide(who, &name, Some(r), Access::Read).is_ok())
            })
            .collect()
    }

    /// Which of the `wanted` accesses `who` may be granted on `repo` (the scopes of a v2 token).
    pub async fn grantable(&self, who: &Identity, repo: &RepoName, wanted: &[Access]) -> AppResult<Vec<Access>> {
        let meta = self.repo_meta(repo).await?;
        Ok(wanted
            .iter()
            .copied()
            .filter(|a| policy::grant(who, repo, meta.as_ref(), *a))
            .collect())
    }

    /// Like `check`, as a yes/no (for filtering lists).
    pub async fn allows(&self, who: &Identity, repo: &RepoName, access: Access) -> AppResult<bool> {
        Ok(self.check(who, repo, access).await.is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_forms() {
        assert_eq!(Credentials::parse("Basic Og=="), Credentials::None);
        assert_eq!(
            Credentials::parse("Basic YWxpY2U6c2VjcmV0"),
            Credentials::Basic {
                user: "alice".into(),
                password: "secret".into()
            }
        );
        assert_eq!(Credentials::parse("Token"), Credentials::None);
        assert_eq!(
            Credentials::parse("Token Token signature=abc,repository=\"a/b\",access=read"),
            Credentials::Token(vec!["abc".into()])
        );
        assert_eq!(Credentials::parse("Bearer x.y.z"), Credentials::Bearer("x.y.z".into()));
    }
}
