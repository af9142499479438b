//! Names, tags, image ids, hosts, digests, references, `Range`, `Content-Range`, `Authorization` and token scopes.

use super::*;

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
            let copy = crate::names::ImageCopy::new(&id, &crate::names::Owner::new("alice"));
            let key = keys::image(&copy, "layer");
            prop_assert_eq!(keys::parse_image_layer(&key), Some(copy));
        }
    }

    /// Image owners: any name (a foreign index's user names are not ours to validate) becomes
    /// one safe key component that names it alone; a key names an owner only if it is exactly
    /// that owner's key.
    #[test]
    fn fuzz_owner_keys(name in prop_oneof!["[a-z0-9_]{0,32}", text()], raw in prop_oneof![text(), "[@~][a-z0-9_]{0,32}"]) {
        let owner = crate::names::Owner::new(&name);
        let key = owner.key();
        prop_assert!(!key.is_empty() && key != "." && key != ".." && !key.contains('/'), "{:?}", key);
        prop_assert!(key.starts_with('@') || key.starts_with('~'), "{:?}", key);
        prop_assert_eq!(crate::names::Owner::from_key(&key), Some(owner));
        if let Some(o) = crate::names::Owner::from_key(&raw) {
            prop_assert_eq!(o.key(), raw);
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
