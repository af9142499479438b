//! Bearer JWTs (forged, tampered) and v1 image json.

use super::*;

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
        pat: None,
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
