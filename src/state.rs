//! Everything a request handler may need, built once at start-up and shared by all workers.

use crate::auth::Gate;
use crate::config::Config;
use crate::registry::images::Images;
use crate::registry::repository::Repositories;
use crate::registry::tags::Tags;
use crate::registry::uploads::Uploads;
use crate::storage::Storage;

pub struct AppState {
    pub config: Config,
    pub gate: Gate,
    pub images: Images,
    pub tags: Tags,
    pub repos: Repositories,
    pub uploads: Uploads,
}

impl AppState {
    pub fn new(config: Config, gate: Gate, storage: Storage) -> AppState {
        AppState {
            tags: Tags::new(Images::new(storage.clone())),
            images: Images::new(storage.clone()),
            repos: Repositories::new(storage.clone()),
            uploads: Uploads::new(storage),
            gate,
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
