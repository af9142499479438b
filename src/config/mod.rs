//! `registry.toml`: typed defaults, then the file, then `SKIFF_*` environment overrides, then
//! validation. Unknown keys are refused so a typo never silently falls back to a default.

mod storage;
pub use storage::{S3Config, StorageConfig};

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: String,
    /// true: this process is registry and index; false: registry only, trusting `index_endpoint`.
    pub standalone: bool,
    /// Base URL of the external index (required when `standalone = false`).
    pub index_endpoint: String,
    /// Where sled (index) and, by default, the registry's storage live.
    pub data_dir: PathBuf,
    /// Serve the registry API (v1 images/tags, v2). false = an index-only process.
    pub registry: bool,
    /// The URL clients reach this server at (`https://registry.lan`), for token realms and
    /// `X-Docker-Endpoints`; empty = from the request's `Host`, checked to be a plain host.
    pub public_url: String,
    /// Honour `X-Forwarded-Host` / `X-Forwarded-Proto` / `Forwarded` (only behind a proxy that
    /// sets them; otherwise any client could choose the realm it is sent to).
    pub trust_forwarded_headers: bool,
    pub index: IndexConfig,
    pub storage: StorageConfig,
    pub delegate: DelegateConfig,
    pub v2: V2Config,
    pub ui: UiConfig,
    pub limits: LimitsConfig,
    pub gc: GcConfig,
    pub quotas: QuotasConfig,
    pub retention: RetentionConfig,
    pub audit: AuditConfig,
    pub webhooks: WebhooksConfig,
}

/// Webhooks: how events are sent (see `crate::webhooks` and the README's "Webhooks"), and the
/// global hooks, which get the events of every repository their pattern matches.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Seconds one attempt may take (connect, send, the answer's status line).
    pub timeout_secs: u64,
    /// Attempts per delivery before it is marked failed.
    pub max_attempts: u32,
    /// Seconds before the first retry; each next one waits twice as long, at most an hour.
    pub backoff_secs: u64,
    /// Let repositories' hooks send to loopback and link-local addresses (this host, cloud
    /// metadata services). Off: only the operator's global hooks may.
    pub allow_loopback: bool,
    /// `[[webhooks.hook]]` tables.
    #[serde(rename = "hook")]
    pub hooks: Vec<GlobalHook>,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            timeout_secs: 10,
            max_attempts: 8,
            backoff_secs: 5,
            allow_loopback: false,
            hooks: Vec::new(),
        }
    }
}

/// A global hook: an operator's, for every repository `repositories` matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalHook {
    pub url: String,
    /// The HMAC key of `X-Skiff-Signature-256`; empty = unsigned.
    #[serde(default)]
    pub secret: String,
    /// `push`, `delete`.
    #[serde(default = "default_hook_events")]
    pub events: Vec<String>,
    /// Repositories it gets events of: a glob (`*` any characters, `/` included; `?` one).
    #[serde(default = "default_hook_repositories")]
    pub repositories: String,
}

fn default_hook_events() -> Vec<String> {
    vec!["push".to_string()]
}

fn default_hook_repositories() -> String {
    "*".to_string()
}

/// Storage quotas per namespace: the distinct bytes of the blobs its repositories reference
/// (see `registry::references`). A push that would take a namespace over its quota is refused.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotasConfig {
    /// The quota of every namespace not listed in `namespaces`; 0 = unlimited.
    pub default: ByteSize,
    /// Quotas of single namespaces (`team = "50GiB"`); 0 = unlimited.
    pub namespaces: std::collections::BTreeMap<String, ByteSize>,
}

impl QuotasConfig {
    /// The quota of namespace `ns` in bytes, `None` when unlimited.
    pub fn limit(&self, ns: &str) -> Option<u64> {
        let ByteSize(bytes) = self.namespaces.get(ns).copied().unwrap_or(self.default);
        (bytes > 0).then_some(bytes)
    }
}

/// A size in bytes, written as a number or a string with a unit (`"512MiB"`, `"50 GB"`,
/// `"1.5TiB"`, `"0"`): binary units (KiB, MiB, GiB, TiB) are powers of 1024, decimal ones (KB,
/// MB, GB, TB) powers of 1000; `B` or no unit is bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(into = "u64")]
pub struct ByteSize(pub u64);

/// Bytes in binary units (the inverse of [`ByteSize`] for people), three significant digits (`0 B`, `512 B`, `1.50 KiB`, `23.4 GiB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ if value < 10.0 => format!("{value:.2} {}", UNITS[unit]),
        _ if value < 100.0 => format!("{value:.1} {}", UNITS[unit]),
        _ => format!("{value:.0} {}", UNITS[unit]),
    }
}

impl From<ByteSize> for u64 {
    fn from(b: ByteSize) -> u64 {
        b.0
    }
}

impl std::str::FromStr for ByteSize {
    type Err = String;
    fn from_str(raw: &str) -> Result<ByteSize, String> {
        let t = raw.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (number, unit) = (&t[..split], t[split..].trim());
        let factor: u64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1000,
            "m" | "mb" => 1000_u64.pow(2),
            "g" | "gb" => 1000_u64.pow(3),
            "t" | "tb" => 1000_u64.pow(4),
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            "tib" => 1 << 40,
            _ => {
                return Err(format!(
                    "{raw:?}: unknown unit {unit:?} (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)"
                ))
            }
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{raw:?} is not a size like \"50GiB\" or \"0\""))?;
        let bytes = value * factor as f64;
        if !bytes.is_finite() || bytes >= u64::MAX as f64 {
            return Err(format!("{raw:?} is too large"));
        }
        Ok(ByteSize(bytes as u64))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Retention: which tags a run (`skiff retention`, the API, the schedule) deletes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Run retention every this many seconds (the first run after one interval); 0 = only
    /// when asked.
    pub interval_secs: u64,
    /// `[[retention.policy]]` tables; a repository follows the first whose pattern matches it.
    #[serde(rename = "policy")]
    pub policies: Vec<RetentionPolicy>,
}

/// One policy. A tag is kept when it matches `protect`, or is among the `keep_newest` most
/// recently pushed of the others, or was pulled or pushed within `unpulled_days`; every other
/// tag of a matching repository is deleted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Repositories it applies to: a glob (`*` any characters, `/` included; `?` one).
    pub repositories: String,
    /// Keep this many of the newest tags (by push time), protected ones not counted.
    pub keep_newest: Option<u64>,
    /// Keep tags pulled (or pushed) within this many days.
    pub unpulled_days: Option<u64>,
    /// Tags never deleted: globs like `latest`, `v*`.
    pub protect: Vec<String>,
}

/// The audit log (who pushed, deleted or changed what, when, from where): kept in the index
/// database and pruned in the background; a registry-only process writes its entries to the
/// log instead (see the README's "Audit log").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Entries older than this many days are removed; 0 = no age limit.
    pub keep_days: u64,
    /// At most this many entries are kept (the oldest go first); 0 = no count limit.
    pub max_entries: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            keep_days: 90,
            max_entries: 1_000_000,
        }
    }
}

/// Garbage collection (it runs beside pushes and pulls).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcConfig {
    /// Unreferenced blobs written more recently than this are kept, so a push that has stored
    /// a blob and not yet referred to it never loses it.
    pub grace_secs: u64,
    /// Run a collection every this many seconds (the first one after one interval); 0 = only
    /// when asked (`skiff gc`, the API).
    pub interval_secs: u64,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            grace_secs: 3600,
            interval_secs: 0,
        }
    }
}

/// What one client may take of the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Failed logins allowed per account within `login_window_secs`; then 429 with
    /// `Retry-After` until the window ends (also for the right password). 0 = no limit.
    pub login_failures_per_account: u32,
    /// Failed logins allowed per client address within `login_window_secs`. 0 = no limit.
    pub login_failures_per_address: u32,
    pub login_window_secs: u64,
    /// Password hashes computed at once (PBKDF2 is slow on purpose); 0 = one less than the
    /// number of cores (at least one), so logins never take every core from other requests.
    pub password_hash_threads: usize,
    /// Seconds an upload body may send nothing before the request is ended (408, connection
    /// closed); a v2 upload session stays resumable from the bytes stored so far.
    pub body_timeout_secs: u64,
    /// Upload bodies one user (or, unauthenticated, one client address) may send at once;
    /// more get 429 with `Retry-After`. 0 = no limit.
    pub uploads_per_user: usize,
    /// Seconds a connection may go without the client taking any of the data sent to it (a
    /// download whose client stopped reading, or vanished) before it is closed; 0 = never.
    pub send_timeout_secs: u64,
    /// Comments one account may post within a minute; more get 429 with `Retry-After`.
    /// 0 = no limit.
    pub comments_per_minute: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            login_failures_per_account: 10,
            login_failures_per_address: 30,
            login_window_secs: 60,
            password_hash_threads: 0,
            body_timeout_secs: 60,
            uploads_per_user: 16,
            send_timeout_secs: 60,
            comments_per_minute: 5,
        }
    }
}

impl LimitsConfig {
    pub fn send_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.send_timeout_secs)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiConfig {
    /// Directory the web UI is served from (with ETag and Last-Modified); when it has no
    /// `index.html`, the copy built into the binary is served instead.
    pub static_dir: PathBuf,
    /// How long a web UI session lasts after signing in.
    pub session_hours: u64,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            static_dir: PathBuf::from("static"),
            session_hours: 168,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// Anyone may create an account; it is active at once.
    Open,
    /// Accounts are made by an operator (`skiff user add`) only.
    Closed,
    /// Anyone may register, but an admin must activate the account.
    Activation,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    pub registration: Registration,
    /// Lifetime of v1 tokens issued by the index, in seconds.
    pub token_ttl_secs: u64,
    /// `X-Docker-Endpoints`: registries holding the data (`host:port`); empty = this server.
    pub endpoints: Vec<String>,
    /// PBKDF2-HMAC-SHA256 iterations for new password hashes.
    pub pbkdf2_rounds: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DelegateConfig {
    /// Seconds a positive token answer from the external index is remembered.
    pub cache_ttl_secs: u64,
    /// Seconds to wait for the external index before failing closed.
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct V2Config {
    /// Serve the v2 / OCI distribution API. false makes Docker 1.6-1.9 fall back to v1.
    pub enabled: bool,
    /// Lifetime of v2 bearer tokens (JWT), in seconds.
    pub token_ttl_secs: u64,
    /// Service name put in the Bearer challenge and checked in the JWT audience.
    pub service: String,
    /// Seconds after which an upload session with no activity is removed.
    pub upload_expiry_secs: u64,
    /// standalone = false: the index's Ed25519 token key (base64url); empty = fetch its JWKS.
    pub jwt_public_key: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "0.0.0.0:5000".into(),
            standalone: true,
            index_endpoint: String::new(),
            data_dir: PathBuf::from("./data"),
            registry: true,
            public_url: String::new(),
            trust_forwarded_headers: false,
            index: IndexConfig::default(),
            storage: StorageConfig::default(),
            delegate: DelegateConfig::default(),
            v2: V2Config::default(),
            ui: UiConfig::default(),
            limits: LimitsConfig::default(),
            gc: GcConfig::default(),
            quotas: QuotasConfig::default(),
            retention: RetentionConfig::default(),
            audit: AuditConfig::default(),
            webhooks: WebhooksConfig::default(),
        }
    }
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            registration: Registration::Open,
            token_ttl_secs: 3600,
            endpoints: Vec::new(),
            pbkdf2_rounds: 600_000,
        }
    }
}

impl Default for DelegateConfig {
    fn default() -> Self {
        DelegateConfig {
            cache_ttl_secs: 60,
            timeout_secs: 5,
        }
    }
}

impl Default for V2Config {
    fn default() -> Self {
        V2Config {
            enabled: true,
            token_ttl_secs: 300,
            service: "skiff".into(),
            upload_expiry_secs: 3600,
            jwt_public_key: String::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("invalid config file {0}: {1}")]
    Parse(PathBuf, String),
    #[error("invalid value for `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

impl Config {
    /// Defaults, overlaid by the file (if given), then by `SKIFF_*` variables, then validated.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with_env(path, &env)
    }

    pub fn load_with_env(path: Option<&Path>, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|e| ConfigError::Read(p.into(), e))?,
            None => String::new(),
        };
        Self::from_text(&text, path.unwrap_or(Path::new("")), env)
    }

    /// The config file's `text` (read from `origin`, named in errors), overlaid by `env`, then
    /// validated. Pure, so the property tests can drive it with any text.
    pub fn from_text(text: &str, origin: &Path, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let mut table = text
            .parse::<toml::Table>()
            .map_err(|e| ConfigError::Parse(origin.into(), e.to_string()))?;
        apply_env(&mut table, env)?;
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(origin.into(), e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen.parse::<SocketAddr>().map_err(|_| {
            invalid(
                "listen",
                format!("{:?} is not an address like 0.0.0.0:5000", self.listen),
            )
        })?;
        if !self.standalone {
            let ep = &self.index_endpoint;
            if !ep.starts_with("http://") {
                // No TLS stack is built in (reqwest without a TLS feature): refuse at start
                // rather than fail every token check later.
                let reason = if ep.starts_with("https://") {
                    "https is not supported for the index yet; use http://, e.g. on a trusted LAN"
                } else {
                    "standalone = false needs the external index's URL, like http://index.lan:5000"
                };
                return Err(invalid("index_endpoint", reason));
            }
            if !self.registry {
                return Err(invalid(
                    "registry",
                    "a process with standalone = false must serve the registry",
                ));
            }
        }
        if !self.registry && self.index.endpoints.is_empty() {
            return Err(invalid(
                "index.endpoints",
                "an index-only process (registry = false) must list the registries holding the data",
            ));
        }
        let url = self.public_url.trim_end_matches('/');
        if !url.is_empty() {
            let host = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
            if !host.is_some_and(crate::names::valid_host) {
                return Err(invalid(
                    "public_url",
                    format!("{url:?} must be http:// or https:// and a host[:port], like https://registry.lan"),
                ));
            }
        }
        // The kernel takes the timeout in milliseconds, as a 32-bit number.
        if self.limits.send_timeout_secs > 86_400 {
            return Err(invalid("limits.send_timeout_secs", "must be at most 86400 (a day)"));
        }
        if self.index.token_ttl_secs == 0 {
            return Err(invalid("index.token_ttl_secs", "must be at least 1"));
        }
        if self.index.pbkdf2_rounds < 10_000 {
            return Err(invalid("index.pbkdf2_rounds", "must be at least 10000"));
        }
        for ep in &self.index.endpoints {
            if ep.is_empty() || ep.contains('/') || ep.contains(char::is_whitespace) {
                return Err(invalid("index.endpoints", format!("{ep:?} must be host[:port]")));
            }
        }
        self.storage.validate()?;
        if self.delegate.timeout_secs == 0 {
            return Err(invalid("delegate.timeout_secs", "must be at least 1"));
        }
        if !self.v2.jwt_public_key.is_empty() && self.v2_public_key().is_none() {
            return Err(invalid(
                "v2.jwt_public_key",
                "must be a base64url Ed25519 public key (32 bytes)",
            ));
        }
        if self.v2.token_ttl_secs == 0 {
            return Err(invalid("v2.token_ttl_secs", "must be at least 1"));
        }
        for (i, p) in self.retention.policies.iter().enumerate() {
            let key = format!("retention.policy[{i}]");
            if p.repositories.is_empty() {
                return Err(invalid(&key, "needs `repositories`, a pattern like \"team/*\""));
            }
            if p.keep_newest.is_none() && p.unpulled_days.is_none() {
                return Err(invalid(
                    &key,
                    "needs `keep_newest` or `unpulled_days` (or both): without either it keeps every tag",
                ));
            }
        }
        let w = &self.webhooks;
        if w.timeout_secs == 0 || w.timeout_secs > 600 {
            return Err(invalid("webhooks.timeout_secs", "must be 1 to 600"));
        }
        if w.max_attempts == 0 || w.max_attempts > 100 {
            return Err(invalid("webhooks.max_attempts", "must be 1 to 100"));
        }
        if w.backoff_secs == 0 || w.backoff_secs > 3600 {
            return Err(invalid("webhooks.backoff_secs", "must be 1 to 3600"));
        }
        for (i, h) in w.hooks.iter().enumerate() {
            let key = format!("webhooks.hook[{i}]");
            crate::webhooks::target::check_url(&h.url).map_err(|e| invalid(&key, e))?;
            crate::webhooks::check_events(&h.events).map_err(|e| invalid(&key, e))?;
        }
        if self.limits.body_timeout_secs == 0 {
            return Err(invalid("limits.body_timeout_secs", "must be at least 1"));
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> SocketAddr {
        // validate() has checked it; fall back to the default rather than panic.
        self.listen
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 5000)))
    }

    pub fn storage_root(&self) -> PathBuf {
        self.or_in_data_dir(&self.storage.path, "registry")
    }

    /// The S3 driver's blob cache (`[storage.s3] cache_dir`).
    pub fn s3_cache_dir(&self) -> PathBuf {
        self.or_in_data_dir(&self.storage.s3.cache_dir, "s3-cache")
    }

    /// A configured directory, or `data_dir/default` when the setting is empty.
    fn or_in_data_dir(&self, configured: &Path, default: &str) -> PathBuf {
        if configured.as_os_str().is_empty() {
            self.data_dir.join(default)
        } else {
            configured.to_path_buf()
        }
    }

    /// The operator's local socket: the CLI talks to a running server through it.
    pub fn local_socket_path(&self) -> PathBuf {
        self.data_dir.join("skiff.sock")
    }

    pub fn index_db_path(&self) -> PathBuf {
        self.data_dir.join("index").join("v1")
    }

    /// The configured index token key, decoded.
    pub fn v2_public_key(&self) -> Option<Vec<u8>> {
        use base64::Engine;
        let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(self.v2.jwt_public_key.trim().trim_end_matches('='))
            .ok()?;
        (key.len() == 32).then_some(key)
    }

    pub fn jwt_key_path(&self) -> PathBuf {
        self.data_dir.join("index").join("jwt-ed25519.pk8")
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// Every key the schema has, as a dotted path, with its default value (which gives its type).
pub(crate) fn known_keys() -> Vec<(String, toml::Value)> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut Vec<(String, toml::Value)>) {
        for (k, v) in table {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => walk(&path, t, out),
                other => out.push((path, other.clone())),
            }
        }
    }
    let mut out = Vec::new();
    if let Ok(toml::Value::Table(t)) = toml::Value::try_from(Config::default()) {
        walk("", &t, &mut out);
    }
    out
}

/// `SKIFF_INDEX_TOKEN_TTL_SECS=60` overrides `[index] token_ttl_secs`. Lists are comma-separated.
fn apply_env(table: &mut toml::Table, env: &[(String, String)]) -> Result<(), ConfigError> {
    let keys = known_keys();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("SKIFF_") else {
            continue;
        };
        if rest == "LOG" || rest == "CONFIG" {
            continue;
        }
        let Some((path, default)) = keys
            .iter()
            .find(|(path, _)| path.replace('.', "_").eq_ignore_ascii_case(rest))
        else {
            log::warn!("ignoring unknown environment variable {name}");
            continue;
        };
        let value = match default {
            toml::Value::Boolean(_) => match raw.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => toml::Value::Boolean(true),
                "0" | "false" | "no" | "off" => toml::Value::Boolean(false),
                _ => return Err(invalid(path, format!("{name}={raw:?} is not a boolean"))),
            },
            toml::Value::Integer(_) => toml::Value::Integer(
                raw.trim()
                    .parse()
                    .map_err(|_| invalid(path, format!("{name}={raw:?} is not an integer")))?,
            ),
            toml::Value::Array(_) => toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.into()))
                    .collect(),
            ),
            _ => toml::Value::String(raw.clone()),
        };
        let mut parts: Vec<&str> = path.split('.').collect();
        let last = parts.pop().unwrap_or_default();
        let mut cur = &mut *table;
        for p in parts {
            let entry = cur
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cur = match entry {
                toml::Value::Table(t) => t,
                _ => return Err(invalid(path, "is not a table in the config file")),
            };
        }
        cur.insert(last.to_string(), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_read_human_sizes() {
        let c: Config = toml::from_str(
            "[quotas]\ndefault = \"1.5KiB\"\n[quotas.namespaces]\nteam = \"50GiB\"\nfree = \"0\"\nraw = 1000\n",
        )
        .unwrap();
        assert_eq!(c.quotas.limit("anyone"), Some(1536));
        assert_eq!(c.quotas.limit("team"), Some(50 << 30));
        assert_eq!(c.quotas.limit("free"), None, "0 is unlimited");
        assert_eq!(c.quotas.limit("raw"), Some(1000));
        assert_eq!(Config::default().quotas.limit("x"), None);
        for (raw, bytes) in [("10 MB", 10_000_000), ("2tib", 2 << 40), ("7", 7), ("3k", 3000)] {
            assert_eq!(raw.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{raw}");
        }
        for bad in ["", "lots", "5 parsecs", "-1", "1e99TB"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
    }

    #[test]
    fn env_overrides_nested_keys() {
        let env = vec![
            ("SKIFF_INDEX_TOKEN_TTL_SECS".to_string(), "42".to_string()),
            ("SKIFF_STANDALONE".to_string(), "true".to_string()),
            ("SKIFF_INDEX_ENDPOINTS".to_string(), "a:1, b:2".to_string()),
        ];
        let c = Config::load_with_env(None, &env).unwrap();
        assert_eq!(c.index.token_ttl_secs, 42);
        assert_eq!(c.index.endpoints, vec!["a:1", "b:2"]);
    }

    #[test]
    fn invalid_values_name_the_key() {
        let env = vec![("SKIFF_STANDALONE".to_string(), "false".to_string())];
        let err = Config::load_with_env(None, &env).unwrap_err().to_string();
        assert!(err.contains("index_endpoint"), "{err}");
        let env = vec![("SKIFF_LISTEN".to_string(), "nope".to_string())];
        let err = Config::load_with_env(None, &env).unwrap_err().to_string();
        assert!(err.contains("listen"), "{err}");
    }

    #[test]
    fn retention_policies_parse_and_need_a_rule() {
        let text = "[retention]\ninterval_secs = 60\n[[retention.policy]]\nrepositories = \"team/*\"\nkeep_newest = 3\nprotect = [\"latest\"]\n";
        let c = Config::from_text(text, Path::new("t"), &[]).unwrap();
        assert_eq!(c.retention.interval_secs, 60);
        assert_eq!(c.retention.policies[0].keep_newest, Some(3));
        assert_eq!(c.retention.policies[0].protect, vec!["latest"]);
        let err = Config::from_text("[[retention.policy]]\nrepositories = \"x\"\n", Path::new("t"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("retention.policy[0]"), "{err}");
        let typo = Config::from_text(
            "[[retention.policy]]\nrepositories = \"x\"\nkeep = 1\n",
            Path::new("t"),
            &[],
        );
        assert!(typo.is_err(), "unknown keys are refused");
    }

    #[test]
    fn webhooks_parse_with_defaults_and_refuse_bad_hooks() {
        let text = "[webhooks]\nbackoff_secs = 1\n[[webhooks.hook]]\nurl = \"http://127.0.0.1:9/x\"\n";
        let c = Config::from_text(text, Path::new("t"), &[]).unwrap();
        assert_eq!((c.webhooks.timeout_secs, c.webhooks.max_attempts), (10, 8));
        assert_eq!(c.webhooks.backoff_secs, 1);
        let hook = &c.webhooks.hooks[0];
        assert_eq!(
            (hook.events.clone(), hook.repositories.as_str()),
            (vec!["push".to_string()], "*")
        );
        for bad in [
            "[[webhooks.hook]]\nurl = \"ftp://x/\"\n",
            "[[webhooks.hook]]\nurl = \"http://x/\"\nevents = [\"pull\"]\n",
            "[[webhooks.hook]]\nurl = \"http://x/\"\nsecrt = \"typo\"\n",
            "[webhooks]\ntimeout_secs = 0\n",
        ] {
            assert!(Config::from_text(bad, Path::new("t"), &[]).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_have_defaults_and_refuse_a_zero_timeout() {
        let c = Config::load_with_env(None, &[]).unwrap();
        assert_eq!((c.limits.body_timeout_secs, c.limits.uploads_per_user), (60, 16));
        let env = vec![("SKIFF_LIMITS_UPLOADS_PER_USER".to_string(), "0".to_string())];
        assert_eq!(Config::load_with_env(None, &env).unwrap().limits.uploads_per_user, 0);
        let env = vec![("SKIFF_LIMITS_BODY_TIMEOUT_SECS".to_string(), "0".to_string())];
        let err = Config::load_with_env(None, &env).unwrap_err().to_string();
        assert!(err.contains("limits.body_timeout_secs"), "{err}");
    }
}
