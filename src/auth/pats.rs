//! Signing in with an access token (see `index::pats`): HTTP Basic with the token's login name
//! (the owner's name, or a robot's `robot$<namespace>+<name>`) and its secret as the password.
//! The token then allows what its scopes and its owner's current rights both allow; tokens
//! issued on it (v1 tokens, v2 JWTs) live only as long as it does.

use super::{Gate, Holder, Identity, Principal};
use crate::clock::now_secs;
use crate::error::{AppError, AppResult};
use crate::index::Pat;
use std::net::IpAddr;

/// A use is written back at most this often per token: `last_used` is for people, and a write
/// per request would cost more than the request.
const TOUCH_EVERY_SECS: u64 = 60;

impl Gate {
    /// Checks Basic credentials whose password is an access token's secret.
    pub(super) async fn pat_login(&self, login: &str, secret: &str, address: Option<IpAddr>) -> AppResult<Identity> {
        let index = self.local()?;
        // Inline, as a user lookup: one hash and two reads from sled's cache.
        let found = index.pat_by_secret(secret)?.filter(|p| p.login == login);
        let Some(pat) = found else {
            // A valid token is looked up, not guessed, so only misses count as failed logins
            // (a flood of wrong secrets cannot lock out the right one's users).
            self.throttle.admit(login, address)?;
            self.throttle.failed(login, address);
            return Err(AppError::unauthorized(
                "Invalid access token for this login (revoked, or not this account's)",
            ));
        };
        let now = now_secs();
        if pat.expired(now) {
            return Err(AppError::unauthorized(format!("Access token {} has expired", pat.name)));
        }
        let holder = self.pat_holder(&pat)?;
        if pat.last_used.is_none_or(|t| now >= t + TOUCH_EVERY_SECS) {
            let (ix, pat) = (index.clone(), pat.clone());
            // Not awaited: the request need not wait for bookkeeping.
            tokio::task::spawn_blocking(move || {
                if let Err(e) = ix.touch_pat(&pat, now) {
                    log::warn!("cannot record the use of access token {}: {e}", pat.id);
                }
            });
        }
        log::debug!(
            "signed in as {} with access token {} of {}",
            pat.login,
            pat.id,
            pat.owner
        );
        Ok(Identity::Pat(pat, holder))
    }

    /// The owner a token acts for: the very account it was made for (same `uid`), active.
    fn pat_holder(&self, pat: &Pat) -> AppResult<Holder> {
        match self.local()?.user(&pat.owner)? {
            Some(a) if a.uid == pat.owner_uid && a.active => Ok(Holder::User(Principal {
                name: a.username,
                admin: a.admin,
                generation: a.generation,
            })),
            _ => Err(AppError::unauthorized(
                "Access token is no longer valid: its owner account is inactive or gone",
            )),
        }
    }

    /// A token issued on access token `id` for `user` works only while that access token does
    /// (not revoked, not expired, still `user`'s).
    pub(super) fn pat_alive(&self, id: &str, user: &str) -> AppResult<()> {
        match self.local()?.pat(id)? {
            Some(p) if p.owner == user && !p.expired(now_secs()) => Ok(()),
            _ => Err(AppError::unauthorized(
                "Token is no longer valid: the access token it was issued on is revoked or expired",
            )),
        }
    }
}
