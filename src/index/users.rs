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
}

/// The exact body Docker 1.x looks for to switch from registration to login.
pub const USER_EXISTS: &str = "Username or email already exists";

pub fn validate_new(username: &str, password: &str, email: &str) -> AppResult<()> {
    if !valid_username(username) {
        return Err(AppError::bad_request(
            "Invalid username: 4 to 30 characters of [a-z0-9_], starting and ending with a letter or digit",
        ));
    }
    validate_password(password)?;
    validate_email(email)
}

pub fn validate_password(password: &str) -> AppResult<()> {
    if password.chars().count() < 5 {
        return Err(AppError::bad_request("Invalid password: at least 5 characters"));
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
        };
        let value = encode(&user)?;
        let result = (&self.users, &self.emails).transaction(|(users, emails)| {
            if users.get(user.username.as_bytes())?.is_some() || emails.get(user.email.as_bytes())?.is_some() {
                return Err(ConflictableTransactionError::Abort(()));
            }
            users.insert(user.username.as_bytes(), value.as_slice())?;
            emails.insert(user.email.as_bytes(), user.username.as_bytes())?;
            Ok(())
        });
        match result {
            Ok(()) => Ok(user),
            Err(TransactionError::Abort(())) => Err(AppError::new(Kind::AccountExists, USER_EXISTS)),
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
            Ok(())
        })
    }

    pub fn set_active(&self, username: &str, active: bool) -> AppResult<User> {
        self.update_user(username, |u| {
            u.active = active;
            Ok(())
        })
    }

    pub fn set_admin(&self, username: &str, admin: bool) -> AppResult<User> {
        self.update_user(username, |u| {
            u.admin = admin;
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
