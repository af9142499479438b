//! The property-based (fuzz) layer over the parsers that take client input: repository names,
//! tags, image ids, digests and manifest references, `Range` and `Content-Range`,
//! `Authorization` headers (Basic, v1 Token, Bearer JWT), token scopes, `Host`, v1 image json,
//! manifests of every media type (and the digests gc reads out of stored ones) and the storage
//! key parsers, v1 JSON bodies, search and `?n=&last=` paging, and `registry.toml` with its
//! `SKIFF_*` variables. Last, whole requests of both protocols (hostile paths, queries,
//! `Authorization`, `Range`, `Content-Range`, `Content-Type` and bodies) go through the whole app
//! on temp storage, which must answer each without a panic or a 5xx.
//!
//! Every property runs on arbitrary text and on structured, nearly valid input (valid values
//! with one thing wrong: odd lengths, other algorithms, upper case, `..`, `%2e`, unicode, huge
//! numbers), and checks that nothing panics plus the real invariants: acceptance agrees with a
//! reference regex, what is accepted round-trips (display, storage keys), a served range lies
//! within the blob. Cases per property: `PROPTEST_CASES` (default 256, what `cargo test` runs);
//! `scripts/fuzz` runs many more. Failures are not persisted to files: a failure prints its
//! minimal input, which becomes a unit test beside the parser when the bug is fixed.

use crate::auth::jwt::{AccessEntry, Claims, Signer, Verifier, ISSUER};
use crate::auth::remote::TokenClaim;
use crate::auth::scopes::parse_scope;
use crate::auth::Credentials;
use crate::digest::{Algorithm, Digest};
use crate::error::Kind;
use crate::http::files::{wanted, Wanted};
use crate::http::v2::uploads::parse_content_range;
use crate::index::tokens::signatures;
use crate::names::{valid_host, ImageId, RepoName, TagName};
use crate::registry::gc::digests_in;
use crate::registry::v1::images::parse_image_json;
use crate::registry::v2::manifest::{self, ManifestKind};
use crate::registry::v2::repositories::Reference;
use crate::storage::keys::{self, RepositoryEntry};
use base64::Engine;
use proptest::prelude::*;
use regex::Regex;
use serde_json::{json, Value};
use std::sync::LazyLock;

/// Cases from `PROPTEST_CASES` (default 256); failures are printed, never written to files.
pub(crate) fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---- strategies shared by the properties ----

/// Pieces that sit near the edges of the grammars: separators, traversal, escapes, case,
/// unicode, control characters, digest and key syntax.
const PIECES: &[&str] = &[
    "a",
    "z",
    "0",
    "9",
    "ab",
    "app",
    "library",
    ".",
    "..",
    "_",
    "__",
    "___",
    "-",
    "--",
    "/",
    "//",
    "%2e",
    "%2E",
    "%2f",
    "+",
    ":",
    "@",
    "A",
    "Z",
    "é",
    "ß",
    "\u{0}",
    "\u{7f}",
    " ",
    "\t",
    "\n",
    "\"",
    ",",
    "=",
    "*",
    "sha256",
    "sha512",
    "sha256:",
    "_layers",
    "_manifests",
    "revisions",
    "data",
    "blobs",
    "images",
    "repositories",
    "layer",
    "json",
    "0123456789abcdef",
    "ABCDEF",
];

/// Text assembled from [`PIECES`] and arbitrary characters: mostly near-valid.
pub(crate) fn near_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => proptest::sample::select(PIECES).prop_map(str::to_string),
        1 => any::<char>().prop_map(String::from),
        1 => "[a-z0-9]{1,8}",
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

/// Any text at all, near-valid text, or long runs (lengths around the limits).
pub(crate) fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => near_text(),
        2 => any::<String>(),
        1 => (proptest::sample::select(&["a", "a/", "0", "-", "/"][..]), 120usize..300)
            .prop_map(|(s, n)| s.repeat(n)),
    ]
}

/// Numbers where arithmetic breaks: 0, 1, small, the top of i64 and u64, and any.
fn edge_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        2u64..200,
        Just(i64::MAX as u64),
        Just(u64::MAX - 1),
        Just(u64::MAX),
        any::<u64>(),
    ]
}

/// One valid name component (the distribution grammar).
fn component() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,6}((\\.|_|__|-{1,3})[a-z0-9]{1,6}){0,2}"
}

/// A valid repository name as a client may spell it (one component means `library/...`).
pub(crate) fn valid_name() -> impl Strategy<Value = String> {
    (proptest::collection::vec(component(), 1..4), "/{0,2}").prop_map(|(parts, slash)| parts.join("/") + &slash)
}

/// 0-150 hex digits, lower or mixed case: every length around 64 and 128.
fn hex() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop_oneof![Just(64usize), Just(128), 0usize..150]
            .prop_flat_map(|n| proptest::collection::vec(proptest::sample::select(&b"0123456789abcdef"[..]), n))
            .prop_map(|v| String::from_utf8(v).unwrap_or_default()),
        1 => "[0-9a-fA-FgG]{60,70}",
    ]
}

fn valid_digest() -> impl Strategy<Value = Digest> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 32).prop_map(|b| format!("sha256:{}", hex::encode(b))),
        proptest::collection::vec(any::<u8>(), 64).prop_map(|b| format!("sha512:{}", hex::encode(b))),
    ]
    .prop_map(|s| s.parse().expect("a valid digest"))
}

/// Digest-like text: valid and invalid algorithms, separators and hex, or anything.
pub(crate) fn digest_text() -> impl Strategy<Value = String> {
    let algo = proptest::sample::select(
        &[
            "sha256",
            "sha512",
            "SHA256",
            "sha384",
            "md5",
            "",
            "sha256+b64",
            "sha-256",
        ][..],
    );
    let sep = proptest::sample::select(&[":", ":", ":", "", "::", "="][..]);
    prop_oneof![
        6 => (algo, sep, hex()).prop_map(|(a, s, h)| format!("{a}{s}{h}")),
        1 => valid_digest().prop_map(|d| d.to_string()),
        1 => text(),
    ]
}

/// An arbitrary JSON value, a few levels deep, with awkward leaves.
pub(crate) fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Exactly representable, so JSON round trips are exact.
        any::<i32>().prop_map(|i| Value::from(f64::from(i) / 8.0)),
        text().prop_map(Value::from),
        digest_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(text(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Any bytes, or any JSON document.
fn json_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![any::<Vec<u8>>(), json_value().prop_map(|v| v.to_string().into_bytes())]
}

/// Byte-level damage to an encoded document: truncation, a flipped byte, an inserted byte.
fn damage(mut bytes: Vec<u8>, how: u8, at: usize, with: u8) -> Vec<u8> {
    if bytes.is_empty() {
        return bytes;
    }
    let at = at % bytes.len();
    match how % 4 {
        0 => bytes.truncate(at),
        1 => bytes[at] ^= with | 1,
        2 => bytes.insert(at, with),
        _ => {}
    }
    bytes
}

// ---- reference grammars ----

static NAME_RE: LazyLock<Regex> = LazyLock::new(|| {
    let c = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
    Regex::new(&format!("^{c}(?:/{c})*/*$")).expect("regex")
});
static TAG_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").expect("regex"));
static ID_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new("^(?:[0-9a-f]{16}|[0-9a-f]{64})$").expect("regex"));
static DIGEST_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$").expect("regex"));

/// Every key a repository has, with what `parse_repository_key` must say of it.
fn repository_keys(
    repo: &RepoName,
    d: &Digest,
    tag: &TagName,
    id: &ImageId,
) -> Vec<(String, RepositoryEntry<'static>)> {
    let other = |s: String| (s, RepositoryEntry::Other(""));
    vec![
        (keys::blob_link(repo, d), RepositoryEntry::BlobLink(d.clone())),
        (keys::revision_data(repo, d), RepositoryEntry::RevisionData(d.clone())),
        other(keys::revision_type(repo, d)),
        other(keys::v2_tag(repo, tag)),
        other(keys::v1_tag(repo, tag)),
        other(keys::v1_tag_json(repo, tag)),
        other(keys::v1_member(repo, id)),
        other(keys::referrer(repo, d, d)),
    ]
}

proptest! {
    #![proptest_config(config())]

    // ---- names, tags, image ids ----

    /// Repository names: accepted exactly when the distribution grammar matches (after the
    /// trailing slashes a v1 URL may carry, and within 255 bytes as `library/...`); what is
    /// accepted is safe as a path and round-trips through every storage key parser.
    #[test]
    fn fuzz_repository_names(raw in prop_oneof![valid_name(), text()], d in valid_digest()) {
        let got = RepoName::parse(&raw);
        let trimmed = raw.trim_end_matches('/');
        let full_len = if trimmed.contains('/') { trimmed.len() } else { trimmed.len() + "library/".len() };
        prop_assert_eq!(got.is_ok(), NAME_RE.is_match(&raw) && full_len <= 255, "{:?}", raw);
        if let Ok(name) = got {
            let s = name.as_str();
            prop_assert!(s.split('/').count() >= 2);
            prop_assert!(s.len() <= 255);
            prop_assert!(!s.contains("..") && !s.contains("//") && !s.starts_with('/') && !s.ends_with('/'));
            prop_assert!(!s.contains(['+', '%', '\\']) && !s.chars().any(|c| c.is_uppercase() || c.is_whitespace()));
            prop_assert_eq!(RepoName::parse(s).ok(), Some(name.clone()), "idempotent");
            prop_assert!(!name.flat().contains('/'));
            prop_assert_eq!(RepoName::from_flat(&name.flat()), Some(name.clone()));
            prop_assert_eq!(keys::parse_repository(&name.flat()), Some(name.clone()));
            let tag = TagName::parse("latest").expect("tag");
            let id = ImageId::parse(&"e".repeat(64)).expect("id");
            for (key, entry) in repository_keys(&name, &d, &tag, &id) {
                let (parsed, got) = keys::parse_repository_key(&key).expect("a repository key");
                prop_assert_eq!(&parsed, &name, "{}", key);
                if !matches!(entry, RepositoryEntry::Other(_)) {
                    prop_assert_eq!(got, entry, "{}", key);
                }
            }
            // A repository's keys never lie under another's (deleting one never touches
            // another), also not under a name that extends it.
            if let Ok(sub) = RepoName::parse(&format!("{s}/sub")) {
                let (outer, inner) = (keys::repository(&name) + "/", keys::repository(&sub) + "/");
                prop_assert!(!inner.starts_with(&outer) && !outer.starts_with(&inner));
            }
        }
    }

    /// Two different names never share a key prefix.
    #[test]
    fn fuzz_repository_keys_are_disjoint(a in valid_name(), b in valid_name()) {
        let (a, b) = (RepoName::parse(&a), RepoName::parse(&b));
        if let (Ok(a), Ok(b)) = (a, b) {
            if a != b {
                let (a_dir, b_dir) = (keys::repository(&a) + "/", keys::repository(&b) + "/");
                prop_assert!(!b_dir.starts_with(&a_dir));
                prop_assert_ne!(keys::repository(&a), keys::repository(&b));
            }
        }
    }

    /// Tags: `[\w][\w.-]{0,127}` (ASCII) and never `..`; accepted tags are one path component.
    #[test]
    fn fuzz_tags(raw in prop_oneof!["[A-Za-z0-9_][A-Za-z0-9_.-]{0,130}", text()]) {
        let got = TagName::parse(&raw);
        prop_assert_eq!(got.is_ok(), TAG_RE.is_match(&raw) && !raw.contains(".."), "{:?}", raw);
        if let Ok(tag) = got {
            prop_assert_eq!(tag.as_str(), raw.as_str());
            prop_assert!(!tag.as_str().contains('/') && tag.as_str() != "." && !tag.as_str().starts_with(['.', '-']));
            let repo = RepoName::parse("alice/app").expect("name");
            let key = keys::v2_tag(&repo, &tag);
            prop_assert_eq!(key.rsplit('/').next(), Some(tag.as_str()));
        }
    }

    /// v1 image ids: 64 (or legacy 16) lower-case hex, nothing else.
    #[test]
    fn fuzz_image_ids(raw in prop_oneof![hex(), "[0-9a-f]{16}", text()]) {
        let got = ImageId::parse(&raw);
        prop_assert_eq!(got.is_ok(), ID_RE.is_match(&raw), "{:?}", raw);
        if let Ok(id) = got {
            prop_assert_eq!(id.as_str(), raw.as_str());
            let key = keys::image(&id, "layer");
            prop_assert_eq!(keys::parse_image_layer(&key), Some(raw.as_str()));
        }
    }

    /// `Host` as a client sends it: what is accepted cannot break out of a quoted header value
    /// or a URL's authority.
    #[test]
    fn fuzz_hosts(
        raw in prop_oneof!["[a-z0-9.-]{1,20}(:[0-9]{1,6})?", "\\[[0-9a-f:.]{0,10}\\](:[0-9]{0,6})?", text()],
    ) {
        if valid_host(&raw) {
            prop_assert!(!raw.is_empty());
            prop_assert!(raw.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)), "{:?}", raw);
        }
    }

    // ---- digests and references ----

    /// Digests: accepted exactly as `sha256:<64 hex>` / `sha512:<128 hex>` (lower case); a
    /// parsed digest displays as the text it came from and round-trips through its blob key
    /// and JSON.
    #[test]
    fn fuzz_digests(raw in digest_text()) {
        let got = raw.parse::<Digest>();
        prop_assert_eq!(got.is_ok(), DIGEST_RE.is_match(&raw), "{:?}", raw);
        match got {
            Ok(d) => {
                prop_assert_eq!(d.to_string(), raw.clone());
                prop_assert_eq!(keys::parse_blob(&keys::blob(&d)), Some(d.clone()));
                let json = serde_json::to_string(&d).expect("serialize");
                prop_assert_eq!(serde_json::from_str::<Digest>(&json).ok(), Some(d.clone()));
                let algo = if raw.starts_with("sha256:") { Algorithm::Sha256 } else { Algorithm::Sha512 };
                prop_assert_eq!(d.algorithm(), algo);
            }
            Err(e) => prop_assert_eq!(e.kind, Kind::DigestInvalid),
        }
    }

    /// A manifest reference is a tag, or (with a `:`) a digest; nothing else.
    #[test]
    fn fuzz_references(raw in prop_oneof![digest_text(), "[A-Za-z0-9_][A-Za-z0-9_.-]{0,130}", text()]) {
        match Reference::parse(&raw) {
            Ok(Reference::Tag(t)) => {
                prop_assert!(!raw.contains(':'));
                prop_assert_eq!(t.as_str(), raw.as_str());
            }
            Ok(Reference::Digest(d)) => prop_assert_eq!(d.to_string(), raw.clone()),
            Err(e) => {
                let expected = if raw.contains(':') { Kind::DigestInvalid } else { Kind::TagInvalid };
                prop_assert_eq!(e.kind, expected);
            }
        }
    }

    // ---- Range and Content-Range ----

    /// `Range` on a blob of `size` bytes: never panics, and a range served lies within the blob.
    #[test]
    fn fuzz_range_any_text(raw in prop_oneof![text(), "(bytes|BYTES|pages)=[0-9,-]{0,30}"], size in edge_u64()) {
        if let Wanted::Part { start, end } = wanted(Some(&raw), size) {
            prop_assert!(start <= end && end < size, "{:?} on {}: {}-{}", raw, size, start, end);
        }
    }

    /// One byte range spec, in every form and with numbers up to and past u64: the answer is
    /// the one RFC 9110 §14.1.2 gives (the end clamped to the size; a suffix of at most the
    /// whole blob; `a-b` with `b < a` invalid, so 416).
    #[test]
    fn fuzz_range_matches_rfc_9110(
        form in 0u8..3,
        a in edge_u64(),
        b in edge_u64(),
        unit in proptest::sample::select(&["bytes", "Bytes", "BYTES"][..]),
        size in edge_u64(),
        too_big in any::<bool>(),
    ) {
        let (text, expected) = match form {
            0 => {
                let ok = a <= b && a < size;
                (format!("{unit}={a}-{b}"), ok.then(|| (a, b.min(size - 1))))
            }
            1 => (format!("{unit}={a}-"), (a < size).then(|| (a, size - 1))),
            _ => (format!("{unit}=-{b}"), (b > 0 && size > 0).then(|| (size - b.min(size), size - 1))),
        };
        // A number past u64 is no number: the spec is invalid, so 416.
        let (text, expected) = if too_big { (format!("{text}99999999999999999999"), None) } else { (text, expected) };
        let expected = match expected {
            Some((start, end)) => Wanted::Part { start, end },
            None => Wanted::Unsatisfiable,
        };
        prop_assert_eq!(wanted(Some(&text), size), expected, "{}", text);
    }

    /// `Content-Range` of an upload chunk, with or without `Content-Length`: never panics;
    /// accepted ranges are the numbers sent, and they agree with a declared length.
    #[test]
    fn fuzz_content_range(
        raw in prop_oneof![text(), "(bytes )?[0-9]{0,22}-[0-9]{0,22}(/[0-9*]{0,5})?"],
        len in proptest::option::of(prop_oneof![text(), "[0-9]{1,22}"]),
    ) {
        if let Ok((start, end)) = parse_content_range(&raw, len.as_deref()) {
            let declared = len.as_deref().and_then(|l| l.trim().parse::<u64>().ok());
            if let (Some(l), true) = (declared, end >= start) {
                prop_assert_eq!(u128::from(end - start) + 1, u128::from(l));
            }
        }
    }

    /// Well-formed `Content-Range` values give back their numbers; a declared length that does
    /// not match is SIZE_INVALID, also for ranges spanning all of u64.
    #[test]
    fn fuzz_content_range_structured(
        start in edge_u64(),
        end in edge_u64(),
        len in proptest::option::of(edge_u64()),
        long_form in any::<bool>(),
    ) {
        let raw = if long_form { format!("bytes {start}-{end}/*") } else { format!("{start}-{end}") };
        let got = parse_content_range(&raw, len.map(|l| l.to_string()).as_deref());
        let matches = |l: u64| end < start || u128::from(end - start) + 1 == u128::from(l);
        match len {
            Some(l) if !matches(l) => prop_assert_eq!(got.map_err(|e| e.kind), Err(Kind::SizeInvalid)),
            _ => prop_assert_eq!(got.map_err(|e| e.kind), Ok((start, end))),
        }
    }

    // ---- Authorization ----

    /// Any `Authorization` value: never panics, and what is recognised is well-formed.
    #[test]
    fn fuzz_authorization_any_text(raw in prop_oneof![
        text(),
        (proptest::sample::select(&["Basic ", "basic ", "Token ", "Token Token ", "Bearer ", "BEARER "][..]), text())
            .prop_map(|(s, t)| s.to_string() + &t),
    ]) {
        match Credentials::parse(&raw) {
            Credentials::Basic { user, .. } => prop_assert!(!user.is_empty() && !user.contains(':')),
            Credentials::Token(sigs) => {
                prop_assert!(!sigs.is_empty());
                prop_assert!(sigs.iter().all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric())));
                // A delegated registry's view of it: the repository it claims, if any, is a
                // valid name.
                let claim = TokenClaim::new(&raw, &sigs);
                if let Some(repo) = claim.claimed_repo() {
                    prop_assert!(RepoName::parse(repo.as_str()).is_ok());
                }
            }
            Credentials::Bearer(t) => prop_assert_eq!(t.trim(), t.as_str()),
            Credentials::None => {}
        }
        for sig in signatures(&raw) {
            prop_assert!(!sig.is_empty() && sig.chars().all(|c| c.is_ascii_alphanumeric()));
        }
    }

    /// Well-formed Basic, Token and Bearer values (any scheme case, any spacing) parse to what
    /// was sent.
    #[test]
    fn fuzz_authorization_structured(
        user in prop_oneof!["[a-z0-9_]{1,30}", "[^:]{1,20}"],
        password in prop_oneof![".{0,40}", any::<String>()],
        sig in "[A-Za-z0-9]{1,64}",
        name in prop_oneof![valid_name(), text()],
        access in proptest::sample::select(&["read", "write", "delete", "x"][..]),
        scheme_case in any::<bool>(),
        pad in "[ ]{0,3}",
        doubled in any::<bool>(),
    ) {
        let scheme = |s: &str| if scheme_case { s.to_uppercase() } else { s.to_string() };
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        prop_assert_eq!(
            Credentials::parse(&format!("{pad}{} {pad}{b64}{pad}", scheme("Basic"))),
            Credentials::Basic { user: user.clone(), password: password.clone() }
        );
        let no_user = base64::engine::general_purpose::STANDARD.encode(format!(":{password}"));
        prop_assert_eq!(Credentials::parse(&format!("Basic {no_user}")), Credentials::None);
        let token = format!("signature={sig},repository=\"{name}\",access={access}");
        let header = if doubled { format!("Token Token {token}") } else { format!("{} {token}", scheme("Token")) };
        prop_assert_eq!(Credentials::parse(&header), Credentials::Token(vec![sig.clone()]));
        // The repository a delegated registry reads from it, until the first `"` or `,`.
        if !name.contains(['"', ',']) {
            let claim = TokenClaim::new(&header, std::slice::from_ref(&sig));
            prop_assert_eq!(claim.claimed_repo().cloned(), RepoName::parse(name.trim()).ok());
        }
        let bearer = format!("{} {sig}{pad}", scheme("Bearer"));
        prop_assert_eq!(Credentials::parse(&bearer), Credentials::Bearer(sig.clone()));
    }

    /// Token scopes: never panic; `repository:NAME:ACTIONS` gives NAME and the actions back.
    #[test]
    fn fuzz_scopes(
        raw in text(),
        name in prop_oneof![valid_name(), text()],
        actions in proptest::collection::vec("[a-z*]{0,6}", 1..4),
    ) {
        let _ = parse_scope(&raw);
        let scope = format!("repository:{name}:{}", actions.join(","));
        prop_assert_eq!(parse_scope(&scope), Some((name.clone(), actions.clone())));
        prop_assert_eq!(parse_scope(&format!("registry:{name}:{}", actions.join(","))), None);
    }
}

// ---- Bearer JWTs ----

/// One signing key for the JWT properties (made once: key generation is slow), and a token it
/// signed.
struct Jwt {
    verifier: Verifier,
    token: String,
    claims: Claims,
}

static JWT: LazyLock<Jwt> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temp dir");
    let signer = Signer::load_or_create(&dir.path().join("k")).expect("key");
    let now = crate::clock::now_secs();
    let claims = Claims {
        iss: ISSUER.into(),
        sub: "alice".into(),
        aud: "skiff".into(),
        exp: now + 3600,
        nbf: now - 1,
        iat: now,
        jti: "fuzz".into(),
        access: vec![AccessEntry {
            kind: "repository".into(),
            name: "alice/app".into(),
            actions: vec!["pull".into()],
        }],
        gen: 0,
    };
    let token = signer.sign(&claims).expect("sign");
    Jwt {
        verifier: Verifier::new(&Verifier::keys_from_jwks(&signer.jwks()), "skiff"),
        token,
        claims,
    }
});

const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

proptest! {
    #![proptest_config(config())]

    /// Bearer tokens: anything that is not the signed token (any text, three base64url parts of
    /// any JSON, the real token with one character changed, added or removed) is refused, and
    /// nothing panics.
    #[test]
    fn fuzz_bearer_tokens(
        raw in text(),
        header in json_value(),
        payload in json_value(),
        edit in 0u8..3,
        at in any::<usize>(),
        ch in proptest::sample::select(B64URL),
    ) {
        let jwt = &*JWT;
        prop_assert!(jwt.verifier.verify(&raw).is_err());
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (header, payload) = (b64.encode(header.to_string()), b64.encode(payload.to_string()));
        let forged = format!("{header}.{payload}.{}", b64.encode(&raw));
        prop_assert!(jwt.verifier.verify(&forged).is_err());
        let mut tampered = jwt.token.clone().into_bytes();
        let at = at % tampered.len();
        match edit {
            0 => tampered[at] = ch,
            1 => tampered.insert(at, ch),
            _ => { tampered.remove(at); }
        }
        let tampered = String::from_utf8(tampered).expect("ascii");
        if tampered != jwt.token {
            prop_assert!(jwt.verifier.verify(&tampered).is_err(), "accepted {}", tampered);
        }
        prop_assert_eq!(jwt.verifier.verify(&jwt.token).ok(), Some(jwt.claims.clone()));
    }

    // ---- v1 image json ----

    /// Any body: never panics.
    #[test]
    fn fuzz_image_json_any_bytes(body in json_bytes()) {
        let id = ImageId::parse(&"a".repeat(64)).expect("id");
        let _ = parse_image_json(&id, &body);
    }

    /// Image json objects with every kind of `id` and `parent`, amid other keys: accepted
    /// exactly when `id` is the URL's and `parent` is absent, null, empty or a valid id, and
    /// the parent returned is the one sent.
    #[test]
    fn fuzz_image_json_structured(
        id_form in 0u8..5,
        parent_form in 0u8..6,
        other_id in prop_oneof![hex(), text()],
        extra in proptest::collection::btree_map("[a-z_]{1,10}", json_value(), 0..5),
        damage_how in any::<u8>(), at in any::<usize>(), with in any::<u8>(),
    ) {
        let id = ImageId::parse(&"a".repeat(64)).expect("id");
        let mut obj: serde_json::Map<String, Value> =
            extra.into_iter().filter(|(k, _)| k != "id" && k != "parent").collect();
        match id_form {
            0 => { obj.insert("id".into(), json!(id.as_str())); }
            1 => { obj.insert("id".into(), json!(other_id)); }
            2 => { obj.insert("id".into(), json!(42)); }
            3 => { obj.insert("id".into(), json!(null)); }
            _ => {}
        }
        let parent = match parent_form {
            0 => None,
            1 => Some(json!(null)),
            2 => Some(json!("")),
            3 => Some(json!(other_id)),
            4 => Some(json!({"id": other_id})),
            _ => Some(json!(["x"])),
        };
        if let Some(p) = &parent {
            obj.insert("parent".into(), p.clone());
        }
        let body = Value::Object(obj).to_string().into_bytes();
        let id_ok = id_form == 0 || (id_form == 1 && other_id == id.as_str());
        let expected_parent = match parent_form {
            0..=2 => Some(None),
            3 if other_id.is_empty() => Some(None),
            3 => ImageId::parse(&other_id).ok().map(Some),
            _ => None,
        };
        let got = parse_image_json(&id, &body);
        match (&got, id_ok, &expected_parent) {
            (Ok(p), true, Some(e)) => prop_assert_eq!(p, e),
            (Err(err), false, _) | (Err(err), _, None) => prop_assert_eq!(err.kind, Kind::BadRequest),
            _ => prop_assert!(false, "{:?} for {}", got, String::from_utf8_lossy(&body)),
        }
        let _ = parse_image_json(&id, &damage(body, damage_how, at, with));
    }
}

// ---- manifests ----

const MEDIA_TYPES: &[&str] = &[
    manifest::OCI_MANIFEST,
    manifest::OCI_INDEX,
    manifest::DOCKER_MANIFEST,
    manifest::DOCKER_LIST,
    manifest::DOCKER_SCHEMA1,
    manifest::DOCKER_SCHEMA1_SIGNED,
];

/// A descriptor: valid, or with one field of the wrong kind.
fn descriptor() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            4 => proptest::sample::select(MEDIA_TYPES).prop_map(Value::from),
            2 => Just(json!("application/vnd.oci.image.layer.v1.tar+gzip")),
            1 => Just(json!("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")),
            1 => json_value(),
        ],
        prop_oneof![
            6 => valid_digest().prop_map(|d| json!(d.to_string())),
            1 => digest_text().prop_map(Value::from),
            1 => json_value(),
        ],
        prop_oneof![6 => any::<u64>().prop_map(Value::from), 1 => Just(json!(-1)), 1 => json_value()],
        proptest::option::of(prop_oneof![Just(json!(["http://x"])), Just(json!([])), json_value()]),
        proptest::option::of(prop_oneof![
            Just(json!({"os": "linux", "architecture": "amd64"})),
            json_value()
        ]),
        proptest::option::of(json_value()),
    )
        .prop_map(|(mt, digest, size, urls, platform, annotations)| {
            let mut d = json!({"mediaType": mt, "digest": digest, "size": size});
            for (k, v) in [("urls", urls), ("platform", platform), ("annotations", annotations)] {
                if let Some(v) = v {
                    d[k] = v;
                }
            }
            d
        })
}

/// A schema1 signature whose protected header says where the payload ends (any length, any
/// tail, or garbage).
fn schema1_signature() -> impl Strategy<Value = Value> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    (
        prop_oneof![
            Just(json!(0)),
            (0u64..400).prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            json_value()
        ],
        prop_oneof![Just(b64.encode("\n}")), text()],
        any::<bool>(),
    )
        .prop_map(move |(len, tail, well_formed)| {
            let header = json!({"formatLength": len, "formatTail": tail}).to_string();
            let protected = if well_formed { b64.encode(header) } else { header };
            json!({"header": {}, "signature": "x", "protected": protected})
        })
}

/// A manifest body of any media type with parts valid, missing or wrong, and the
/// `Content-Type` it is sent with.
fn manifest_body() -> impl Strategy<Value = (Value, String)> {
    let media_type = prop_oneof![
        6 => proptest::sample::select(MEDIA_TYPES).prop_map(|m| Some(json!(m))),
        1 => Just(None),
        1 => Just(Some(json!(""))),
        1 => json_value().prop_map(Some),
    ];
    let content_type = prop_oneof![
        4 => proptest::sample::select(MEDIA_TYPES).prop_map(str::to_string),
        1 => proptest::sample::select(MEDIA_TYPES).prop_map(|m| format!("{m}; charset=utf-8")),
        1 => Just(String::new()),
        1 => Just("application/json".to_string()),
        1 => text(),
    ];
    let schema_version = prop_oneof![
        4 => Just(Some(json!(2))),
        2 => Just(Some(json!(1))),
        1 => Just(None),
        1 => json_value().prop_map(Some),
    ];
    (
        media_type,
        content_type,
        schema_version,
        proptest::option::of(descriptor()),
        proptest::option::of(proptest::collection::vec(descriptor(), 0..4)),
        proptest::option::of(proptest::collection::vec(descriptor(), 0..4)),
        proptest::option::of(descriptor()),
        proptest::option::of(proptest::collection::vec(
            prop_oneof![5 => valid_digest().prop_map(|d| json!({"blobSum": d.to_string()})), 1 => json_value()],
            0..4,
        )),
        proptest::option::of(proptest::collection::vec(schema1_signature(), 0..2)),
        proptest::option::of(prop_oneof![text().prop_map(Value::from), json_value()]),
        proptest::option::of(json_value()),
    )
        .prop_map(
            |(mt, ct, sv, config, layers, manifests, subject, fs_layers, signatures, artifact_type, annotations)| {
                let mut m = serde_json::Map::new();
                let fields = [
                    ("mediaType", mt),
                    ("schemaVersion", sv),
                    ("config", config),
                    ("layers", layers.map(Value::Array)),
                    ("manifests", manifests.map(Value::Array)),
                    ("subject", subject),
                    ("fsLayers", fs_layers.map(Value::Array)),
                    ("signatures", signatures.map(Value::Array)),
                    ("artifactType", artifact_type),
                    ("annotations", annotations),
                ];
                for (k, v) in fields {
                    if let Some(v) = v {
                        m.insert(k.into(), v);
                    }
                }
                (Value::Object(m), ct)
            },
        )
}

/// A well-formed manifest of one kind, and what parsing it must give.
#[derive(Debug, Clone)]
struct ValidManifest {
    bytes: Vec<u8>,
    media_type: &'static str,
    blobs: Vec<Digest>,
    manifests: Vec<Digest>,
    /// For signed schema1: the bytes the digest covers (the body without its signatures).
    payload: Option<Vec<u8>>,
}

/// A well-formed manifest of each kind (OCI and Docker images and indexes, schema1 plain and
/// signed), its media type declared in the body or not.
fn valid_manifest() -> impl Strategy<Value = ValidManifest> {
    (
        0u8..6,
        valid_digest(),
        proptest::collection::vec(valid_digest(), 0..5),
        any::<bool>(),
    )
        .prop_map(|(kind, config, refs, declare)| {
            let desc = |d: &Digest, mt: &str| json!({"mediaType": mt, "digest": d.to_string(), "size": 7});
            let (media_type, mut body, blobs, manifests) = match kind {
                0 | 1 => {
                    let mt = if kind == 0 {
                        manifest::OCI_MANIFEST
                    } else {
                        manifest::DOCKER_MANIFEST
                    };
                    let layer = |d| desc(d, "application/vnd.oci.image.layer.v1.tar+gzip");
                    let layers: Vec<Value> = refs.iter().map(layer).collect();
                    let mut blobs = vec![config.clone()];
                    blobs.extend(refs.iter().cloned());
                    let config = desc(&config, "application/vnd.oci.image.config.v1+json");
                    let body = json!({"schemaVersion": 2, "mediaType": mt, "config": config, "layers": layers});
                    (mt, body, blobs, Vec::new())
                }
                2 | 3 => {
                    let mt = if kind == 2 {
                        manifest::OCI_INDEX
                    } else {
                        manifest::DOCKER_LIST
                    };
                    let children: Vec<Value> = refs.iter().map(|d| desc(d, manifest::OCI_MANIFEST)).collect();
                    (
                        mt,
                        json!({"schemaVersion": 2, "mediaType": mt, "manifests": children}),
                        Vec::new(),
                        refs.clone(),
                    )
                }
                _ => {
                    let mt = if kind == 4 {
                        manifest::DOCKER_SCHEMA1
                    } else {
                        manifest::DOCKER_SCHEMA1_SIGNED
                    };
                    let fs: Vec<Value> = refs.iter().map(|d| json!({"blobSum": d.to_string()})).collect();
                    let body =
                        json!({"schemaVersion": 1, "mediaType": mt, "name": "a/b", "tag": "latest", "fsLayers": fs});
                    (mt, body, refs.clone(), Vec::new())
                }
            };
            if !declare {
                if let Some(o) = body.as_object_mut() {
                    o.remove("mediaType");
                }
            }
            if media_type != manifest::DOCKER_SCHEMA1_SIGNED {
                let bytes = serde_json::to_vec(&body).expect("json");
                return ValidManifest {
                    bytes,
                    media_type,
                    blobs,
                    manifests,
                    payload: None,
                };
            }
            // Signed as Docker does: the signature's protected header says where the payload
            // ends in the body and restores its closing brace.
            let payload = serde_json::to_string_pretty(&body).expect("json");
            let len = payload.len() - 2;
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let protected = b64.encode(json!({"formatLength": len, "formatTail": b64.encode("\n}")}).to_string());
            let signature = json!([{"header": {}, "signature": "x", "protected": protected}]);
            let signed = format!("{},\n   \"signatures\": {signature}\n}}", &payload[..len]);
            ValidManifest {
                bytes: signed.into_bytes(),
                media_type,
                blobs,
                manifests,
                payload: Some(payload.into_bytes()),
            }
        })
}

const MANIFEST_FIELDS: &[&str] = &[
    "mediaType",
    "schemaVersion",
    "config",
    "layers",
    "manifests",
    "subject",
    "fsLayers",
    "signatures",
    "artifactType",
    "annotations",
];

/// A well-formed manifest with up to three fields removed or replaced (by any JSON, a
/// descriptor, or a list of them), sent with its own `Content-Type` or another.
fn mutated_manifest() -> impl Strategy<Value = (Value, String)> {
    let edit = (
        proptest::sample::select(MANIFEST_FIELDS),
        0u8..4,
        json_value(),
        descriptor(),
        proptest::collection::vec(descriptor(), 0..3),
    );
    let content_type = prop_oneof![
        3 => Just(None),
        1 => proptest::sample::select(MEDIA_TYPES).prop_map(|m| Some(m.to_string())),
        1 => Just(Some(String::new())),
        1 => Just(Some("application/json".to_string())),
    ];
    (valid_manifest(), proptest::collection::vec(edit, 0..3), content_type).prop_map(|(m, edits, ct)| {
        let mut body: Value = serde_json::from_slice(&m.bytes).expect("json");
        if let Some(o) = body.as_object_mut() {
            for (field, how, any, desc, descs) in edits {
                match how {
                    0 => {
                        o.remove(field);
                    }
                    1 => {
                        o.insert(field.into(), any);
                    }
                    2 => {
                        o.insert(field.into(), desc);
                    }
                    _ => {
                        o.insert(field.into(), Value::Array(descs));
                    }
                }
            }
        }
        (body, ct.unwrap_or_else(|| m.media_type.to_string()))
    })
}

proptest! {
    #![proptest_config(config())]

    /// Manifests of every media type with any part missing or wrong, sent with any
    /// `Content-Type`, then damaged byte by byte: never a panic; what is accepted is classified
    /// by its media type and references what the body names.
    #[test]
    fn fuzz_manifests(
        (body, content_type) in prop_oneof![manifest_body(), mutated_manifest()],
        how in any::<u8>(),
        at in any::<usize>(),
        with in any::<u8>(),
    ) {
        let bytes = serde_json::to_vec(&body).expect("json");
        if let Ok(p) = manifest::parse(&bytes, &content_type) {
            let mt = p.media_type.as_str();
            match p.kind {
                ManifestKind::Image => {
                    prop_assert!(mt == manifest::OCI_MANIFEST || mt == manifest::DOCKER_MANIFEST);
                    prop_assert_eq!(body["schemaVersion"].as_i64(), Some(2));
                    let config = body["config"]["digest"].as_str().map(str::to_string);
                    prop_assert_eq!(Some(p.blobs[0].to_string()), config);
                    let layers = body["layers"].as_array().map_or(0, Vec::len);
                    prop_assert!(p.blobs.len() <= 1 + layers);
                    prop_assert!(p.manifests.is_empty() && p.canonical.is_none());
                }
                ManifestKind::Index => {
                    prop_assert!(manifest::is_index(mt));
                    prop_assert_eq!(body["schemaVersion"].as_i64(), Some(2));
                    prop_assert_eq!(Some(p.manifests.len()), body["manifests"].as_array().map(Vec::len));
                    prop_assert!(p.blobs.is_empty() && p.canonical.is_none());
                }
                ManifestKind::Schema1 => {
                    prop_assert!(mt == manifest::DOCKER_SCHEMA1 || mt == manifest::DOCKER_SCHEMA1_SIGNED);
                    prop_assert_eq!(body["schemaVersion"].as_i64(), Some(1));
                    prop_assert_eq!(p.blobs.len(), body["fsLayers"].as_array().map_or(0, Vec::len));
                    let signed = body["signatures"].as_array().is_some_and(|s| !s.is_empty());
                    prop_assert_eq!(p.canonical.is_some(), signed);
                }
            }
            let d = p.digest(&bytes, Algorithm::Sha256);
            let referrer = p.referrer(&d, bytes.len() as u64);
            let json = serde_json::to_vec(&referrer).expect("serialize");
            prop_assert_eq!(serde_json::from_slice::<manifest::Descriptor>(&json).ok(), Some(referrer));
        }
        check_any_manifest_bytes(&bytes)?;
        let damaged = damage(bytes, how, at, with);
        let _ = manifest::parse(&damaged, &content_type);
        check_any_manifest_bytes(&damaged)?;
    }

    /// Arbitrary bytes as a manifest: never a panic.
    #[test]
    fn fuzz_manifest_any_bytes(
        bytes in json_bytes(),
        content_type in prop_oneof![proptest::sample::select(MEDIA_TYPES).prop_map(str::to_string), text()],
    ) {
        let _ = manifest::parse(&bytes, &content_type);
        check_any_manifest_bytes(&bytes)?;
    }

    /// Well-formed manifests of each media type, declared in the body or only by the
    /// `Content-Type`, are accepted with exactly the references they name.
    #[test]
    fn fuzz_valid_manifests(m in valid_manifest(), content_type_given in any::<bool>()) {
        let content_type = if content_type_given { m.media_type } else { "" };
        let body: Value = serde_json::from_slice(&m.bytes).expect("json");
        if body.get("mediaType").is_none() && content_type.is_empty()
            && (m.media_type == manifest::DOCKER_MANIFEST || m.media_type == manifest::DOCKER_LIST) {
            // Undeclared everywhere: read as the OCI type of the same shape.
            return Ok(());
        }
        let p = manifest::parse(&m.bytes, content_type).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(p.media_type.as_str(), m.media_type);
        prop_assert_eq!(&p.blobs, &m.blobs);
        prop_assert_eq!(&p.manifests, &m.manifests);
        // The digest covers the body, or for signed schema1 the payload without signatures.
        let covered = m.payload.as_deref().unwrap_or(&m.bytes);
        prop_assert_eq!(p.digest(&m.bytes, Algorithm::Sha256), Digest::sha256_of(covered));
    }
}

/// What must hold of any bytes stored as a manifest: choosing a platform from it and gc's scan
/// for digests in it never panic, and what they find is in it.
fn check_any_manifest_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(bytes);
    if let Some(d) = manifest::pick_platform(bytes) {
        let listed: Value = serde_json::from_slice(bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let names = listed["manifests"]
            .as_array()
            .is_some_and(|m| m.iter().any(|c| c["digest"] == d.to_string()));
        prop_assert!(names, "picked {} not in the index", d);
    }
    for d in digests_in(bytes) {
        prop_assert!(text.contains(&d.to_string()));
    }
    Ok(())
}

// ---- storage keys ----

const KEY_PREFIXES: &[&str] = &[
    "blobs/",
    "images/",
    "repositories/",
    "blobs/sha256/",
    "repositories/a+b/",
];

proptest! {
    #![proptest_config(config())]

    /// The key parsers gc and the catalog use on walks: never panic on any key, and what they
    /// recognise is exactly a key Skiff writes.
    #[test]
    fn fuzz_storage_keys(
        raw in prop_oneof![
            text(),
            (
                proptest::sample::select(KEY_PREFIXES),
                near_text(),
                digest_text(),
            )
                .prop_map(|(p, t, d)| format!("{p}{t}/{}", d.replace(':', "/"))),
        ],
    ) {
        if let Some(d) = keys::parse_blob(&raw) {
            prop_assert_eq!(keys::blob(&d), raw.clone());
        }
        if let Some(id) = keys::parse_image_layer(&raw) {
            prop_assert_eq!(format!("images/{id}/layer"), raw.clone());
        }
        if let Some(repo) = keys::parse_repository(&raw) {
            prop_assert_eq!(repo.flat(), raw.clone());
        }
        if let Some((repo, entry)) = keys::parse_repository_key(&raw) {
            let dir = keys::repository(&repo) + "/";
            prop_assert!(raw.starts_with(&dir));
            match entry {
                RepositoryEntry::BlobLink(d) => prop_assert_eq!(keys::blob_link(&repo, &d), raw.clone()),
                RepositoryEntry::RevisionData(d) => prop_assert_eq!(keys::revision_data(&repo, &d), raw.clone()),
                RepositoryEntry::RevisionType(d) => prop_assert_eq!(keys::revision_type(&repo, &d), raw.clone()),
                RepositoryEntry::V2Tag(t) => prop_assert_eq!(keys::v2_tag(&repo, &t), raw.clone()),
                RepositoryEntry::V1Tag(t) => prop_assert_eq!(keys::v1_tag(&repo, &t), raw.clone()),
                RepositoryEntry::V1Member(id) => prop_assert_eq!(keys::v1_member(&repo, &id), raw.clone()),
                RepositoryEntry::Other(leaf) => {
                    prop_assert_eq!(format!("{}/{leaf}", keys::repository(&repo)), raw.clone())
                }
            }
        }
    }
}

// ---- v1 JSON bodies, search, listings ----

proptest! {
    #![proptest_config(config())]

    /// The image list of `PUT /v1/repositories/R/images`: never panics; accepted exactly when
    /// every `id` is an image id, keeping the non-empty checksums.
    #[test]
    fn fuzz_v1_image_lists(
        entries in proptest::collection::vec(
            (prop_oneof![3 => hex(), 1 => text()], proptest::option::of(text()), proptest::option::of(json_value())),
            0..5,
        ),
        junk in any::<Vec<u8>>(),
    ) {
        let _ = crate::http::v1::repositories::parse_image_list(&junk);
        let list: Vec<Value> = entries.iter().map(|(id, sum, tag)| {
            let mut e = json!({"id": id});
            if let Some(s) = sum { e["checksum"] = json!(s); }
            if let Some(t) = tag { e["Tag"] = t.clone(); }
            e
        }).collect();
        let body = serde_json::to_vec(&list).expect("json");
        let tags_ok = entries.iter().all(|(_, _, t)| t.as_ref().is_none_or(|t| t.is_string() || t.is_null()));
        let ids_ok = entries.iter().all(|(id, _, _)| ImageId::parse(id).is_ok());
        match crate::http::v1::repositories::parse_image_list(&body) {
            Ok(got) => {
                prop_assert!(ids_ok && tags_ok);
                prop_assert_eq!(got.len(), entries.len());
                for (g, (id, sum, _)) in got.iter().zip(&entries) {
                    prop_assert_eq!(&g.id, id);
                    prop_assert_eq!(g.checksum.as_ref(), sum.as_ref().filter(|s| !s.is_empty()));
                }
            }
            Err(e) => {
                prop_assert!(!(ids_ok && tags_ok));
                prop_assert_eq!(e.kind, Kind::BadRequest);
            }
        }
    }

    /// The body of a v1 tag PUT (a JSON string naming an image): never panics; the id returned
    /// is the one sent.
    #[test]
    fn fuzz_v1_tag_bodies(id in prop_oneof![hex(), text()], junk in json_bytes()) {
        let _ = crate::http::v1::tags::tag_target(&junk);
        let body = serde_json::to_vec(&id).expect("json");
        match crate::http::v1::tags::tag_target(&body) {
            Ok(got) => prop_assert_eq!(got.as_str(), id.as_str()),
            Err(e) => {
                prop_assert!(ImageId::parse(&id).is_err());
                prop_assert_eq!(e.kind, Kind::NotFound);
            }
        }
    }

    /// `/v1/search?q=&n=&page=` as a client writes it: the query decodes or is refused, and
    /// the page is always 1-100 rows from page 1 on, whatever the numbers (no overflow).
    #[test]
    fn fuzz_search_queries(
        raw in prop_oneof![
            text(),
            ("[a-z%+ ]{0,8}", "-?[0-9]{0,25}", "-?[0-9]{0,25}").prop_map(|(q, n, p)| format!("q={q}&n={n}&page={p}")),
        ],
        n in proptest::option::of(any::<usize>()),
        page in proptest::option::of(any::<usize>()),
        total in prop_oneof![0usize..300, any::<usize>()],
    ) {
        use crate::http::v1::search::{paging, Paging, Query, MAX_PAGE_SIZE};
        let mut asked = vec![(n, page)];
        if let Ok(q) = actix_web::web::Query::<Query>::from_query(&raw) {
            let _ = q.q.trim().to_lowercase();
            asked.push((q.n, q.page));
        }
        for (n, page) in asked {
            let Paging { page_size, page: p, skip } = paging(n, page);
            prop_assert!((1..=MAX_PAGE_SIZE).contains(&page_size));
            prop_assert!(p >= 1);
            prop_assert_eq!(p, page.unwrap_or(1).max(1));
            if let Some(n @ 1..=MAX_PAGE_SIZE) = n {
                prop_assert_eq!(page_size, n);
            }
            prop_assert_eq!(skip, (p - 1).saturating_mul(page_size));
            prop_assert!(total.div_ceil(page_size).max(1) >= 1);
        }
    }

    /// `?n=&last=` of the tag list and the catalog: never panics; a page is the next run of the
    /// sorted list after `last`, at most `n` long, and says when more follow.
    #[test]
    fn fuzz_listing_pages(
        all in proptest::collection::btree_set(prop_oneof![valid_name(), text()], 0..12),
        n in proptest::option::of(prop_oneof![text(), "[0-9]{0,22}", (0usize..15).prop_map(|n| n.to_string())]),
        last in proptest::option::of(prop_oneof![valid_name(), text()]),
    ) {
        let all: Vec<String> = all.into_iter().collect();
        let after: Vec<String> =
            all.iter().filter(|t| last.as_ref().is_none_or(|l| t.as_str() > l.as_str())).cloned().collect();
        match crate::http::v2::discovery::page(all.clone(), n.as_deref(), last.as_deref()) {
            Ok((got, more)) => {
                prop_assert!(after.starts_with(&got));
                match more {
                    Some(k) => prop_assert!(got.len() == k && k < after.len()),
                    None => prop_assert_eq!(&got, &after),
                }
            }
            Err(e) => {
                prop_assert_eq!(e.kind, Kind::BadRequest);
                prop_assert!(n.as_deref().is_some_and(|n| !n.is_empty() && n.parse::<usize>().is_err()));
            }
        }
    }
}

// ---- config ----

/// Every config key, with its default (which gives its type).
static CONFIG_KEYS: LazyLock<Vec<(String, toml::Value)>> = LazyLock::new(crate::config::known_keys);

/// A value for a config key: of the right type or not, plausible or not.
fn config_value() -> impl Strategy<Value = toml::Value> {
    let strings = || {
        proptest::sample::select(
            &[
                "0.0.0.0:5000",
                "127.0.0.1:0",
                "[::1]:80",
                "nope",
                ":5000",
                "http://index.lan:5000",
                "https://index.lan",
                "http://[::1]:80",
                "http://a\"b",
                "fs",
                "s3",
                "open",
                "closed",
                "activation",
                "",
                "pnkT-Q4N6dWU8n3oQW7Za3x5S1nLJv6E3f-xd6Py1Ds",
                "reg.lan:5000",
            ][..],
        )
    };
    prop_oneof![
        3 => strings().prop_map(|s| toml::Value::String(s.into())),
        1 => text().prop_map(toml::Value::String),
        2 => prop_oneof![Just(0i64), Just(1), Just(10_000), Just(600_000), Just(-1), Just(i64::MAX), any::<i64>()]
            .prop_map(toml::Value::Integer),
        1 => any::<bool>().prop_map(toml::Value::Boolean),
        1 => proptest::collection::vec(strings().prop_map(|s| toml::Value::String(s.into())), 0..3)
            .prop_map(toml::Value::Array),
        1 => Just(toml::Value::Float(1.5)),
    ]
}

/// A plausible value for `key` (whose default is `default`): of its type, mostly valid.
fn typed_value(key: &str, default: &toml::Value) -> BoxedStrategy<toml::Value> {
    let strings = |v: &'static [&'static str]| {
        proptest::sample::select(v)
            .prop_map(|s| toml::Value::String(s.into()))
            .boxed()
    };
    match (key, default) {
        (_, toml::Value::Boolean(_)) => any::<bool>().prop_map(toml::Value::Boolean).boxed(),
        (_, toml::Value::Integer(_)) => prop_oneof![4 => 10_000i64..1_000_000, 1 => any::<i64>()]
            .prop_map(toml::Value::Integer)
            .boxed(),
        (_, toml::Value::Array(_)) => {
            proptest::collection::vec(strings(&["reg.lan:5000", "a:1", "b", "x y", "a/b"]), 0..3)
                .prop_map(toml::Value::Array)
                .boxed()
        }
        ("listen", _) => strings(&["0.0.0.0:5000", "127.0.0.1:0", "[::1]:80", "localhost:1", ":80"]),
        ("public_url", _) => strings(&["", "https://reg.lan", "http://[::1]:80/", "reg.lan", "http://a\"b"]),
        ("index_endpoint", _) => strings(&["", "http://index.lan:5000", "https://index.lan"]),
        ("storage.driver", _) => strings(&["fs", "fs", "s3"]),
        ("index.registration", _) => strings(&["open", "closed", "activation", "Open"]),
        ("v2.jwt_public_key", _) => strings(&["", "pnkT-Q4N6dWU8n3oQW7Za3x5S1nLJv6E3f-xd6Py1Ds", "short"]),
        _ => text().prop_map(toml::Value::String).boxed(),
    }
}

/// A `registry.toml`: known keys (and a few unknown ones) with values of any kind.
fn config_text() -> impl Strategy<Value = String> {
    // Mostly a value of the key's type, sometimes any value, sometimes an unknown key.
    let typed = proptest::sample::select(CONFIG_KEYS.clone()).prop_flat_map(|(key, default)| {
        let value = typed_value(&key, &default);
        (Just(key), value)
    });
    let pair = prop_oneof![
        6 => typed,
        2 => (proptest::sample::select(CONFIG_KEYS.clone()).prop_map(|(k, _)| k), config_value()),
        1 => (
            proptest::sample::select(&["nope", "index.nope", "index", "v2.enabled.x"][..]).prop_map(str::to_string),
            config_value(),
        ),
    ];
    proptest::collection::vec(pair, 0..8).prop_map(|pairs| {
        let mut table = toml::Table::new();
        for (path, value) in pairs {
            // Keys are at most two deep (`index.token_ttl_secs`).
            match path.split_once('.') {
                None => {
                    table.insert(path, value);
                }
                Some((section, key)) => {
                    let entry = table
                        .entry(section.to_string())
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    if let toml::Value::Table(t) = entry {
                        t.insert(key.to_string(), value);
                    }
                }
            }
        }
        toml::to_string(&table).unwrap_or_default()
    })
}

/// `SKIFF_*` variables for known keys (and others), with any value.
fn config_env() -> impl Strategy<Value = Vec<(String, String)>> {
    let env_name = |k: &str| format!("SKIFF_{}", k.replace('.', "_").to_uppercase());
    // As an operator would set them: the value of the key's type, written as text.
    let typed = proptest::sample::select(CONFIG_KEYS.clone()).prop_flat_map(move |(key, default)| {
        let value = typed_value(&key, &default).prop_map(|v| match v {
            toml::Value::String(s) => s,
            toml::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(","),
            other => other.to_string(),
        });
        (Just(env_name(&key)), value)
    });
    let odd_value = prop_oneof![
        3 => proptest::sample::select(&[
            "true", "no", "1", "2", "-5", "600000", "0.0.0.0:1", "http://i:1", "a:1, b:2", " 42 ", "",
            "9999999999999999999999",
        ][..])
        .prop_map(str::to_string),
        1 => text(),
    ];
    let odd = (
        prop_oneof![
            3 => proptest::sample::select(CONFIG_KEYS.clone()).prop_map(move |(k, _)| env_name(&k)),
            1 => proptest::sample::select(&["SKIFF_LOG", "SKIFF_CONFIG", "SKIFF_NOPE", "HOME", "SKIFF_"][..])
                .prop_map(str::to_string),
        ],
        odd_value,
    );
    proptest::collection::vec(prop_oneof![3 => typed, 1 => odd], 0..4)
}

proptest! {
    #![proptest_config(config())]

    /// The config file and `SKIFF_*` variables: never a panic, whatever the text or values; a
    /// config that loads is valid and survives a write and a reload unchanged.
    #[test]
    fn fuzz_config(text in prop_oneof![3 => config_text(), 1 => text()], env in config_env()) {
        use crate::config::Config;
        let origin = std::path::Path::new("registry.toml");
        if let Ok(c) = Config::from_text(&text, origin, &env) {
            prop_assert!(c.validate().is_ok());
            prop_assert_eq!(c.listen.parse::<std::net::SocketAddr>().ok(), Some(c.listen_addr()));
            let written = c.to_toml();
            let again = Config::from_text(&written, origin, &[])
                .map_err(|e| TestCaseError::fail(format!("{e}: {written}")))?;
            prop_assert_eq!(again.to_toml(), written);
        }
    }
}

// ---- whole requests ----

/// One request as a hostile client may send it: a route of either protocol with its parts
/// (name, reference, digest, id, query) near-valid or arbitrary, hostile headers and a body.
#[derive(Debug, Clone)]
struct FuzzRequest {
    method: &'static str,
    uri: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

/// Percent-encodes all but unreserved characters, `/` and `:`, so any text makes a valid URI.
fn uri_part(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn fuzz_request(blob: Digest) -> impl Strategy<Value = FuzzRequest> {
    let name = prop_oneof![
        3 => proptest::sample::select(&["alice/app", "alice/app/sub", "busybox", "carol/x", "alice/app/"][..])
            .prop_map(str::to_string),
        1 => valid_name(),
        1 => near_text(),
    ];
    let digest = prop_oneof![2 => Just(blob.to_string()), 2 => digest_text()];
    let reference = prop_oneof![2 => Just("latest".to_string()), 1 => Just(blob.to_string()), 2 => text()];
    let id = prop_oneof![hex(), text(), Just(format!("{}/json", "a".repeat(64)))];
    let number = prop_oneof![Just(String::new()), "-?[0-9]{1,25}", text()];
    const METHODS: &[&str] = &["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"];
    let route = (
        0u8..14,
        name,
        digest,
        reference,
        id,
        number,
        text(),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(|(route, name, digest, reference, id, n, q, pick, any_method)| {
            let (name, digest, reference, id, n, q) = (
                uri_part(&name),
                uri_part(&digest),
                uri_part(&reference),
                uri_part(&id),
                uri_part(&n),
                uri_part(&q),
            );
            // The methods the route has, mostly; any method sometimes.
            let (uri, methods): (String, &[&'static str]) = match route {
                0 => (
                    format!("/v2/{name}/manifests/{reference}"),
                    &["GET", "HEAD", "PUT", "DELETE"],
                ),
                1 => (format!("/v2/{name}/blobs/{digest}"), &["GET", "HEAD", "DELETE"]),
                2 => (format!("/v2/{name}/blobs/uploads/?digest={digest}"), &["POST"]),
                3 => (format!("/v2/{name}/blobs/uploads/?mount={digest}&from={q}"), &["POST"]),
                4 => (
                    format!("/v2/{name}/blobs/uploads/{id}?digest={digest}"),
                    &["GET", "PATCH", "PUT", "DELETE"],
                ),
                5 => (format!("/v2/{name}/tags/list?n={n}&last={q}"), &["GET"]),
                6 => (format!("/v2/_catalog?n={n}&last={q}"), &["GET"]),
                7 => (format!("/v2/{name}/referrers/{digest}?artifactType={q}"), &["GET"]),
                8 => (format!("/v2/token?service=skiff&scope=repository:{name}:{q}"), &["GET"]),
                9 => (format!("/v1/images/{id}/{q}"), &["GET", "PUT"]),
                10 => (
                    format!("/v1/repositories/{name}/tags/{reference}"),
                    &["GET", "PUT", "DELETE"],
                ),
                11 => (format!("/v1/repositories/{name}/{q}"), &["GET", "PUT", "DELETE"]),
                12 => (format!("/v1/search?q={q}&n={n}&page={n}"), &["GET"]),
                _ => (format!("/{q}"), METHODS),
            };
            let methods = if any_method { METHODS } else { methods };
            (methods[usize::from(pick) % methods.len()], uri)
        });
    let auth = prop_oneof![
        2 => Just(None),
        2 => Just(Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("alice:alice-pw")))),
        1 => text().prop_map(|t| Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(t)))),
        1 => (proptest::sample::select(&["Basic ", "Token ", "Bearer ", ""][..]), text())
            .prop_map(|(s, t)| Some(format!("{s}{t}"))),
    ];
    let content_type = prop_oneof![
        2 => Just(None),
        2 => proptest::sample::select(MEDIA_TYPES).prop_map(|m| Some(m.to_string())),
        1 => text().prop_map(Some),
    ];
    let range = proptest::option::of(prop_oneof![
        (edge_u64(), edge_u64()).prop_map(|(a, b)| format!("bytes={a}-{b}")),
        (edge_u64(), edge_u64()).prop_map(|(a, b)| format!("{a}-{b}")),
        text(),
    ]);
    let body = prop_oneof![
        2 => Just(Vec::new()),
        2 => prop_oneof![manifest_body(), mutated_manifest()]
            .prop_map(|(b, _)| serde_json::to_vec(&b).unwrap_or_default()),
        1 => json_bytes(),
    ];
    (route, auth, content_type, range, body).prop_map(|((method, uri), auth, content_type, range, body)| {
        let mut headers = Vec::new();
        // Header values must be visible ASCII to be sent at all: keep what a client could send.
        let mut add = |name: &'static str, v: Option<String>| {
            if let Some(v) = v.filter(|v| actix_web::http::header::HeaderValue::from_str(v).is_ok()) {
                headers.push((name, v));
            }
        };
        add("Authorization", auth);
        add("Content-Type", content_type);
        add("Range", range.clone());
        add("Content-Range", range);
        FuzzRequest {
            method,
            uri,
            headers,
            body,
        }
    })
}

/// The whole app on temp storage, with a user, a pushed blob and a tagged manifest, answers
/// every generated request without a panic or a 5xx.
#[actix_web::test]
async fn fuzz_http_requests() {
    use actix_web::test::{self as t, TestRequest};
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = crate::config::Config {
        data_dir: dir.path().join("data"),
        ..crate::config::Config::default()
    };
    cfg.index.pbkdf2_rounds = 10_000;
    let state = actix_web::web::Data::new(crate::open_state(cfg).await.expect("state"));
    let ix = state.index.clone().expect("index");
    ix.run(|ix| ix.create_user("alice", "alice-pw", "alice@example.com", true, false))
        .await
        .expect("user");
    let app = t::init_service(actix_web::App::new().configure(|c| crate::http::configure(c, state.clone()))).await;
    let alice = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:alice-pw")
    );

    // Something to find: a blob and a manifest tagged `latest` in alice/app.
    let blob = b"some layer bytes, 0123456789".to_vec();
    let digest = Digest::sha256_of(&blob);
    let push = TestRequest::post()
        .uri(&format!("/v2/alice/app/blobs/uploads/?digest={digest}"))
        .insert_header(("Authorization", alice.clone()))
        .set_payload(blob.clone())
        .to_request();
    assert_eq!(t::call_service(&app, push).await.status(), 201);
    let config_type = "application/vnd.oci.image.config.v1+json";
    let m = json!({"schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": digest.to_string(), "size": blob.len()},
        "layers": []});
    let put = TestRequest::put()
        .uri("/v2/alice/app/manifests/latest")
        .insert_header(("Authorization", alice.clone()))
        .insert_header(("Content-Type", manifest::OCI_MANIFEST))
        .set_payload(serde_json::to_vec(&m).expect("json"))
        .to_request();
    assert_eq!(t::call_service(&app, put).await.status(), 201);

    // Requests are drawn from the strategy (no shrinking: each failure prints its request).
    let mut runner = TestRunner::new(config());
    let strategy = fuzz_request(digest);
    let mut failures = Vec::new();
    for _ in 0..config().cases {
        let r = strategy.new_tree(&mut runner).expect("a request").current();
        let method = actix_web::http::Method::from_bytes(r.method.as_bytes()).expect("method");
        let mut req = TestRequest::default()
            .method(method)
            .uri(&r.uri)
            .set_payload(r.body.clone());
        for (k, v) in &r.headers {
            req = req.insert_header((*k, v.as_str()));
        }
        let resp = t::call_service(&app, req.to_request()).await;
        let status = resp.status();
        let _ = t::read_body(resp).await;
        if status.is_server_error() {
            failures.push(format!("{status} for {r:?}"));
        }
    }
    assert!(failures.is_empty(), "server errors:\n{}", failures.join("\n"));
}
