//! The registry's domain: what is stored for each protocol, on top of `storage`.
//!
//! - `names`: repository names, tags and v1 image ids, validated (shared by v1 and v2).
//! - `v1`: images (json, ancestry, layer, checksum) and v1 repositories (tags, members).
//! - `v2`: repositories (blob links, manifests, tags, referrers), manifests, upload sessions.
//! - `gc`: what no repository of either protocol refers to any more.

pub mod gc;
pub mod names;
pub mod v1;
pub mod v2;
