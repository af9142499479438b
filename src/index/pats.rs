//! Access tokens: personal access tokens and robot accounts' tokens, the long-lived secrets a
//! client sends as the password of `docker login` (HTTP Basic).
//!
//! A token belongs to an owner account and lists scopes (repository patterns and `pull` /
//! `push`); it allows at most what its scopes say and what its owner may do at the moment it is
//! used. A robot account is a token with a name of its own to sign in with,
//! `robot$<namespace>+<name>`: `$` and `+` never occur in account names, so a robot can never
//! pass for an account. Its owner is an admin or the namespace's own account, and its scopes stay
//! within its namespace.
//!
//! The secret is `skiff_pat_` and 48 hex digits of CSPRNG output (192 bits), handed out once.
//! Only its SHA-256 is stored, as the lookup key: a high-entropy secret needs no slow hash, and
//! a lookup by hash needs no constant-time comparison.
//!
//! Three trees: `pats` (id -> record), `pat_secrets` (SHA-256 of the secret -> id) and
//! `pat_names` (`<login>\n<name>` -> id, so an owner's token names and robot names are unique),
//! always changed together in one transaction.

use super::{decode, encode, now_secs, Index};
use crate::error::{AppError, AppResult, Kind};
use crate::index::Access;
use crate::names::{is_component, valid_username, RepoName};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

/// What every secret begins with: it tells a token from a password at a glance (and to secret
/// scanners), and no account may have a password that begins with it.
pub const SECRET_PREFIX: &str = "skiff_pat_";
/// What every robot's login name begins with.
pub const ROBOT_PREFIX: &str = "robot$";
/// Scopes one token may list at most (each is checked on every use).
pub const MAX_SCOPES: usize = 32;

pub fn is_secret(password: &str) -> bool {
    password.starts_with(SECRET_PREFIX)
}

/// A robot's login name.
pub fn robot_login(namespace: &str, name: &str) -> String {
    format!("{ROBOT_PREFIX}{namespace}+{name}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pull,
    Push,
}

/// One repository pattern and what a token may do there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// `ns/name` (a bare `name` is stored as `library/name`, as everywhere else), or `ns/*`:
    /// every repository whose first component is `ns`, at any depth.
    pub repository: String,
    pub actions: Vec<Action>,
}

impl Scope {
    pub fn parse(repository: &str, actions: Vec<Action>) -> AppResult<Scope> {
        let repository = match repository.strip_suffix("/*") {
            Some(ns) if is_component(ns) => format!("{ns}/*"),
            Some(_) => {
                return Err(AppError::bad_request(format!(
                    "Invalid scope {repository:?}: a repository name, or a namespace followed by /*"
                )))
            }
            None => RepoName::parse(repository)
                .map_err(|_| {
                    AppError::bad_request(format!(
                        "Invalid scope {repository:?}: a repository name, or a namespace followed by /*"
                    ))
                })?
                .to_string(),
        };
        if actions.is_empty() {
            return Err(AppError::bad_request(format!(
                "Scope {repository}: name at least one action (pull, push)"
            )));
        }
        let mut unique = Vec::new();
        for a in actions {
            if !unique.contains(&a) {
                unique.push(a);
            }
        }
        Ok(Scope {
            repository,
            actions: unique,
        })
    }

    /// The namespace the pattern lies in.
    pub fn namespace(&self) -> &str {
        self.repository.split('/').next().unwrap_or_default()
    }

    pub fn matches(&self, repo: &RepoName) -> bool {
        match self.repository.strip_suffix("/*") {
            Some(ns) => repo.namespace() == ns,
            None => self.repository == repo.as_str(),
        }
    }

    /// `push` includes `pull`: a push reads what it checks for (blobs, manifests), as a v1
    /// write token does. Neither ever deletes.
    pub fn permits(&self, access: Access) -> bool {
        match access {
            Access::Read => !self.actions.is_empty(),
            Access::Write => self.actions.contains(&Action::Push),
            Access::Delete => false,
        }
    }
}

/// A stored token. Never shown as is: the API shows a view without `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pat {
    pub v: u32,
    /// Public id (hex), for listing and revoking; says nothing about the secret.
    pub id: String,
    pub name: String,
    /// The user name it signs in with: the owner's, or a robot's `robot$<namespace>+<name>`.
    pub login: String,
    /// The account whose rights bound it.
    pub owner: String,
    /// The owner account's `uid`: a token never works for a later account of the same name.
    pub owner_uid: String,
    /// A robot's namespace.
    pub robot: Option<String>,
    pub scopes: Vec<Scope>,
    /// Seconds since the epoch; `None`: until revoked.
    pub expires: Option<u64>,
    pub created: u64,
    pub last_used: Option<u64>,
    /// Hex SHA-256 of the secret (the `pat_secrets` key), so a revocation finds it.
    pub hash: String,
}

impl Pat {
    /// May the token do `access` on `repo` by its scopes (the owner's rights aside)?
    pub fn allows(&self, repo: &RepoName, access: Access) -> bool {
        self.scopes.iter().any(|s| s.matches(repo) && s.permits(access))
    }

    pub fn may_push_somewhere(&self) -> bool {
        self.scopes.iter().any(|s| s.actions.contains(&Action::Push))
    }

    pub fn expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }
}

/// What a new token is made of; the owner is an existing account.
#[derive(Debug, Clone)]
pub struct NewPat {
    pub name: String,
    pub owner: String,
    pub robot: Option<String>,
    pub scopes: Vec<Scope>,
    pub expires: Option<u64>,
}

impl NewPat {
    fn validate(&self) -> AppResult<()> {
        if self.name.len() > 64 || !is_component(&self.name) {
            return Err(AppError::bad_request(
                "Invalid token name: 1 to 64 characters of a-z, 0-9 and the separators '.', '_', '-' (between letters or digits)",
            ));
        }
        if self.scopes.is_empty() || self.scopes.len() > MAX_SCOPES {
            return Err(AppError::bad_request(format!("A token lists 1 to {MAX_SCOPES} scopes")));
        }
        if let Some(ns) = &self.robot {
            if !(valid_username(ns) || ns == "library") {
                return Err(AppError::bad_request(format!("Invalid robot namespace {ns:?}")));
            }
            if let Some(s) = self.scopes.iter().find(|s| s.namespace() != ns) {
                return Err(AppError::bad_request(format!(
                    "A robot of {ns} works in {ns}/ only, not on {}",
                    s.repository
                )));
            }
        }
        if self.expires.is_some_and(|e| e <= now_secs()) {
            return Err(AppError::bad_request("Expiry must lie in the future"));
        }
        Ok(())
    }

    fn login(&self) -> String {
        match &self.robot {
            Some(ns) => robot_login(ns, &self.name),
            None => self.owner.clone(),
        }
    }
}

fn secret_key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn name_key(login: &str, name: &str) -> Vec<u8> {
    format!("{login}\n{name}").into_bytes()
}

fn random_hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    hex::encode(raw)
}

fn abort(e: AppError) -> ConflictableTransactionError<AppError> {
    ConflictableTransactionError::Abort(e)
}

fn settle<T>(result: Result<T, TransactionError<AppError>>) -> AppResult<T> {
    match result {
        Ok(v) => Ok(v),
        Err(TransactionError::Abort(e)) => Err(e),
        Err(TransactionError::Storage(e)) => Err(e.into()),
    }
}

impl Index {
    /// Creates a token for an existing, active account; returns it and its secret (the only
    /// time the secret exists outside the client).
    pub fn create_pat(&self, new: &NewPat) -> AppResult<(Pat, String)> {
        new.validate()?;
        let secret = format!("{SECRET_PREFIX}{}", random_hex(24));
        let hash = secret_key(&secret);
        let pat = Pat {
            v: 1,
            id: random_hex(10),
            name: new.name.clone(),
            login: new.login(),
            owner: new.owner.clone(),
            owner_uid: String::new(),
            robot: new.robot.clone(),
            scopes: new.scopes.clone(),
            expires: new.expires,
            created: now_secs(),
            last_used: None,
            hash: hex::encode(hash),
        };
        let name = name_key(&pat.login, &pat.name);
        // The owner is read in the same transaction, so a token is never made for an account
        // being deleted or deactivated at that moment (those remove the account's tokens).
        let result = (&self.users, &self.pats, &self.pat_secrets, &self.pat_names).transaction(
            |(users, pats, secrets, names)| {
                let Some(raw) = users.get(new.owner.as_bytes())? else {
                    return Err(abort(AppError::not_found(format!("No such user: {}", new.owner))));
                };
                let owner: super::User = decode(&raw).map_err(abort)?;
                if !owner.active {
                    return Err(abort(AppError::conflict(format!(
                        "{} is not active: activate the account first",
                        new.owner
                    ))));
                }
                if names.get(&name)?.is_some() {
                    return Err(abort(AppError::new(
                        Kind::Conflict,
                        format!("{} already has a token named {}", pat.login, pat.name),
                    )));
                }
                if pats.get(pat.id.as_bytes())?.is_some() {
                    return Err(abort(AppError::internal("token id collision")));
                }
                let mut pat = pat.clone();
                pat.owner_uid = owner.uid;
                pats.insert(pat.id.as_bytes(), encode(&pat).map_err(abort)?)?;
                secrets.insert(&hash, pat.id.as_bytes())?;
                names.insert(name.as_slice(), pat.id.as_bytes())?;
                Ok(pat)
            },
        );
        Ok((settle(result)?, secret))
    }

    /// The token a secret belongs to, expired or not. Two reads (sled's page cache serves
    /// both), called inline on the request path like a user lookup.
    pub fn pat_by_secret(&self, secret: &str) -> AppResult<Option<Pat>> {
        let Some(id) = self.pat_secrets.get(secret_key(secret))? else {
            return Ok(None);
        };
        match self.pats.get(&id)? {
            Some(raw) => Ok(Some(decode(&raw)?)),
            None => Ok(None),
        }
    }

    pub fn pat(&self, id: &str) -> AppResult<Option<Pat>> {
        match self.pats.get(id.as_bytes())? {
            Some(raw) => Ok(Some(decode(&raw)?)),
            None => Ok(None),
        }
    }

    /// Every token (the API filters by owner).
    pub fn pats(&self) -> AppResult<Vec<Pat>> {
        self.pats.iter().values().map(|v| decode(&v?)).collect()
    }

    /// Revokes a token: its record, secret and name go together.
    pub fn delete_pat(&self, id: &str) -> AppResult<Pat> {
        let result = (&self.pats, &self.pat_secrets, &self.pat_names).transaction(|(pats, secrets, names)| {
            let Some(raw) = pats.remove(id.as_bytes())? else {
                return Err(abort(AppError::not_found(format!("No such token: {id}"))));
            };
            let pat: Pat = decode(&raw).map_err(abort)?;
            let hash = hex::decode(&pat.hash).map_err(|e| abort(AppError::internal(e)))?;
            secrets.remove(hash)?;
            names.remove(name_key(&pat.login, &pat.name))?;
            Ok(pat)
        });
        settle(result)
    }

    /// Revokes the tokens an account owns (it is being deactivated or deleted) and, with
    /// `namespace`, the robots of its namespace (deleted: the name may go to someone else).
    /// Returns how many went.
    pub fn delete_pats_of(&self, username: &str, namespace: bool) -> AppResult<usize> {
        let mut n = 0;
        for pat in self.pats()? {
            if pat.owner == username || (namespace && pat.robot.as_deref() == Some(username)) {
                match self.delete_pat(&pat.id) {
                    Ok(_) => n += 1,
                    // Revoked meanwhile by someone else: gone either way.
                    Err(e) if e.kind == Kind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(n)
    }

    /// Records a use. Compare-and-swap, so a token revoked meanwhile is never written back.
    pub fn touch_pat(&self, pat: &Pat, now: u64) -> AppResult<()> {
        let Some(old) = self.pats.get(pat.id.as_bytes())? else {
            return Ok(());
        };
        let mut current: Pat = decode(&old)?;
        current.last_used = Some(now);
        let _ = self
            .pats
            .compare_and_swap(pat.id.as_bytes(), Some(old), Some(encode(&current)?))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(r: &str, a: &[Action]) -> Scope {
        Scope::parse(r, a.to_vec()).expect("scope")
    }

    #[test]
    fn scopes_match_names_and_namespaces() {
        let repo = |n: &str| RepoName::parse(n).expect("name");
        let exact = scope("alice/app", &[Action::Pull]);
        assert!(exact.matches(&repo("alice/app")));
        assert!(!exact.matches(&repo("alice/app2")));
        assert!(!exact.matches(&repo("alice/app/sub")));
        assert!(exact.permits(Access::Read) && !exact.permits(Access::Write));
        let ns = scope("alice/*", &[Action::Push, Action::Push]);
        assert_eq!(ns.actions, vec![Action::Push], "duplicates dropped");
        assert!(ns.matches(&repo("alice/app")) && ns.matches(&repo("alice/a/b")));
        assert!(!ns.matches(&repo("alicex/app")) && !ns.matches(&repo("bob/app")));
        assert!(ns.permits(Access::Read), "push includes pull");
        assert!(ns.permits(Access::Write) && !ns.permits(Access::Delete));
        assert_eq!(scope("busybox", &[Action::Pull]).repository, "library/busybox");
        for bad in ["*", "alice/*/x", "Alice/app", "a/b*", "/*", "alice/**"] {
            assert!(Scope::parse(bad, vec![Action::Pull]).is_err(), "{bad}");
        }
        assert!(Scope::parse("alice/app", vec![]).is_err(), "no actions");
    }

    #[test]
    fn tokens_are_created_found_and_revoked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let index = Index::open(&dir.path().join("v1"), 10_000).expect("open");
        index
            .create_user("alice", "secret-1", "a@example.com", true, false)
            .expect("alice");
        let new = |name: &str, robot: Option<&str>, repo: &str| NewPat {
            name: name.into(),
            owner: "alice".into(),
            robot: robot.map(str::to_string),
            scopes: vec![scope(repo, &[Action::Pull])],
            expires: None,
        };
        let (pat, secret) = index.create_pat(&new("laptop", None, "alice/app")).expect("create");
        assert!(is_secret(&secret) && secret.len() == SECRET_PREFIX.len() + 48);
        assert_eq!(pat.login, "alice");
        assert!(!index.pats().expect("list")[0].hash.contains(&secret));
        assert_eq!(index.pat_by_secret(&secret).expect("find"), Some(pat.clone()));
        assert!(index.pat_by_secret("skiff_pat_00").expect("find").is_none());
        let dup = index.create_pat(&new("laptop", None, "alice/app")).unwrap_err();
        assert_eq!(dup.kind, Kind::Conflict);
        let bad = index.create_pat(&new("ci", Some("alice"), "bob/app")).unwrap_err();
        assert_eq!(bad.kind, Kind::BadRequest, "robots stay in their namespace");
        let (robot, _) = index.create_pat(&new("ci", Some("alice"), "alice/*")).expect("robot");
        assert_eq!(robot.login, "robot$alice+ci");
        let ghost = NewPat {
            owner: "ghost".into(),
            ..new("x", None, "ghost/app")
        };
        assert_eq!(index.create_pat(&ghost).unwrap_err().kind, Kind::NotFound);

        index.delete_pat(&pat.id).expect("revoke");
        assert!(index.pat_by_secret(&secret).expect("find").is_none());
        index
            .create_pat(&new("laptop", None, "alice/app"))
            .expect("name free again");
        assert_eq!(index.delete_pats_of("alice", false).expect("purge"), 2);
        assert!(index.pats().expect("list").is_empty());
    }
}
