//! Access tokens: create, list, revoke. An account makes tokens for itself; an admin (and the
//! operator, who must name the owner) for any account. A robot is made by its owner, who is an
//! admin or the account whose namespace it works in. The secret is in the answer to the
//! creation only; lists never show it.

use super::Actor;
use crate::clock::now_secs;
use crate::error::{AppError, AppResult};
use crate::index::pats::{Action, NewPat};
use crate::index::{Index, Pat, Scope};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    /// The account it acts for; default: the caller's (the operator must name one).
    #[serde(default)]
    pub owner: Option<String>,
    /// Make a robot of this namespace (`robot$<namespace>+<name>`).
    #[serde(default)]
    pub robot: Option<String>,
    pub scopes: Vec<ScopeRequest>,
    /// Seconds from now; none: valid until revoked.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeRequest {
    pub repository: String,
    pub actions: Vec<Action>,
}

/// A token as the API shows it: never its secret or hash.
#[derive(Debug, Serialize)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    /// The user name to sign in with (`docker login -u`).
    pub login: String,
    pub owner: String,
    pub robot: bool,
    pub scopes: Vec<Scope>,
    pub expires: Option<u64>,
    pub expired: bool,
    pub created: u64,
    pub last_used: Option<u64>,
}

impl From<Pat> for TokenView {
    fn from(p: Pat) -> Self {
        TokenView {
            expired: p.expired(now_secs()),
            id: p.id,
            name: p.name,
            login: p.login,
            owner: p.owner,
            robot: p.robot.is_some(),
            scopes: p.scopes,
            expires: p.expires,
            created: p.created,
            last_used: p.last_used,
        }
    }
}

/// The answer to a creation: the token and, this once, its secret.
#[derive(Debug, Serialize)]
pub struct Created {
    #[serde(flatten)]
    pub token: TokenView,
    pub secret: String,
}

pub async fn create(ix: &Index, actor: &Actor, new: NewToken) -> AppResult<Created> {
    let owner = match (&new.owner, actor) {
        (Some(o), _) => o.clone(),
        (None, Actor::User(p)) => p.name.clone(),
        (None, Actor::Operator | Actor::Schedule) => {
            return Err(AppError::bad_request(
                "Name the owner account (\"owner\"): the operator is no account",
            ))
        }
    };
    actor.require_self_or_admin(&owner)?;
    if let Some(ns) = &new.robot {
        robot_owner_may(ix, &owner, ns).await?;
    }
    let scopes = new
        .scopes
        .into_iter()
        .map(|s| Scope::parse(&s.repository, s.actions))
        .collect::<AppResult<Vec<_>>>()?;
    let expires = match new.expires_in {
        Some(0) => return Err(AppError::bad_request("expires_in must be at least 1 second")),
        Some(secs) => Some(now_secs().saturating_add(secs)),
        None => None,
    };
    let pat = NewPat {
        name: new.name,
        owner,
        robot: new.robot,
        scopes,
        expires,
    };
    let (pat, secret) = ix.write(move |ix| ix.create_pat(&pat)).await?;
    log::info!(
        "manage: {} created access token {} ({}, {}) for {}",
        actor.name(),
        pat.id,
        pat.login,
        pat.name,
        pat.owner
    );
    Ok(Created {
        token: pat.into(),
        secret,
    })
}

/// A robot's owner is an admin or the account whose namespace it works in: the robot's name
/// says whose it is, and it must not say so falsely.
async fn robot_owner_may(ix: &Index, owner: &str, namespace: &str) -> AppResult<()> {
    let name = owner.to_string();
    let account = ix
        .run(move |ix| ix.user(&name))
        .await?
        .ok_or_else(|| AppError::not_found(format!("No such user: {owner}")))?;
    if account.admin || account.username == namespace {
        Ok(())
    } else {
        Err(AppError::forbidden(format!(
            "A robot of {namespace} is owned by {namespace} or an administrator, not by {owner}"
        )))
    }
}

/// The actor's own tokens (admins and the operator: all), by owner, then age.
pub async fn list(ix: &Index, actor: &Actor) -> AppResult<Vec<TokenView>> {
    let mut pats: Vec<Pat> = ix
        .run(|ix| ix.pats())
        .await?
        .into_iter()
        .filter(|p| sees(actor, p))
        .collect();
    pats.sort_by(|a, b| (&a.owner, a.created, &a.id).cmp(&(&b.owner, b.created, &b.id)));
    Ok(pats.into_iter().map(TokenView::from).collect())
}

fn sees(actor: &Actor, pat: &Pat) -> bool {
    actor.is_admin() || actor.name() == pat.owner
}

/// Revokes a token: it stops working at once, and so does every token issued on it. Another
/// account's token is answered as absent. Returns the token revoked.
pub async fn delete(ix: &Index, actor: &Actor, id: &str) -> AppResult<TokenView> {
    let absent = || AppError::not_found(format!("No such token: {id}"));
    let key = id.to_string();
    let pat = ix.run(move |ix| ix.pat(&key)).await?.ok_or_else(absent)?;
    if !sees(actor, &pat) {
        return Err(absent());
    }
    let key = id.to_string();
    ix.write(move |ix| ix.delete_pat(&key)).await?;
    log::info!(
        "manage: {} revoked access token {} ({}, {}) of {}",
        actor.name(),
        pat.id,
        pat.login,
        pat.name,
        pat.owner
    );
    Ok(pat.into())
}
