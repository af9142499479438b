//! User accounts: creation with unique username and email (one transaction over both trees),
//! pbkdf2 password hashes, activation and the admin flag.

use super::password;
use super::{decode, encode, now_secs, Index};
use crate::error::{AppError, AppResult, Kind};
use crate::names::valid_username;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub v: u32,
    pub username: String,
    pub email: String,
    /// PHC string `$pbkdf2-sha256$i=...,l=32$salt$hash`.
    pub password: String,
    pub active: bool,
    pub admin: bool,
    pub created: u64,
    /// Bumped whenever what the account may do shrinks or its password changes: tokens carry
    /// the generation they were issued under and stop working when it moves on.
    #[serde(default)]
    pub generation: u64,
    /// Random, given at creation: an access token names the account by it too, so no token of
    /// a deleted account ever works for an account later created under its name. (Accounts
    /// made before it existed have none; a re-created one always has one.)
    #[serde(default)]
    pub uid: String,
}

/// The exact body Docker 1.x looks for to switch from registration to login.
pub const USER_EXISTS: &str = "Username or email already exists";

/// Names that read as the server's own (routes, roles, the official namespace): nobody may
/// register them over the API, so no stranger's account can pass for the server or its
/// administrators. An operator may still create them (`skiff user add admin`).
pub const RESERVED_NAMES: &[&str] = &[
    "admin",
    "administrator",
    "root",
    "library",
    "users",
    "user",
    "token",
    "tokens",
    "metrics",
    "v1",
    "v2",
    "api",
    "static",
    "search",
    "repositories",
    "images",
    "skiff",
    "registry",
    "index",
    "ping",
    "system",
    "support",
    "anonymous",
    "nobody",
];

/// Refuses a reserved name (self-registration only).
pub fn check_not_reserved(username: &str) -> AppResult<()> {
    if RESERVED_NAMES.contains(&username) {
        return Err(AppError::bad_request(format!(
            "Invalid username: {username:?} is reserved"
        )));
    }
    Ok(())
}

pub fn validate_new(username: &str, password: &str, email: &str) -> AppResult<()> {
    if !valid_username(username) {
        return Err(AppError::bad_request(
            "Invalid username: 2 to 64 characters of a-z, 0-9 and the separators '.', '_', '-' (between letters or digits)",
        ));
    }
    validate_password(password)?;
    validate_email(email)
}

/// Longer passwords are refused: PBKDF2 hashes the whole password every round.
pub const MAX_PASSWORD_BYTES: usize = 1024;

pub fn validate_password(password: &str) -> AppResult<()> {
    if password.chars().count() < 5 {
        return Err(AppError::bad_request("Invalid password: at least 5 characters"));
    }
    if password.trim().is_empty() {
        return Err(AppError::bad_request("Invalid password: not only white space"));
    }
    // Basic credentials whose password has this prefix are checked as access tokens only.
    if super::pats::is_secret(password) {
        return Err(AppError::bad_request(format!(
            "Invalid password: it may not begin with {} (access tokens do)",
            super::pats::SECRET_PREFIX
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::bad_request(format!(
            "Invalid password: at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

pub fn validate_email(email: &str) -> AppResult<()> {
    let ok = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.contains(char::is_whitespace)
                && !domain.contains('@')
                && email.len() <= 254
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(AppError::bad_request("Invalid email address"))
    }
}

impl Index {
    /// A hash, at this index's round count, of a password nobody has: unknown users are checked
    /// against it, so their answer takes as long as a wrong password's and names cannot be
    /// probed by timing. Blocking (the first call hashes).
    pub fn dummy_phc(&self) -> AppResult<String> {
        if let Some(phc) = self.dummy_phc.get() {
            return Ok(phc.clone());
        }
        let phc = password::hash(&hex::encode(rand::random::<[u8; 16]>()), self.pbkdf2_rounds)?;
        Ok(self.dummy_phc.get_or_init(|| phc).clone())
    }

    /// Creates a user. Hashing is slow on purpose: call this from a blocking context.
    pub fn create_user(
        &self,
        username: &str,
        password: &str,
        email: &str,
        active: bool,
        admin: bool,
    ) -> AppResult<User> {
        validate_new(username, password, email)?;
        let user = User {
            v: 1,
            username: username.to_string(),
            email: email.to_lowercase(),
            password: password::hash(password, self.pbkdf2_rounds)?,
            active,
            admin,
            created: now_secs(),
            generation: 0,
            uid: hex::encode(rand::random::<[u8; 16]>()),
        };
        let result = (&self.users, &self.emails, &self.retired).transaction(|(users, emails, retired)| {
            if users.get(user.username.as_bytes())?.is_some() || emails.get(user.email.as_bytes())?.is_some() {
                return Err(ConflictableTransactionError::Abort(AppError::new(
                    Kind::AccountExists,
                    USER_EXISTS,
                )));
            }
            let mut user = user.clone();
            user.generation = retired.get(user.username.as_bytes())?.map_or(0, |g| generation_of(&g));
            let value = encode(&user).map_err(ConflictableTransactionError::Abort)?;
            users.insert(user.username.as_bytes(), value)?;
            emails.insert(user.email.as_bytes(), user.username.as_bytes())?;
            Ok(user)
        });
        match result {
            Ok(user) => Ok(user),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Deletes an account. Its name is retired at its next generation: an account created
    /// later under the same name starts there, so the old account's tokens stay dead. Its access
    /// tokens and the robots of its namespace are revoked (they would fail anyway: see `uid`).
    pub fn delete_user(&self, username: &str) -> AppResult<User> {
        let user = self.delete_account(username)?;
        self.forget_user_stars(username)?;
        self.delete_pats_of(username, true)?;
        Ok(user)
    }

    fn delete_account(&self, username: &str) -> AppResult<User> {
        let result = (&self.users, &self.emails, &self.retired).transaction(|(users, emails, retired)| {
            let Some(raw) = users.remove(username.as_bytes())? else {
                return Err(ConflictableTransactionError::Abort(AppError::not_found(format!(
                    "No such user: {username}"
                ))));
            };
            let user: User = decode(&raw).map_err(ConflictableTransactionError::Abort)?;
            emails.remove(user.email.as_bytes())?;
            retired.insert(username.as_bytes(), &(user.generation + 1).to_be_bytes())?;
            Ok(user)
        });
        match result {
            Ok(user) => Ok(user),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    pub fn user(&self, username: &str) -> AppResult<Option<User>> {
        match self.users.get(username.as_bytes())? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    pub fn users(&self) -> AppResult<Vec<User>> {
        self.users.iter().values().map(|v| decode(&v?)).collect()
    }

    pub fn user_exists(&self, username: &str, email: &str) -> AppResult<bool> {
        Ok(self.users.contains_key(username.as_bytes())?
            || self.emails.contains_key(email.to_lowercase().as_bytes())?)
    }

    /// Read-modify-write of one user with compare-and-swap, so concurrent updates never lose one.
    fn update_user(&self, username: &str, f: impl Fn(&mut User) -> AppResult<()>) -> AppResult<User> {
        loop {
            let old = self
                .users
                .get(username.as_bytes())?
                .ok_or_else(|| AppError::not_found(format!("No such user: {username}")))?;
            let mut user: User = decode(&old)?;
            f(&mut user)?;
            let new = encode(&user)?;
            if self
                .users
                .compare_and_swap(username.as_bytes(), Some(old), Some(new))?
                .is_ok()
            {
                return Ok(user);
            }
        }
    }

    pub fn set_password(&self, username: &str, password: &str) -> AppResult<User> {
        validate_password(password)?;
        let phc = password::hash(password, self.pbkdf2_rounds)?;
        self.update_user(username, |u| {
            u.password = phc.clone();
            u.generation += 1;
            Ok(())
        })
    }

    /// Deactivating an account also revokes its access tokens: they stay dead if it is
    /// activated again (v1 tokens and JWTs do too, by the generation).
    pub fn set_active(&self, username: &str, active: bool) -> AppResult<User> {
        let user = self.update_user(username, |u| {
            if u.active != active {
                u.active = active;
                u.generation += 1;
            }
            Ok(())
        })?;
        if !active {
            self.delete_pats_of(username, false)?;
        }
        Ok(user)
    }

    pub fn set_admin(&self, username: &str, admin: bool) -> AppResult<User> {
        self.update_user(username, |u| {
            if u.admin != admin {
                u.admin = admin;
                u.generation += 1;
            }
            Ok(())
        })
    }

    pub fn set_email(&self, username: &str, email: &str) -> AppResult<User> {
        validate_email(email)?;
        let email = email.to_lowercase();
        let user = self
            .user(username)?
            .ok_or_else(|| AppError::not_found(format!("No such user: {username}")))?;
        if user.email == email {
            return Ok(user);
        }
        let result = (&self.users, &self.emails).transaction(|(users, emails)| {
            if emails.get(email.as_bytes())?.is_some() {
                return Err(ConflictableTransactionError::Abort(AppError::new(
                    Kind::AccountExists,
                    USER_EXISTS,
                )));
            }
            let Some(raw) = users.get(username.as_bytes())? else {
                return Err(ConflictableTransactionError::Abort(AppError::not_found("No such user")));
            };
            let mut u: User = decode(&raw).map_err(ConflictableTransactionError::Abort)?;
            emails.remove(u.email.as_bytes())?;
            u.email = email.clone();
            emails.insert(email.as_bytes(), username.as_bytes())?;
            users.insert(
                username.as_bytes(),
                encode(&u).map_err(ConflictableTransactionError::Abort)?,
            )?;
            Ok(u)
        });
        match result {
            Ok(u) => Ok(u),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }
}

fn generation_of(raw: &[u8]) -> u64 {
    <[u8; 8]>::try_from(raw).map_or(0, u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_odd_passwords_and_the_dummy_hash() {
        assert!(check_not_reserved("admin").is_err());
        assert!(check_not_reserved("library").is_err());
        assert!(check_not_reserved("alice").is_ok());
        assert!(
            validate_new("admin", "secret1", "a@example.com").is_ok(),
            "operators may"
        );
        assert!(
            validate_new("alice", "      ", "a@example.com").is_err(),
            "white space only"
        );
        assert!(
            validate_new("alice", &"x".repeat(1025), "a@example.com").is_err(),
            "over 1 KiB"
        );
        assert!(validate_new("alice", &"x".repeat(1024), "a@example.com").is_ok());
        let dir = tempfile::tempdir().expect("temp dir");
        let index = Index::open(&dir.path().join("v1"), 12_345).expect("open");
        let phc = index.dummy_phc().expect("dummy");
        assert!(phc.starts_with("$pbkdf2-sha256$i=12345,"), "{phc}");
        assert_eq!(index.dummy_phc().expect("again"), phc, "made once");
    }

    /// A deleted account's name and email are free again, and an account re-created under the
    /// name starts past the old one's generation, so none of the old tokens fit it.
    #[test]
    fn deleted_names_are_retired_past_their_generation() {
        let dir = tempfile::tempdir().expect("temp dir");
        let index = Index::open(&dir.path().join("v1"), 10_000).expect("open");
        index
            .create_user("bob", "secret-1", "b@example.com", true, false)
            .expect("create");
        let old = index.set_password("bob", "secret-2").expect("password").generation;
        assert_eq!(index.delete_user("bob").expect("delete").generation, old);
        assert!(index.user("bob").expect("read").is_none());
        assert!(index.delete_user("bob").is_err(), "gone");
        let new = index
            .create_user("bob", "secret-3", "b@example.com", true, false)
            .expect("again");
        assert_eq!(new.generation, old + 1);
    }
}
