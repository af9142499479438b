//! `[storage]`: which driver holds the registry's data, and `[storage.s3]` for the S3 one.

use super::{invalid, ConfigError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Storage driver: `fs` (local filesystem, the embedded default) or `s3`.
    pub driver: String,
    /// Root of the registry's files (`fs`); empty = `<data_dir>/registry`.
    pub path: PathBuf,
    /// The S3 driver's settings (`driver = "s3"`).
    pub s3: S3Config,
}

/// An S3-compatible bucket (AWS S3, Garage, MinIO, Ceph RGW). Empty credentials, region and
/// endpoint fall back to the usual AWS environment variables.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// `http(s)://host:port` of the S3 API; empty = AWS (or `AWS_ENDPOINT_URL`).
    pub endpoint: String,
    /// The region the server signs with (Garage: its `s3_region`); empty = `AWS_REGION`, else
    /// `us-east-1`.
    pub region: String,
    pub bucket: String,
    /// Where in the bucket Skiff keeps its keys (`skiff` puts them under `skiff/`).
    pub prefix: String,
    /// Empty = `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// Empty = `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// Path-style requests (`endpoint/bucket/key`), as Garage, MinIO and Ceph want.
    pub path_style: bool,
    /// Objects smaller than this go in one PUT; larger ones in multipart parts of this size.
    /// Memory per upload in flight is bounded by a few parts.
    pub part_size_mib: u64,
    /// Answer blob GETs with a 307 to a presigned URL, so bytes flow from the store to clients.
    pub redirect: bool,
    /// Lifetime of a presigned URL.
    pub redirect_secs: u64,
    /// This node's copies of the blobs it serves, least recently used out first (see
    /// `storage::cache`); 0 = none, every read goes to the store.
    pub cache_mib: u64,
    /// Where those copies live; empty = `<data_dir>/s3-cache`. One per process.
    pub cache_dir: PathBuf,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("path_style", &self.path_style)
            .field("part_size_mib", &self.part_size_mib)
            .field("redirect", &self.redirect)
            .field("redirect_secs", &self.redirect_secs)
            .field("cache_mib", &self.cache_mib)
            .field("cache_dir", &self.cache_dir)
            .finish()
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            driver: "fs".into(),
            path: PathBuf::new(),
            s3: S3Config::default(),
        }
    }
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: String::new(),
            region: String::new(),
            bucket: String::new(),
            prefix: String::new(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            path_style: true,
            part_size_mib: 8,
            redirect: false,
            redirect_secs: 600,
            cache_mib: 4096,
            cache_dir: PathBuf::new(),
        }
    }
}

impl StorageConfig {
    pub fn is_s3(&self) -> bool {
        self.driver == "s3"
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match self.driver.as_str() {
            "fs" => Ok(()),
            "s3" => self.s3.validate(),
            other => Err(invalid(
                "storage.driver",
                format!("unknown driver {other:?}; known: fs, s3"),
            )),
        }
    }
}

impl S3Config {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.bucket.is_empty() {
            return Err(invalid("storage.s3.bucket", "is required with driver = \"s3\""));
        }
        let scheme_ok = ["http://", "https://"].iter().any(|s| self.endpoint.starts_with(s));
        if !self.endpoint.is_empty() && !scheme_ok {
            return Err(invalid("storage.s3.endpoint", "must start with http:// or https://"));
        }
        let prefix = self.prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
            return Err(invalid("storage.s3.prefix", "must be plain path segments"));
        }
        // S3 refuses multipart parts under 5 MiB (except the last) and allows at most 10,000.
        if !(5..=512).contains(&self.part_size_mib) {
            return Err(invalid("storage.s3.part_size_mib", "must be between 5 and 512"));
        }
        if !(1..=7 * 24 * 3600).contains(&self.redirect_secs) {
            return Err(invalid(
                "storage.s3.redirect_secs",
                "must be between 1 and 604800 (7 days)",
            ));
        }
        Ok(())
    }

    /// The key prefix with one trailing `/`, or empty.
    pub fn key_prefix(&self) -> String {
        let p = self.prefix.trim_matches('/');
        if p.is_empty() {
            String::new()
        } else {
            format!("{p}/")
        }
    }
}
