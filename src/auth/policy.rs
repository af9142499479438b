//! The access rules, as one pure function over the caller, the repository and its record.
//!
//! - read: public repositories to anyone; private ones to owner, collaborators and admins. To
//!   everyone else a private repository does not exist (404), so it never leaks.
//! - write: the namespace's user, collaborators, admins; `library/` is for admins only.
//! - delete: the namespace's user (or the record's owner) and admins.
//! - a v1 token allows exactly its repository and access level.

use super::Identity;
use crate::error::{AppError, AppResult};
use crate::index::{Access, Repo};
use crate::names::RepoName;

pub fn decide(who: &Identity, repo: &RepoName, meta: Option<&Repo>, access: Access) -> AppResult<()> {
    let private = meta.is_some_and(|m| m.private);
    let hidden = || AppError::not_found("Repository not found");
    match who {
        Identity::Token(grant) => {
            if grant.repo == repo.as_str() && grant.access.permits(access) {
                Ok(())
            } else if access == Access::Read && !private {
                // Anyone may read a public repository; a token for another one changes nothing.
                Ok(())
            } else if grant.repo != repo.as_str() {
                Err(AppError::unauthorized("Token is not valid for this repository"))
            } else {
                Err(AppError::unauthorized(format!(
                    "Token grants {} access, not {}",
                    grant.access.as_str(),
                    access.as_str()
                )))
            }
        }
        Identity::Bearer(claims) => {
            let action = match access {
                Access::Read => "pull",
                Access::Write => "push",
                Access::Delete => "delete",
            };
            let public_read = access == Access::Read && meta.is_some_and(|m| !m.private);
            if claims.allows(repo.as_str(), action) || public_read {
                Ok(())
            } else if access == Access::Read {
                Err(hidden())
            } else {
                Err(AppError::unauthorized(format!(
                    "token does not allow {action} on {repo}"
                )))
            }
        }
        // Checked by the external index in `Gate::check`, never here: refuse if it gets here.
        Identity::Delegated(_) => Err(AppError::unauthorized("Token not checked by the index")),
        Identity::Anonymous => match access {
            Access::Read if !private => Ok(()),
            Access::Read => Err(hidden()),
            _ => Err(AppError::unauthorized("Requires authorization")),
        },
        Identity::User(p) => {
            if p.admin {
                return Ok(());
            }
            let owns = !repo.is_library() && (repo.namespace() == p.name || meta.is_some_and(|m| m.owner == p.name));
            let collaborates = meta.is_some_and(|m| m.collaborators.iter().any(|c| c == &p.name));
            match access {
                Access::Read if !private || owns || collaborates => Ok(()),
                Access::Read => Err(hidden()),
                Access::Write if owns || collaborates => Ok(()),
                Access::Delete if owns => Ok(()),
                // Writes by strangers get 403 whether the repository is private or absent, so the
                // answer says nothing about a private repository's existence.
                _ if repo.is_library() => Err(AppError::forbidden("Only administrators may push to library/")),
                _ => Err(AppError::forbidden(format!(
                    "Access denied: {} may not {} {}",
                    p.name,
                    access.as_str(),
                    repo
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Principal;
    use crate::index::TokenGrant;

    fn user(n: &str) -> Identity {
        Identity::User(Principal {
            name: n.into(),
            admin: false,
        })
    }
    fn meta(private: bool, collabs: &[&str]) -> Repo {
        serde_json::from_value(serde_json::json!({
            "v": 1, "name": "alice/app", "owner": "alice", "private": private,
            "collaborators": collabs, "created": 0, "updated": 0
        }))
        .unwrap()
    }

    #[test]
    fn rules() {
        let r = RepoName::parse("alice/app").unwrap();
        let lib = RepoName::parse("busybox").unwrap();
        let public = meta(false, &[]);
        let private = meta(true, &["carol"]);
        assert!(decide(&user("alice"), &r, None, Access::Write).is_ok());
        assert!(decide(&user("bob"), &r, Some(&public), Access::Read).is_ok());
        assert_eq!(
            decide(&user("bob"), &r, Some(&public), Access::Write)
                .unwrap_err()
                .status(),
            403
        );
        assert_eq!(
            decide(&user("bob"), &r, Some(&private), Access::Read)
                .unwrap_err()
                .status(),
            404
        );
        assert_eq!(
            decide(&Identity::Anonymous, &r, Some(&private), Access::Read)
                .unwrap_err()
                .status(),
            404
        );
        assert_eq!(
            decide(&Identity::Anonymous, &r, Some(&public), Access::Write)
                .unwrap_err()
                .status(),
            401
        );
        assert!(decide(&user("carol"), &r, Some(&private), Access::Write).is_ok());
        assert!(decide(&user("carol"), &r, Some(&private), Access::Delete).is_err());
        assert_eq!(
            decide(&user("alice"), &lib, None, Access::Write).unwrap_err().status(),
            403
        );
        let admin = Identity::User(Principal {
            name: "root".into(),
            admin: true,
        });
        assert!(decide(&admin, &lib, None, Access::Write).is_ok());
        let tok = |repo: &str, access| {
            Identity::Token(TokenGrant {
                repo: repo.into(),
                access,
                user: "alice".into(),
                expires: u64::MAX,
            })
        };
        assert!(decide(&tok("alice/app", Access::Write), &r, Some(&private), Access::Write).is_ok());
        assert_eq!(
            decide(&tok("alice/app", Access::Read), &r, Some(&private), Access::Write)
                .unwrap_err()
                .status(),
            401
        );
        assert_eq!(
            decide(&tok("alice/other", Access::Write), &r, Some(&private), Access::Read)
                .unwrap_err()
                .status(),
            401
        );
    }
}
