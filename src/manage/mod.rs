//! What an operator does to a live server: accounts, repositories, tags, retention and access tokens. The management API
//! (`/api/v1`) calls these, and the CLI reaches them through that API over the local socket,
//! so every path to a change checks the same rules and logs the same way.

pub mod audit;
pub mod backup;
pub mod browse;
pub mod community;
pub mod gc;
pub mod images;
pub mod pulls;
pub mod quotas;
pub mod repos;
pub mod retention;
pub mod tags;
pub mod tokens;
pub mod usage;
pub mod users;
pub mod webhooks;

use crate::auth::{Identity, Principal};
use crate::error::{AppError, AppResult};
use crate::index::Access;
use crate::names::RepoName;
use crate::state::AppState;

/// Who is acting.
#[derive(Clone, Debug)]
pub enum Actor {
    /// The operator on the server's own host, through the local socket (`skiff.sock` in
    /// `data_dir`, which only the account running the server can open): an admin.
    Operator,
    /// A signed-in account.
    User(Principal),
    /// The server's own schedule (`gc.interval_secs`, `retention.interval_secs`).
    Schedule,
}

impl Actor {
    pub fn is_admin(&self) -> bool {
        match self {
            Actor::Operator | Actor::Schedule => true,
            Actor::User(p) => p.admin,
        }
    }

    /// The name changes are logged under.
    pub fn name(&self) -> &str {
        match self {
            Actor::Operator => "operator (local socket)",
            Actor::Schedule => "schedule",
            Actor::User(p) => &p.name,
        }
    }

    /// Whether the actor may `access` the repository (the operator and the schedule may do
    /// anything; an account what the gate allows it).
    pub async fn may(&self, state: &AppState, repo: &RepoName, access: Access) -> AppResult<bool> {
        match self {
            Actor::Operator | Actor::Schedule => Ok(true),
            Actor::User(p) => state.gate.allows(&Identity::User(p.clone()), repo, access).await,
        }
    }

    pub fn require_admin(&self) -> AppResult<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AppError::forbidden("Only an administrator may do this"))
        }
    }

    /// Admins act on any account; others on their own only.
    pub fn require_self_or_admin(&self, username: &str) -> AppResult<()> {
        match self {
            Actor::User(p) if !p.admin && p.name != username => Err(AppError::forbidden(
                "Only the account itself or an administrator may do this",
            )),
            _ => Ok(()),
        }
    }
}

/// Who reads: an actor, or a visitor who has not signed in and sees what anyone may read
/// (public repositories). Kept apart from [`Actor`] so no change can ever be made anonymously.
#[derive(Clone, Debug)]
pub enum Viewer {
    Anonymous,
    Actor(Actor),
}

impl Viewer {
    pub async fn may(&self, state: &AppState, repo: &RepoName, access: Access) -> AppResult<bool> {
        match self {
            Viewer::Anonymous => state.gate.allows(&Identity::Anonymous, repo, access).await,
            Viewer::Actor(actor) => actor.may(state, repo, access).await,
        }
    }

    pub fn actor(&self) -> Option<&Actor> {
        match self {
            Viewer::Anonymous => None,
            Viewer::Actor(actor) => Some(actor),
        }
    }

    /// The signed-in account's name, if any.
    pub fn username(&self) -> Option<&str> {
        match self {
            Viewer::Actor(Actor::User(p)) => Some(&p.name),
            _ => None,
        }
    }
}
