//! v2 bearer tokens: short-lived JWTs (EdDSA / Ed25519) in the Docker token format, with an
//! `access` claim listing repositories and actions. The index signs them with a key kept in its
//! data dir; registries verify them with the public key (JWKS at `/v2/token/keys`), so a
//! registry never needs the index for each request. Verified tokens are cached briefly, so a
//! request costs a hash lookup rather than a signature check.

use crate::error::{AppError, AppResult};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

pub const ISSUER: &str = "skiff";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    pub access: Vec<AccessEntry>,
    /// The subject's generation at issue (see `User::generation`); checked by the index that
    /// issued it, on every use.
    #[serde(default)]
    pub gen: u64,
    /// The access token it was issued on, if any: the issuing index honours it only while that
    /// token lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pat: Option<String>,
}

impl Claims {
    /// Does the token allow `action` (`pull`, `push`, `delete`) on repository `name`?
    pub fn allows(&self, name: &str, action: &str) -> bool {
        self.access
            .iter()
            .any(|a| a.kind == "repository" && a.name == name && a.actions.iter().any(|x| x == action || x == "*"))
    }
}

pub struct Signer {
    key: EncodingKey,
    kid: String,
    public: Vec<u8>,
}

fn kid_of(public: &[u8]) -> String {
    hex::encode(&Sha256::digest(public)[..8])
}

impl Signer {
    /// Loads the index's signing key, creating it (mode 0600) on first start.
    pub fn load_or_create(path: &Path) -> std::io::Result<Signer> {
        let pkcs8 = crate::storage::local::read_or_create_private(path, || {
            let rng = ring::rand::SystemRandom::new();
            let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| std::io::Error::other("key generation"))?;
            Ok(doc.as_ref().to_vec())
        })?;
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| std::io::Error::other("bad signing key file"))?;
        let public = pair.public_key().as_ref().to_vec();
        Ok(Signer {
            key: EncodingKey::from_ed_der(&pkcs8),
            kid: kid_of(&public),
            public,
        })
    }

    pub fn sign(&self, claims: &Claims) -> AppResult<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).map_err(AppError::internal)
    }

    /// The public key as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [public_jwk(&self.public)] })
    }

    pub fn public_key(&self) -> &[u8] {
        &self.public
    }
}

fn public_jwk(public: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
        "kid": kid_of(public),
        "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public),
    })
}

const CACHE_MAX: usize = 10_000;

pub struct Verifier {
    keys: Vec<DecodingKey>,
    /// The key ids of `keys` (as `Signer` names them), to tell a token signed with a key this
    /// verifier has never seen (the index changed its key) from a bad one.
    kids: Vec<String>,
    validation: Validation,
    cache: Mutex<HashMap<[u8; 32], Claims>>,
}

/// How far the clocks of the index and a registry may disagree. Small on purpose: a token is
/// refused at most this long after it expired (a delegated registry verifies JWTs itself and
/// cannot see a revocation before then; see the README).
pub const CLOCK_LEEWAY_SECS: u64 = 5;

impl Verifier {
    /// `public_keys`: raw Ed25519 public keys; `audience`: the service name tokens must name.
    pub fn new(public_keys: &[Vec<u8>], audience: &str) -> Verifier {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[ISSUER]);
        // The token spec: "check that the current time is between the nbf and exp claim times"
        // (jsonwebtoken checks only exp unless told).
        validation.validate_nbf = true;
        validation.leeway = CLOCK_LEEWAY_SECS;
        Verifier {
            keys: public_keys.iter().map(|k| DecodingKey::from_ed_der(k)).collect(),
            kids: public_keys.iter().map(|k| kid_of(k)).collect(),
            validation,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Parses the `x` values of a JWKS document into raw keys.
    pub fn keys_from_jwks(jwks: &serde_json::Value) -> Vec<Vec<u8>> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        jwks["keys"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter(|k| k["kty"] == "OKP" && k["crv"] == "Ed25519")
                    .filter_map(|k| k["x"].as_str().and_then(|x| b64.decode(x.trim_end_matches('=')).ok()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the token names a key id this verifier does not have (a newer key of the index).
    pub fn unknown_key(&self, token: &str) -> bool {
        jsonwebtoken::decode_header(token)
            .ok()
            .and_then(|h| h.kid)
            .is_some_and(|kid| !self.kids.contains(&kid))
    }

    pub fn verify(&self, token: &str) -> AppResult<Claims> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = crate::clock::now_secs();
        if let Ok(cache) = self.cache.lock() {
            if let Some(c) = cache.get(&key) {
                if c.exp > now {
                    return Ok(c.clone());
                }
            }
        }
        let mut last = None;
        for k in &self.keys {
            match jsonwebtoken::decode::<Claims>(token, k, &self.validation) {
                Ok(data) => {
                    if let Ok(mut cache) = self.cache.lock() {
                        if cache.len() >= CACHE_MAX {
                            cache.retain(|_, c| c.exp > now);
                            if cache.len() >= CACHE_MAX {
                                cache.clear();
                            }
                        }
                        cache.insert(key, data.claims.clone());
                    }
                    return Ok(data.claims);
                }
                Err(e) => last = Some(e),
            }
        }
        let why = last
            .map(|e| e.to_string())
            .unwrap_or_else(|| "no verification key".into());
        Err(AppError::unauthorized(format!("invalid bearer token: {why}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_reject() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::load_or_create(&dir.path().join("k")).unwrap();
        let again = Signer::load_or_create(&dir.path().join("k")).unwrap();
        assert_eq!(signer.public_key(), again.public_key(), "the key persists");
        let now = crate::clock::now_secs();
        let claims = Claims {
            iss: ISSUER.into(),
            sub: "alice".into(),
            aud: "skiff".into(),
            exp: now + 60,
            nbf: now,
            iat: now,
            jti: "x".into(),
            access: vec![AccessEntry {
                kind: "repository".into(),
                name: "alice/app".into(),
                actions: vec!["pull".into()],
            }],
            gen: 0,
            pat: None,
        };
        let token = signer.sign(&claims).unwrap();
        let keys = Verifier::keys_from_jwks(&signer.jwks());
        let v = Verifier::new(&keys, "skiff");
        let got = v.verify(&token).unwrap();
        assert!(got.allows("alice/app", "pull"));
        assert!(!got.allows("alice/app", "push"));
        assert!(
            Verifier::new(&keys, "other").verify(&token).is_err(),
            "audience checked"
        );
        let mut forged = token.clone();
        forged.pop();
        forged.push('A');
        assert!(v.verify(&forged).is_err() || forged == token);
        let other = Signer::load_or_create(&dir.path().join("k2")).unwrap();
        assert!(Verifier::new(&[other.public_key().to_vec()], "skiff")
            .verify(&token)
            .is_err());

        // Expired: refused once past the few seconds of clock leeway (it was 30).
        let late = |secs: u64| {
            let mut c = claims.clone();
            c.exp = now - secs;
            c.nbf = now - secs - 60;
            c.iat = c.nbf;
            signer.sign(&c).unwrap()
        };
        assert!(v.verify(&late(CLOCK_LEEWAY_SECS + 5)).is_err(), "expired 10 s ago");
        assert!(v.verify(&late(29)).is_err(), "expired 29 s ago");
    }
}
