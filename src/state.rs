//! Everything a request handler may need, built once at start-up and shared by all workers.

use crate::auth::{Gate, Identity};
use crate::config::Config;
use crate::error::AppResult;
use crate::index::Index;
use crate::names::RepoName;
use crate::registry::v1::images::Images;
use crate::registry::v1::repositories::V1Repositories;
use crate::registry::v2::repositories::V2Repositories;
use crate::registry::v2::uploads::Uploads;
use crate::storage::Storage;

pub struct AppState {
    pub config: Config,
    /// Who is calling and what they may do.
    pub gate: Gate,
    /// The built-in index (users, repository records, tokens), when standalone.
    pub index: Option<Index>,
    pub storage: Storage,
    pub images: Images,
    pub v1_repos: V1Repositories,
    pub v2_repos: V2Repositories,
    pub uploads: Uploads,
    /// In-flight upload bodies per user (`limits.uploads_per_user`).
    pub upload_slots: crate::http::uploads::UploadSlots,
    /// Garbage collection runs: the one going on, the last result.
    pub gc: crate::manage::gc::GcService,
    /// What each namespace with a quota uses (`[quotas]`).
    pub quotas: crate::manage::quotas::Quotas,
    /// Pulls counted in memory, flushed to the index now and then (see `manage::pulls`).
    pub pulls: crate::manage::pulls::PullCounter,
    /// Retention runs, one at a time.
    pub retention: crate::manage::retention::RetentionService,
    /// Who pushed, deleted or changed what (see `audit`).
    pub audit: crate::audit::Audit,
    /// Comments each account posted lately (`limits.comments_per_minute`).
    pub comment_limits: crate::manage::community::CommentLimiter,
    /// Events to repositories' and global webhooks (none without an index).
    pub webhooks: crate::webhooks::Webhooks,
}

impl AppState {
    pub fn new(config: Config, gate: Gate, index: Option<Index>, storage: Storage) -> AppState {
        AppState {
            v1_repos: V1Repositories::new(Images::new(storage.clone())),
            images: Images::new(storage.clone()),
            v2_repos: V2Repositories::new(storage.clone()).with_grace(config.gc.grace_secs),
            uploads: Uploads::new(storage.clone()),
            upload_slots: crate::http::uploads::UploadSlots::new(config.limits.uploads_per_user),
            comment_limits: crate::manage::community::CommentLimiter::new(config.limits.comments_per_minute),
            gc: Default::default(),
            quotas: Default::default(),
            pulls: crate::manage::pulls::PullCounter::new(index.is_some()),
            retention: Default::default(),
            audit: match &index {
                Some(ix) => crate::audit::Audit::open(ix, &config.audit).unwrap_or_else(|e| {
                    log::error!("cannot open the audit log, writing it to the log instead: {e}");
                    crate::audit::Audit::to_log()
                }),
                None => crate::audit::Audit::to_log(),
            },
            webhooks: crate::webhooks::Webhooks::new(index.as_ref(), &config.webhooks),
            storage,
            gate,
            index,
            config,
        }
    }

    /// Gives a repository that receives content an index record (owner, visibility), so it shows
    /// in search and follows the same rules as repositories created through the index. The
    /// owner is the pushing user, or the namespace when the caller names none.
    pub async fn ensure_record(&self, who: &Identity, repo: &RepoName) -> AppResult<()> {
        let Some(ix) = &self.index else { return Ok(()) };
        // Inline first: the record exists on every push but the first.
        if ix.repo(repo)?.is_some() {
            return Ok(());
        }
        let owner = who
            .username()
            .filter(|u| !u.is_empty())
            .unwrap_or(repo.namespace())
            .to_string();
        let name = repo.clone();
        ix.write(move |ix| ix.ensure_repo(&name, &owner)).await?;
        Ok(())
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
