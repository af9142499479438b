//! Names parsed once into newtypes: repository names (with the v1 `library/` rule), v1 image ids
//! and tags. Every rule here also keeps names safe to use as storage paths: no `..`, no `/` where
//! a single component is expected, no `%`, no upper case in repository names.

use crate::error::{AppError, AppResult, Kind};
use std::fmt;

pub const MAX_NAME_LEN: usize = 255;

/// A repository name such as `alice/app` or `library/busybox`; always at least two components.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

/// One path component of the distribution grammar: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
pub fn is_component(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-", followed by an alphanumeric.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !is_alnum(b[i]) {
            return false;
        }
    }
    true
}

fn is_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

impl RepoName {
    /// Parses a name as it appears in a URL: a bare `name` means `library/name`.
    pub fn parse(raw: &str) -> AppResult<RepoName> {
        let raw = raw.trim_end_matches('/');
        let invalid = || AppError::new(Kind::NameInvalid, format!("Invalid repository name: {raw:?}"));
        if raw.is_empty() || raw.len() > MAX_NAME_LEN {
            return Err(invalid());
        }
        if !raw.split('/').all(is_component) {
            return Err(invalid());
        }
        let full = if raw.contains('/') {
            raw.to_string()
        } else {
            format!("library/{raw}")
        };
        if full.len() > MAX_NAME_LEN {
            return Err(invalid());
        }
        Ok(RepoName(full))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first component: the owning user, or `library`.
    pub fn namespace(&self) -> &str {
        self.0.split('/').next().unwrap_or_default()
    }

    pub fn is_library(&self) -> bool {
        self.namespace() == "library"
    }

    /// A form without `/` for use as one file name (`+` never occurs in names).
    pub fn flat(&self) -> String {
        self.0.replace('/', "+")
    }

    pub fn from_flat(flat: &str) -> Option<RepoName> {
        RepoName::parse(&flat.replace('+', "/")).ok()
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A v1 image id: 64 lower-case hex (16-hex legacy ids are accepted for reads by PYREG; new ids
/// from Docker 1.x are always 64).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageId(String);

impl ImageId {
    pub fn parse(raw: &str) -> AppResult<ImageId> {
        let ok = (raw.len() == 64 || raw.len() == 16)
            && raw.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
        if ok {
            Ok(ImageId(raw.to_string()))
        } else {
            // PYREG answers malformed ids with 404, and so do clients expect.
            Err(AppError::not_found("Invalid image ID"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}` (Docker's and OCI's rule), and never containing `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TagName(String);

impl TagName {
    pub fn parse(raw: &str) -> AppResult<TagName> {
        let b = raw.as_bytes();
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        let ok = !b.is_empty()
            && b.len() <= 128
            && word(b[0])
            && b.iter().all(|&c| word(c) || c == b'.' || c == b'-')
            && !raw.contains("..");
        if ok {
            Ok(TagName(raw.to_string()))
        } else {
            Err(AppError::new(
                Kind::BadRequest,
                format!("Invalid tag name {raw:?} (must match [\\w][\\w.-]{{0,127}})"),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TagName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Usernames: 2 to 64 characters forming one namespace component (`bob`, `li`, `john.doe`,
/// `j-smith`): they become namespaces, so a name is valid exactly when today's clients accept
/// it as one. Docker 1.x clients push only to namespaces of 4-30 `[a-z0-9_]`; the README says
/// so, and an account with another name still pulls and pushes with every v2 client.
pub fn valid_username(name: &str) -> bool {
    (2..=64).contains(&name.len()) && is_component(name) && name != "library"
}

/// Who owns a copy of a v1 image: the uploader of its first json. A username; in delegated mode
/// whatever name the index gives (or `@<repo>` when it gives none); empty for images stored
/// before owners were recorded (nobody's: readable only through repositories).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner(String);

impl Owner {
    pub fn new(name: &str) -> Owner {
        Owner(name.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// One storage key component: `@<username>` for a valid username, `~<hex of the bytes>` for
    /// any other name (it may hold `/`, `..` or nothing at all). Neither form is the name of an
    /// entry an image had before copies (`json`, `_repos`, ...), and no two owners share one.
    pub fn key(&self) -> String {
        if valid_username(&self.0) {
            format!("@{}", self.0)
        } else {
            format!("~{}", hex::encode(self.0.as_bytes()))
        }
    }

    /// The owner a key component names: exactly the inverse of [`Owner::key`].
    pub fn from_key(key: &str) -> Option<Owner> {
        let owner = if let Some(name) = key.strip_prefix('@') {
            Owner::new(name)
        } else {
            let raw = hex::decode(key.strip_prefix('~')?).ok()?;
            Owner(String::from_utf8(raw).ok()?)
        };
        (owner.key() == key).then_some(owner)
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One stored copy of a v1 image: ids are global, so each owner keeps their own copy of an id,
/// and a caller who may not read another's copy can push theirs under the same id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageCopy {
    pub id: ImageId,
    pub owner: Owner,
}

impl ImageCopy {
    pub fn new(id: &ImageId, owner: &Owner) -> ImageCopy {
        ImageCopy {
            id: id.clone(),
            owner: owner.clone(),
        }
    }
}

impl fmt::Display for ImageCopy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (copy of {:?})", self.id, self.owner.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names() {
        assert_eq!(RepoName::parse("busybox").unwrap().as_str(), "library/busybox");
        assert_eq!(RepoName::parse("alice/app/").unwrap().as_str(), "alice/app");
        assert_eq!(RepoName::parse("a/b/c-d.e__f").unwrap().as_str(), "a/b/c-d.e__f");
        for bad in [
            "",
            "Alice/app",
            "alice/../x",
            "alice/.x",
            "a//b",
            "a/%2e%2e",
            "a/b_",
            "a/-b",
            "a/b..c",
        ] {
            assert!(RepoName::parse(bad).is_err(), "{bad}");
        }
        assert!(RepoName::parse(&"a".repeat(256)).is_err());
    }

    #[test]
    fn tags_and_ids() {
        assert!(TagName::parse("latest").is_ok());
        assert!(TagName::parse("v1.2-RC_3").is_ok());
        for bad in ["", ".x", "-x", "a/b", "a..b", "..", &"a".repeat(129)] {
            assert!(TagName::parse(bad).is_err(), "{bad}");
        }
        assert!(ImageId::parse(&"a".repeat(64)).is_ok());
        assert!(ImageId::parse(&"A".repeat(64)).is_err());
        assert!(ImageId::parse("../../etc").is_err());
    }

    #[test]
    fn usernames() {
        for good in ["alice", "bob_2", "bob", "li", "john.doe", "j-smith", &"a".repeat(64)] {
            assert!(valid_username(good), "{good}");
        }
        for bad in [
            "a",
            "_bob",
            "bob_",
            "Alice",
            "library",
            "a..b",
            "a/b",
            "j smith",
            &"a".repeat(65),
        ] {
            assert!(!valid_username(bad), "{bad}");
        }
    }

    #[test]
    fn owner_keys() {
        for (name, key) in [
            ("alice", "@alice"),
            ("", "~"),
            ("@alice/app", "~40616c6963652f617070"),
            ("..", "~2e2e"),
            ("b", "~62"),
            ("bob", "@bob"),
        ] {
            let owner = Owner::new(name);
            assert_eq!(owner.key(), key, "{name:?}");
            assert_eq!(Owner::from_key(key), Some(owner), "{key}");
        }
        // Only exactly the key of an owner names one.
        for bad in [
            "alice",
            "@b",
            "@Alice",
            "~616c696365",
            "~zz",
            "~6",
            "json",
            "_repos",
            "@",
        ] {
            assert_eq!(Owner::from_key(bad), None, "{bad}");
        }
    }
}

/// A host as a client may name this server in `Host`: a DNS name or IPv4 address, or a
/// bracketed IPv6 address, with an optional port. Nothing that could break out of a quoted
/// header value or a URL.
pub fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(':') && !p.contains(']') => (n, Some(p)),
        _ => (host, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let name_ok = if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    };
    port_ok && name_ok
}

#[cfg(test)]
mod host_tests {
    use super::valid_host;

    #[test]
    fn hosts() {
        for ok in [
            "localhost",
            "registry.lan:5000",
            "10.0.0.1:80",
            "[::1]:5000",
            "[fe80::1]",
        ] {
            assert!(valid_host(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.com\",service=\"x",
            "a b",
            "host:",
            "host:99999a",
            "a/b",
            "[::1",
            "h:1:2",
        ] {
            assert!(!valid_host(bad), "{bad}");
        }
    }
}
