//! The v1 registry's data: images (pushed json -> layer -> checksum) and repositories (tags).

pub mod images;
pub mod repositories;
