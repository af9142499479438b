//! The S3 driver: every key is an object in one bucket, under an optional prefix, reached with
//! `object_store` (AWS S3, Garage, MinIO, Ceph RGW).
//!
//! Nothing here relies on conditional writes, which some servers ignore (Garage ignores
//! `If-None-Match: *`): blobs are content-addressed, so writing one twice writes the same bytes;
//! every other object is last-writer-wins, and S3 gives each key one answer at a time. Objects
//! are written whole (one PUT, or a multipart upload completed at once), so a reader sees the
//! old object or the new one, never a torn one, and a crashed writer leaves nothing visible.

mod read;
mod sink;

use super::driver::{ByteStream, Driver, Sink, Stat};
use super::keys;
use crate::config::S3Config;
use crate::digest::Hasher;
use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{ClientOptions, ObjectStore, PutPayload};
use std::collections::BTreeSet;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// Multipart parts uploaded at once per object being written: with the one being filled, the
/// memory an upload holds is at most this many parts plus one.
const PARTS_IN_FLIGHT: usize = 3;

#[derive(Debug, Clone)]
pub struct S3Driver {
    store: Arc<AmazonS3>,
    /// `prefix/` or empty: prepended to every key.
    prefix: String,
    location: String,
    part_size: usize,
}

fn to_io(e: object_store::Error) -> io::Error {
    io::Error::from(e)
}

impl S3Driver {
    /// A client for the bucket of `config` (nothing is sent yet).
    pub fn new(config: &S3Config) -> io::Result<S3Driver> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&config.bucket);
        if !config.endpoint.is_empty() {
            builder = builder.with_endpoint(&config.endpoint);
        }
        let region = match (config.region.as_str(), std::env::var("AWS_REGION")) {
            ("", Ok(env)) if !env.is_empty() => env,
            ("", _) => "us-east-1".to_string(),
            (r, _) => r.to_string(),
        };
        builder = builder.with_region(region);
        if !config.access_key_id.is_empty() {
            builder = builder.with_access_key_id(&config.access_key_id);
        }
        if !config.secret_access_key.is_empty() {
            builder = builder.with_secret_access_key(&config.secret_access_key);
        }
        let options = ClientOptions::new()
            .with_allow_http(config.endpoint.starts_with("http://"))
            .with_connect_timeout(Duration::from_secs(5))
            // A whole request, a read window or a part included (see `read`): long enough for
            // a slow client to take a window, short enough that a store that hangs is noticed.
            .with_timeout(Duration::from_secs(300));
        let store = builder
            .with_virtual_hosted_style_request(!config.path_style)
            // Blobs are hashed by the registry already (and verified before they become
            // visible); signing each payload would hash every byte a second time.
            .with_unsigned_payload(true)
            .with_client_options(options)
            .build()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let prefix = config.key_prefix();
        let endpoint = if config.endpoint.is_empty() {
            "aws"
        } else {
            config.endpoint.as_str()
        };
        Ok(S3Driver {
            store: Arc::new(store),
            location: format!("s3://{}/{} at {endpoint}", config.bucket, prefix),
            prefix,
            part_size: (config.part_size_mib as usize) << 20,
        })
    }

    fn path(&self, key: &str) -> io::Result<ObjectPath> {
        keys::check(key)?;
        ObjectPath::parse(format!("{}{key}", self.prefix)).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    }

    /// The key of a listed object.
    fn key_of<'a>(&self, location: &'a ObjectPath) -> &'a str {
        location
            .as_ref()
            .strip_prefix(self.prefix.as_str())
            .unwrap_or(location.as_ref())
    }

    /// A presigned GET URL for `key`, valid for `ttl`.
    pub async fn presigned_get(&self, key: &str, ttl: Duration) -> io::Result<String> {
        let path = self.path(key)?;
        let url = self
            .store
            .signed_url(reqwest::Method::GET, &path, ttl)
            .await
            .map_err(to_io)?;
        Ok(url.to_string())
    }

    async fn head(&self, path: &ObjectPath) -> io::Result<Option<object_store::ObjectMeta>> {
        match self.store.head(path).await {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(to_io(e)),
        }
    }
}

#[async_trait]
impl Driver for S3Driver {
    fn name(&self) -> &'static str {
        "s3"
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    async fn get(&self, key: &str) -> io::Result<Option<Bytes>> {
        let path = self.path(key)?;
        match self.store.get(&path).await {
            Ok(found) => Ok(Some(found.bytes().await.map_err(to_io)?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(to_io(e)),
        }
    }

    async fn get_many(&self, keys: Vec<String>) -> io::Result<Vec<Option<Bytes>>> {
        futures::future::try_join_all(keys.iter().map(|k| self.get(k))).await
    }

    async fn put(&self, key: &str, data: Bytes) -> io::Result<()> {
        let path = self.path(key)?;
        self.store.put(&path, PutPayload::from(data)).await.map_err(to_io)?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> io::Result<bool> {
        let path = self.path(key)?;
        // S3 answers a delete the same whether the object was there or not.
        if self.head(&path).await?.is_none() {
            return Ok(false);
        }
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(e) => Err(to_io(e)),
        }
    }

    async fn delete_all(&self, prefix: &str) -> io::Result<bool> {
        let path = self.path(prefix)?;
        let mut found = Vec::new();
        if self.head(&path).await?.is_some() {
            found.push(path.clone());
        }
        let mut listed = self.store.list(Some(&path));
        while let Some(meta) = listed.next().await {
            found.push(meta.map_err(to_io)?.location);
        }
        if found.is_empty() {
            return Ok(false);
        }
        let doomed = futures::stream::iter(found.into_iter().map(Ok)).boxed();
        let mut deleted = self.store.delete_stream(doomed);
        while let Some(done) = deleted.next().await {
            match done {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(to_io(e)),
            }
        }
        Ok(true)
    }

    async fn stat(&self, key: &str) -> io::Result<Option<Stat>> {
        let path = self.path(key)?;
        if let Some(meta) = self.head(&path).await? {
            return Ok(Some(Stat {
                size: meta.size,
                modified: u64::try_from(meta.last_modified.timestamp()).ok(),
                is_prefix: false,
            }));
        }
        // Not an object: a prefix if anything lies under it.
        let mut under = self.store.list(Some(&path));
        match under.next().await {
            Some(first) => {
                first.map_err(to_io)?;
                Ok(Some(Stat {
                    size: 0,
                    modified: None,
                    is_prefix: true,
                }))
            }
            None => Ok(None),
        }
    }

    async fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let path = self.path(prefix)?;
        // Pages through the listing (1,000 keys a page) until the end.
        let listed = self.store.list_with_delimiter(Some(&path)).await.map_err(to_io)?;
        let names: BTreeSet<String> = listed
            .common_prefixes
            .iter()
            .chain(listed.objects.iter().map(|o| &o.location))
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        Ok(names.into_iter().collect())
    }

    async fn list_some(&self, prefix: &str, limit: usize) -> io::Result<(Vec<String>, bool)> {
        let path = self.path(prefix)?;
        let base = format!("{}/", self.key_of(&path));
        let mut names = BTreeSet::new();
        let mut listed = self.store.list(Some(&path));
        while let Some(meta) = listed.next().await {
            let meta = meta.map_err(to_io)?;
            let key = self.key_of(&meta.location);
            let Some(first) = key.strip_prefix(base.as_str()).and_then(|rest| rest.split('/').next()) else {
                continue;
            };
            if !names.contains(first) {
                if names.len() == limit {
                    return Ok((names.into_iter().collect(), false));
                }
                names.insert(first.to_string());
            }
        }
        Ok((names.into_iter().collect(), true))
    }

    async fn walk(&self, prefix: &str) -> io::Result<Vec<String>> {
        let path = self.path(prefix)?;
        let mut keys: Vec<String> = self
            .store
            .list(Some(&path))
            .map_ok(|meta| self.key_of(&meta.location).to_string())
            .try_collect()
            .await
            .map_err(to_io)?;
        keys.sort();
        Ok(keys)
    }

    async fn read(&self, key: &str, offset: u64, len: u64) -> io::Result<ByteStream> {
        let path = self.path(key)?;
        read::ranged(self.store.clone(), path, offset, len).await
    }

    async fn writer(&self, key: &str, hashers: Vec<Hasher>) -> io::Result<Box<dyn Sink>> {
        let path = self.path(key)?;
        Ok(Box::new(sink::S3Sink::new(
            self.store.clone(),
            path,
            self.part_size,
            hashers,
        )))
    }

    async fn commit(&self, from: &str, to: &str) -> io::Result<()> {
        let (from, to) = (self.path(from)?, self.path(to)?);
        // A server-side copy; over an existing blob it writes the same bytes again and renews
        // its modification time, which garbage collection's grace period must see.
        self.store.copy(&from, &to).await.map_err(to_io)?;
        match self.store.delete(&from).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(to_io(e)),
        }
    }

    async fn redirect(&self, key: &str, ttl: Duration) -> io::Result<Option<String>> {
        self.presigned_get(key, ttl).await.map(Some)
    }
}

#[cfg(test)]
pub(crate) mod tests;
