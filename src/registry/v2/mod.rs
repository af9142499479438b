//! The v2 / OCI registry's data: repositories, manifests and blob upload sessions.

pub mod manifest;
pub mod repositories;
pub mod uploads;
