//! Accounts: create, list, show, password, activate, admin, delete. Admins manage every
//! account; an account may read itself and change its own password.

use super::Actor;
use crate::error::{AppError, AppResult};
use crate::index::{Index, User};
use crate::state::AppState;
use serde::{Deserialize, Serialize};

/// An account as the API shows it (never its password hash).
#[derive(Debug, Serialize)]
pub struct UserView {
    pub username: String,
    pub email: String,
    pub active: bool,
    pub admin: bool,
    /// Seconds since the epoch.
    pub created: u64,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            username: u.username,
            email: u.email,
            active: u.active,
            admin: u.admin,
            created: u.created,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub email: String,
    #[serde(default)]
    pub admin: bool,
    #[serde(default = "active_by_default")]
    pub active: bool,
}

fn active_by_default() -> bool {
    true
}

/// What happens to the repositories of an account being deleted (those it owns and those in
/// its namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoFate {
    /// Refuse to delete an account that still has repositories (the default): nothing is
    /// lost by a slip.
    Refuse,
    /// Delete them with the account (their data goes at the next garbage collection).
    Delete,
}

#[derive(Debug, Serialize)]
pub struct Deleted {
    pub username: String,
    pub repositories_deleted: Vec<String>,
}

pub async fn list(ix: &Index, actor: &Actor) -> AppResult<Vec<UserView>> {
    actor.require_admin()?;
    let users = ix.run(|ix| ix.users()).await?;
    Ok(users.into_iter().map(UserView::from).collect())
}

pub async fn show(ix: &Index, actor: &Actor, username: &str) -> AppResult<UserView> {
    actor.require_self_or_admin(username)?;
    Ok(existing(ix, username).await?.into())
}

/// Creates an account. Admins may create reserved names (`admin`), which self-registration
/// refuses.
pub async fn create(ix: &Index, actor: &Actor, new: NewUser) -> AppResult<UserView> {
    actor.require_admin()?;
    let who = actor.name().to_string();
    let user = ix
        .write(move |ix| ix.create_user(&new.username, &new.password, &new.email, new.active, new.admin))
        .await?;
    log::info!(
        "manage: {who} created account {} (admin: {})",
        user.username,
        user.admin
    );
    Ok(user.into())
}

pub async fn set_password(ix: &Index, actor: &Actor, username: &str, password: String) -> AppResult<()> {
    actor.require_self_or_admin(username)?;
    existing(ix, username).await?;
    let name = username.to_string();
    ix.write(move |ix| ix.set_password(&name, &password)).await?;
    log::info!("manage: {} changed the password of {username}", actor.name());
    Ok(())
}

pub async fn set_active(ix: &Index, actor: &Actor, username: &str, active: bool) -> AppResult<UserView> {
    actor.require_admin()?;
    if !active {
        keep_an_admin(ix, username).await?;
    }
    let name = username.to_string();
    let user = ix.write(move |ix| ix.set_active(&name, active)).await?;
    log::info!("manage: {} set {username} active={active}", actor.name());
    Ok(user.into())
}

pub async fn set_admin(ix: &Index, actor: &Actor, username: &str, admin: bool) -> AppResult<UserView> {
    actor.require_admin()?;
    if !admin {
        keep_an_admin(ix, username).await?;
    }
    let name = username.to_string();
    let user = ix.write(move |ix| ix.set_admin(&name, admin)).await?;
    log::info!("manage: {} set {username} admin={admin}", actor.name());
    Ok(user.into())
}

/// Deletes an account: it is dropped from every repository's collaborators, and its
/// repositories go too with `RepoFate::Delete` (refused otherwise while it has any). Its
/// tokens stop working at once (see `Index::delete_user`).
pub async fn delete(state: &AppState, actor: &Actor, username: &str, fate: RepoFate) -> AppResult<Deleted> {
    actor.require_admin()?;
    let ix = super::repos::index(state)?;
    existing(ix, username).await?;
    keep_an_admin(ix, username).await?;
    let owned: Vec<_> = ix
        .listing()?
        .iter()
        .filter(|r| r.owner == username || r.name.split('/').next() == Some(username))
        .map(|r| r.name.clone())
        .collect();
    if !owned.is_empty() && fate == RepoFate::Refuse {
        return Err(AppError::conflict(format!(
            "{username} has {} repositories ({}): delete them first, or pass repositories=delete",
            owned.len(),
            owned.join(", ")
        )));
    }
    for name in &owned {
        super::repos::delete_by_name(state, name, actor.name()).await?;
    }
    let name = username.to_string();
    ix.write(move |ix| {
        ix.forget_collaborator(&name)?;
        ix.delete_user(&name)
    })
    .await?;
    log::info!(
        "manage: {} deleted account {username} and its {} repositories",
        actor.name(),
        owned.len()
    );
    Ok(Deleted {
        username: username.to_string(),
        repositories_deleted: owned,
    })
}

async fn existing(ix: &Index, username: &str) -> AppResult<User> {
    let name = username.to_string();
    ix.run(move |ix| ix.user(&name))
        .await?
        .ok_or_else(|| AppError::not_found(format!("No such user: {username}")))
}

/// Refuses a change that would leave no active administrator (no one could manage accounts
/// over the network any more).
async fn keep_an_admin(ix: &Index, losing: &str) -> AppResult<()> {
    let users = ix.run(|ix| ix.users()).await?;
    let is_admin = |u: &&User| u.admin && u.active;
    let loses_one = users.iter().filter(is_admin).any(|u| u.username == losing);
    if loses_one && users.iter().filter(is_admin).count() == 1 {
        return Err(AppError::conflict(format!(
            "{losing} is the last active administrator: make another account admin first"
        )));
    }
    Ok(())
}
