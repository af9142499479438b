//! The access rules, as one pure function over the caller, the repository and its record.
//!
//! - read: public repositories to anyone; private ones to owner, collaborators and admins. To
//!   everyone else a private repository does not exist (404), so it never leaks.
//! - write: the namespace's user, collaborators, admins; `library/` is for admins only.
//! - delete: the namespace's user (or the record's owner) and admins.
//! - a v1 token allows exactly its repository and access level.
//! - an access token allows what its scopes list, never delete; a v2 token asked for with one
//!   is granted nothing beyond its scopes.
//! - any token also allows what its holder may do and the token allows, never more; and what
//!   anyone may (reading public repositories).

use super::{Holder, Identity, Principal};
use crate::error::{AppError, AppResult};
use crate::index::{Access, Repo};
use crate::names::RepoName;

pub fn decide(who: &Identity, repo: &RepoName, meta: Option<&Repo>, access: Access) -> AppResult<()> {
    rule(who, repo, meta, meta.is_some_and(|m| m.private), access)
}

/// May a v2 token grant `access`? As `decide`, except that a repository that does not exist
/// is granted only to who could create it: pull on an absent repository granted to anyone
/// would tell it apart from a private one, whose pull is refused.
pub fn grant(who: &Identity, repo: &RepoName, meta: Option<&Repo>, access: Access) -> bool {
    // Not even a public repository's pull outside an access token's scopes: what a token is
    // granted on one stays within what it lists (the pull works without the grant anyway).
    if let Identity::Pat(pat, _) = who {
        if !pat.allows(repo, access) {
            return false;
        }
    }
    rule(who, repo, meta, meta.is_none_or(|m| m.private), access).is_ok()
}

/// The rules, with `private` saying whether the repository is closed to strangers.
fn rule(who: &Identity, repo: &RepoName, meta: Option<&Repo>, private: bool, access: Access) -> AppResult<()> {
    let hidden = || AppError::not_found("Repository not found");
    // What the holder of a token may do now: a token never allows more.
    let holder_may = |holder: &Holder| match holder {
        Holder::Anonymous => rule(&Identity::Anonymous, repo, meta, private, access).is_ok(),
        Holder::User(p) => rule(&Identity::User(p.clone()), repo, meta, private, access).is_ok(),
        Holder::Unchecked => true,
    };
    match who {
        Identity::Token(grant, holder) => {
            let in_grant = grant.repo == repo.as_str() && grant.access.permits(access);
            if in_grant && holder_may(holder) {
                Ok(())
            } else if access == Access::Read && !private {
                // Anyone may read a public repository; a token for another one changes nothing.
                Ok(())
            } else if access == Access::Read {
                // A private repository the token does not open does not exist for its holder.
                Err(hidden())
            } else if grant.repo != repo.as_str() {
                Err(AppError::unauthorized("Token is not valid for this repository"))
            } else if !grant.access.permits(access) {
                Err(AppError::unauthorized(format!(
                    "Token grants {} access, not {}",
                    grant.access.as_str(),
                    access.as_str()
                )))
            } else {
                Err(AppError::unauthorized("Token is no longer valid for this repository"))
            }
        }
        Identity::Bearer(claims, holder) => {
            let action = match access {
                Access::Read => "pull",
                Access::Write => "push",
                Access::Delete => "delete",
            };
            let public_read = access == Access::Read && meta.is_some_and(|m| !m.private);
            if (claims.allows(repo.as_str(), action) && holder_may(holder)) || public_read {
                Ok(())
            } else if access == Access::Read {
                Err(hidden())
            } else {
                Err(AppError::unauthorized(format!(
                    "token does not allow {action} on {repo}"
                )))
            }
        }
        Identity::Pat(pat, holder) => {
            let public_read = access == Access::Read && !private;
            if (pat.allows(repo, access) && holder_may(holder)) || public_read {
                Ok(())
            } else if access == Access::Read {
                Err(hidden())
            } else {
                // The credential is good and the answer is final: 403, as for an account.
                Err(AppError::forbidden(format!(
                    "Access denied: access token {} may not {} {repo}",
                    pat.name,
                    access.as_str()
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
        Identity::User(p) => user_rule(p, repo, meta, private, access),
    }
}

fn user_rule(p: &Principal, repo: &RepoName, meta: Option<&Repo>, private: bool, access: Access) -> AppResult<()> {
    if p.admin {
        return Ok(());
    }
    let owns = !repo.is_library() && (repo.namespace() == p.name || meta.is_some_and(|m| m.owner == p.name));
    let collaborates = meta.is_some_and(|m| m.collaborators.iter().any(|c| c == &p.name));
    match access {
        Access::Read if !private || owns || collaborates => Ok(()),
        Access::Read => Err(AppError::not_found("Repository not found")),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::TokenGrant;

    fn principal(n: &str) -> Principal {
        Principal {
            name: n.into(),
            admin: false,
            generation: 0,
        }
    }
    fn user(n: &str) -> Identity {
        Identity::User(principal(n))
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
            generation: 0,
        });
        assert!(decide(&admin, &lib, None, Access::Write).is_ok());
        let tok = |repo: &str, access| {
            Identity::Token(
                TokenGrant {
                    repo: repo.into(),
                    access,
                    user: "alice".into(),
                    expires: u64::MAX,
                    generation: 0,
                    pat: None,
                },
                Holder::User(principal("alice")),
            )
        };
        assert!(decide(&tok("alice/app", Access::Write), &r, Some(&private), Access::Write).is_ok());
        assert_eq!(
            decide(&tok("alice/app", Access::Read), &r, Some(&private), Access::Write)
                .unwrap_err()
                .status(),
            401
        );
        // A token for another repository reads a private one as absent.
        assert_eq!(
            decide(&tok("alice/other", Access::Write), &r, Some(&private), Access::Read)
                .unwrap_err()
                .status(),
            404
        );
    }

    /// A token never allows more than its holder may do now.
    #[test]
    fn tokens_follow_their_holder() {
        let r = RepoName::parse("alice/app").unwrap();
        let carols = |access| {
            Identity::Token(
                TokenGrant {
                    repo: "alice/app".into(),
                    access,
                    user: "carol".into(),
                    expires: u64::MAX,
                    generation: 0,
                    pat: None,
                },
                Holder::User(principal("carol")),
            )
        };
        assert!(decide(&carols(Access::Write), &r, Some(&meta(true, &["carol"])), Access::Write).is_ok());
        // Carol is no longer a collaborator: her write token writes nothing, reads nothing.
        let without = meta(true, &[]);
        assert_eq!(
            decide(&carols(Access::Write), &r, Some(&without), Access::Write)
                .unwrap_err()
                .status(),
            401
        );
        assert_eq!(
            decide(&carols(Access::Write), &r, Some(&without), Access::Read)
                .unwrap_err()
                .status(),
            404
        );
        // An anonymous read token stops reading once the repository is private.
        let anonymous = Identity::Token(
            TokenGrant {
                repo: "alice/app".into(),
                access: Access::Read,
                user: String::new(),
                expires: u64::MAX,
                generation: 0,
                pat: None,
            },
            Holder::Anonymous,
        );
        assert!(decide(&anonymous, &r, Some(&meta(false, &[])), Access::Read).is_ok());
        assert_eq!(
            decide(&anonymous, &r, Some(&without), Access::Read)
                .unwrap_err()
                .status(),
            404
        );
    }

    /// An access token allows what its scopes and its owner's rights both allow, never delete;
    /// public repositories read as for anyone, but are never granted outside its scopes.
    #[test]
    fn access_tokens_are_bounded_by_scopes_and_owner() {
        use crate::index::pats::{Action, Scope};
        let pat = |owner: &str, repo: &str, actions: Vec<Action>| {
            Identity::Pat(
                crate::index::Pat {
                    v: 1,
                    id: "id".into(),
                    name: "t".into(),
                    login: owner.into(),
                    owner: owner.into(),
                    owner_uid: String::new(),
                    robot: None,
                    scopes: vec![Scope::parse(repo, actions).unwrap()],
                    expires: None,
                    created: 0,
                    last_used: None,
                    hash: String::new(),
                },
                Holder::User(principal(owner)),
            )
        };
        let app = RepoName::parse("alice/app").unwrap();
        let other = RepoName::parse("alice/other").unwrap();
        let (private, public) = (meta(true, &[]), meta(false, &[]));
        let status = |r: AppResult<()>| r.err().map_or(200, |e| e.status().as_u16());
        let pull = pat("alice", "alice/app", vec![Action::Pull]);
        assert_eq!(status(decide(&pull, &app, Some(&private), Access::Read)), 200);
        assert_eq!(status(decide(&pull, &app, Some(&private), Access::Write)), 403);
        assert_eq!(status(decide(&pull, &other, Some(&private), Access::Read)), 404);
        assert_eq!(status(decide(&pull, &other, Some(&public), Access::Read)), 200);
        assert!(grant(&pull, &app, Some(&private), Access::Read));
        assert!(!grant(&pull, &other, Some(&public), Access::Read), "outside its scopes");
        let push = pat("alice", "alice/*", vec![Action::Push]);
        assert_eq!(status(decide(&push, &other, None, Access::Write)), 200);
        assert_eq!(status(decide(&push, &other, Some(&private), Access::Read)), 200);
        assert_eq!(status(decide(&push, &other, Some(&private), Access::Delete)), 403);
        assert!(!grant(&push, &other, None, Access::Delete));
        // Bob's token for Alice's namespace: in its scopes, beyond Bob's rights.
        let bobs = pat("bob", "alice/*", vec![Action::Push]);
        assert_eq!(status(decide(&bobs, &app, Some(&private), Access::Read)), 404);
        assert_eq!(status(decide(&bobs, &app, Some(&public), Access::Write)), 403);
        assert!(!grant(&bobs, &app, None, Access::Read));
    }

    /// v2 grants: an absent repository is granted like a private one.
    #[test]
    fn grants_on_absent_repositories() {
        let r = RepoName::parse("alice/app").unwrap();
        assert!(grant(&user("alice"), &r, None, Access::Read));
        assert!(!grant(&user("bob"), &r, None, Access::Read));
        assert!(!grant(&Identity::Anonymous, &r, None, Access::Read));
        assert!(grant(&Identity::Anonymous, &r, Some(&meta(false, &[])), Access::Read));
    }
}
