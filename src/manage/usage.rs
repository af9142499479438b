//! The storage usage report (`GET /api/v1/usage`, `skiff usage`): from one scan of the
//! references and one walk of the blob store, whatever the number of repositories.
//!
//! Administrators see the whole store (total, garbage, upload sessions, unattributed v1
//! layers), every namespace and repository, and unique versus shared bytes across all of them.
//! An account sees its own namespace and the repositories it manages (its namespace's and
//! those it owns), with unique and shared bytes *among those only*: whether a blob is also held
//! by someone else's repository is not shown (that would tell a pusher whether anybody else
//! stores given bytes). Its namespace's total and quota are its own data and are shown.

use super::Actor;
use crate::error::{AppError, AppResult};
use crate::names::RepoName;
use crate::registry::{references, usage};
use crate::state::AppState;
use std::collections::HashSet;

pub async fn report(state: &AppState, actor: &Actor) -> AppResult<usage::Usage> {
    if !state.config.registry {
        return Err(AppError::not_found(
            "This server has no registry storage (registry = false)",
        ));
    }
    let now = crate::clock::now_secs();
    let scan = references::scan(&state.storage, state.config.gc.grace_secs, now).await?;
    let sizes = usage::blob_sizes(&state.storage).await?;
    let mut out = match actor {
        Actor::User(p) if !p.admin => {
            let owned: HashSet<String> = match &state.index {
                Some(ix) => ix
                    .listing()?
                    .iter()
                    .filter(|r| r.owner == p.name)
                    .map(|r| r.name.clone())
                    .collect(),
                None => HashSet::new(),
            };
            let mine = |r: &RepoName| r.namespace() == p.name || owned.contains(r.as_str());
            let (mut namespaces, repositories) = usage::summarize(&scan, &sizes, mine, false);
            // Only its own namespace: another's figure would count repositories it cannot see.
            namespaces.retain(|n| n.name == p.name);
            if namespaces.is_empty() {
                namespaces.push(usage::NamespaceUsage {
                    name: p.name.clone(),
                    ..Default::default()
                });
            }
            usage::Usage {
                store: None,
                namespaces,
                repositories,
            }
        }
        _ => {
            let uploads = usage::upload_sessions(&state.storage).await?;
            let (namespaces, repositories) = usage::summarize(&scan, &sizes, |_| true, true);
            usage::Usage {
                store: Some(usage::store(&scan, &sizes, uploads)),
                namespaces,
                repositories,
            }
        }
    };
    for ns in &mut out.namespaces {
        ns.quota = state.config.quotas.limit(&ns.name);
    }
    Ok(out)
}
