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

mod bodies;
mod config;
mod grammars;
mod jwt_and_image_json;
mod manifests;
mod requests;
mod storage_keys;
