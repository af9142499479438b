//! Everything a request handler may need, built once at start-up and shared by all workers.

use crate::auth::Gate;
use crate::config::Config;
use crate::index::Index;
use crate::registry::images::Images;
use crate::registry::tags::Tags;
use crate::storage::Storage;

pub struct AppState {
    pub config: Config,
    pub gate: Gate,
    pub images: Images,
    pub tags: Tags,
}

impl AppState {
    pub fn new(config: Config, index: Option<Index>, storage: Storage) -> AppState {
        let images = Images::new(storage);
        AppState {
            tags: Tags::new(images.clone()),
            images,
            gate: Gate::new(index),
            config,
        }
    }

    /// The `X-Docker-Endpoints` value: the configured registries, or this server's own host.
    pub fn endpoints(&self, request_host: &str) -> String {
        if self.config.index.endpoints.is_empty() {
            request_host.to_string()
        } else {
            self.config.index.endpoints.join(", ")
        }
    }
}
