//! v1 tokens: `signature=<random>,repository="ns/name",access=read|write|delete`, scoped to one
//! repository and one access level, reusable until they expire. Only a hash of the signature is
//! stored, so the lookup key reveals nothing and needs no constant-time comparison.

use super::{decode, encode, now_secs, Index};
use crate::error::AppResult;
use crate::names::RepoName;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Read,
    Write,
    Delete,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Delete => "delete",
        }
    }
    pub fn parse(s: &str) -> Option<Access> {
        match s {
            "read" => Some(Access::Read),
            "write" => Some(Access::Write),
            "delete" => Some(Access::Delete),
            _ => None,
        }
    }
    /// What a token of this access level lets its holder do. A write or delete token also reads
    /// (Docker checks existence with GET during push); a read token never writes.
    pub fn permits(self, wanted: Access) -> bool {
        self == wanted || wanted == Access::Read
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenGrant {
    pub repo: String,
    pub access: Access,
    pub user: String,
    pub expires: u64,
    /// The user's generation when the token was issued (see `User::generation`).
    #[serde(default)]
    pub generation: u64,
    /// The access token it was issued on, if any: it works only while that token does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pat: Option<String>,
}

/// The token text as the index hands it out (the value of `X-Docker-Token`).
pub fn format_token(signature: &str, repo: &RepoName, access: Access) -> String {
    format!("signature={signature},repository=\"{repo}\",access={}", access.as_str())
}

/// Every `signature=` value in an `Authorization: Token ...` header. Tolerates the doubled
/// `Token Token signature=...` form and several comma-joined tokens.
pub fn signatures(header_value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = header_value;
    while let Some(pos) = rest.find("signature=") {
        rest = &rest[pos + "signature=".len()..];
        let sig: String = rest
            .trim_start_matches('"')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if !sig.is_empty() {
            out.push(sig);
        }
    }
    out
}

fn key(signature: &str) -> [u8; 32] {
    Sha256::digest(signature.as_bytes()).into()
}

impl Index {
    /// Issues a token for `user` (`""`: anonymous); `pat`: the access token the caller signed in
    /// with, which the new token then depends on.
    pub fn issue_token(
        &self,
        repo: &RepoName,
        access: Access,
        user: &str,
        pat: Option<&str>,
        ttl_secs: u64,
    ) -> AppResult<String> {
        let mut raw = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let signature = hex::encode(raw);
        let generation = match user {
            "" => 0,
            name => self.user(name)?.map_or(0, |u| u.generation),
        };
        let grant = TokenGrant {
            repo: repo.to_string(),
            access,
            user: user.to_string(),
            expires: now_secs().saturating_add(ttl_secs),
            generation,
            pat: pat.map(str::to_string),
        };
        self.tokens.insert(key(&signature), encode(&grant)?)?;
        Ok(format_token(&signature, repo, access))
    }

    /// The grant behind a signature, if it exists and has not expired.
    pub fn token(&self, signature: &str) -> AppResult<Option<TokenGrant>> {
        let k = key(signature);
        let Some(v) = self.tokens.get(k)? else {
            return Ok(None);
        };
        let grant: TokenGrant = decode(&v)?;
        if grant.expires <= now_secs() {
            self.tokens.remove(k)?;
            return Ok(None);
        }
        Ok(Some(grant))
    }

    /// Drops expired tokens (run at start-up and now and then).
    pub fn purge_expired_tokens(&self) -> AppResult<usize> {
        let now = now_secs();
        let mut n = 0;
        for item in self.tokens.iter() {
            let (k, v) = item?;
            let expired = decode::<TokenGrant>(&v).map(|g| g.expires <= now).unwrap_or(true);
            if expired {
                self.tokens.remove(k)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_token_header_forms() {
        assert_eq!(
            signatures("Token signature=abc,repository=\"a/b\",access=write"),
            vec!["abc"]
        );
        assert_eq!(
            signatures("Token Token signature=abc,repository=\"a/b\",access=write"),
            vec!["abc"]
        );
        assert_eq!(
            signatures("Token signature=a1,repository=\"a/b\",access=read,signature=b2"),
            vec!["a1", "b2"]
        );
        assert!(signatures("Token").is_empty());
    }

    #[test]
    fn access_levels() {
        assert!(Access::Write.permits(Access::Read));
        assert!(!Access::Read.permits(Access::Write));
        assert!(!Access::Write.permits(Access::Delete));
        assert!(Access::Delete.permits(Access::Delete));
    }
}
