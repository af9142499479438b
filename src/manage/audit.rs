//! Reading the audit log: admins (and the operator) see every entry; an account sees the
//! entries it made, those about itself (its account, its tokens), and those about the
//! repositories it manages (owned by it or in its namespace, deleted ones included).

use super::Actor;
use crate::audit::{Entry, Page, Query};
use crate::error::AppResult;
use crate::state::AppState;
use std::collections::HashSet;

pub async fn list(state: &AppState, actor: &Actor, query: Query) -> AppResult<Page> {
    let me = match actor {
        Actor::User(p) if !p.admin => Some(p.name.clone()),
        _ => None,
    };
    let Some(me) = me else {
        return state.audit.query(query, |_| true).await;
    };
    let owned: HashSet<String> = super::repos::index(state)?
        .listing()?
        .iter()
        .filter(|r| r.owner == me)
        .map(|r| r.name.clone())
        .collect();
    state
        .audit
        .query(query, move |e: &Entry| {
            e.user == me
                || e.account.as_deref() == Some(me.as_str())
                || e.repository
                    .as_deref()
                    .is_some_and(|r| r.split('/').next() == Some(me.as_str()) || owned.contains(r))
        })
        .await
}
