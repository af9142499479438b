//! Password hashing: PBKDF2-HMAC-SHA256 in PHC strings, a random salt per user. The index
//! stores only these strings; verification is constant-time (password-hash compares outputs so).

use crate::error::{AppError, AppResult};
use pbkdf2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use pbkdf2::{Algorithm, Params, Pbkdf2};
use rand::rngs::OsRng;

pub fn hash(password: &str, rounds: u32) -> AppResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    let params = Params {
        rounds,
        output_length: 32,
    };
    Pbkdf2
        .hash_password_customized(
            password.as_bytes(),
            Some(Algorithm::Pbkdf2Sha256.ident()),
            None,
            params,
            &salt,
        )
        .map(|h| h.to_string())
        .map_err(AppError::internal)
}

/// Constant-time verification (password-hash compares outputs in constant time).
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Pbkdf2.verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let phc = hash("s3cret", 10_000).unwrap();
        assert!(phc.starts_with("$pbkdf2-sha256$i=10000"));
        assert!(verify("s3cret", &phc));
        assert!(!verify("s3cres", &phc));
        assert_ne!(phc, hash("s3cret", 10_000).unwrap(), "salts differ");
    }
}
