//! Domain types and rules of the registry: names, digests, v1 images and tags.

pub mod digest;
pub mod gc;
pub mod images;
pub mod manifest;
pub mod names;
pub mod repository;
pub mod tags;
pub mod uploads;
