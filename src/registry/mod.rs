//! The registry's domain: what is stored for each protocol, on top of `storage`.
//!
//! - `v1`: images (json, ancestry, layer, checksum) and v1 repositories (tags, members).
//! - `v2`: repositories (blob links, manifests, tags, referrers), manifests, upload sessions.
//! - `references`: which blobs each repository references (for gc, usage and quotas).
//! - `tags`: every tag of a repository, of both protocols, with its size and platforms.
//! - `gc`: what no repository of either protocol refers to any more.
//! - `check`: whether what is stored is intact (blobs match their digests, references resolve).

pub mod check;
pub mod gc;
pub mod references;
pub mod tags;
pub mod usage;
pub mod v1;
pub mod v2;
