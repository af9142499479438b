//! v2 token scopes: what a token asked for with `scope=repository:NAME:pull,push` may grant.
//! The gate decides each action with the same rules as every other access.

use super::jwt::AccessEntry;
use super::{Gate, Identity};
use crate::error::{AppError, AppResult, Kind};
use crate::index::Access;
use crate::names::RepoName;

/// `repository:name:pull,push` -> (name, actions). Other resource types are ignored.
pub fn parse_scope(scope: &str) -> Option<(String, Vec<String>)> {
    let (kind, rest) = scope.split_once(':')?;
    if kind != "repository" {
        return None;
    }
    let (name, actions) = rest.rsplit_once(':')?;
    Some((name.to_string(), actions.split(',').map(str::to_string).collect()))
}

fn action_name(access: Access) -> &'static str {
    match access {
        Access::Read => "pull",
        Access::Write => "push",
        Access::Delete => "delete",
    }
}

impl Gate {
    /// The access entries of a token for the requested scopes: for each repository scope, the
    /// actions this caller is granted (a scope granting nothing is left out).
    pub async fn grant_scopes<'a>(
        &self,
        who: &Identity,
        scopes: impl Iterator<Item = &'a str>,
    ) -> AppResult<Vec<AccessEntry>> {
        let mut access = Vec::new();
        for scope in scopes {
            let Some((raw, wanted)) = parse_scope(scope) else {
                continue;
            };
            let Ok(repo) = RepoName::parse(&raw) else {
                return Err(AppError::new(
                    Kind::NameInvalid,
                    format!("invalid repository name in scope {scope:?}"),
                ));
            };
            let mut levels = Vec::new();
            for action in &wanted {
                match action.as_str() {
                    "pull" => levels.push(Access::Read),
                    "push" => levels.push(Access::Write),
                    "delete" => levels.push(Access::Delete),
                    "*" => levels.extend([Access::Read, Access::Write, Access::Delete]),
                    _ => {}
                }
            }
            let mut granted: Vec<String> = Vec::new();
            for level in self.grantable(who, &repo, &levels).await? {
                let action = action_name(level);
                if !granted.iter().any(|g| g == action) {
                    granted.push(action.to_string());
                }
            }
            if !granted.is_empty() {
                access.push(AccessEntry {
                    kind: "repository".into(),
                    name: repo.to_string(),
                    actions: granted,
                });
            }
        }
        Ok(access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert_eq!(
            parse_scope("repository:alice/app:pull,push"),
            Some(("alice/app".into(), vec!["pull".into(), "push".into()]))
        );
        assert_eq!(parse_scope("registry:catalog:*"), None);
    }
}
