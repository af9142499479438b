//! The Docker token endpoint: `GET /v2/token?service=&scope=repository:NAME:pull,push` with
//! Basic credentials (or none) returns a short-lived JWT granting what the same policy as v1
//! allows (with an access token, never beyond its scopes); `GET /v2/token/keys` publishes the verification key (JWKS) for other registries.

use super::{query_all, V2Result};
use crate::auth::jwt::{Claims, ISSUER};
use crate::auth::{Holder, Identity};
use crate::clock::now_secs;
use crate::error::{AppError, Kind, V2Error};
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/token", web::get().to(token))
        .route("/token/keys", web::get().to(keys));
}

fn no_signer(state: &AppState) -> AppError {
    AppError::not_found(format!(
        "tokens are issued by the index at {}/v2/token",
        state.config.index_endpoint
    ))
}

async fn keys(state: web::Data<AppState>) -> V2Result<HttpResponse> {
    let signer = state.gate.signer().ok_or_else(|| no_signer(&state))?;
    Ok(HttpResponse::Ok().json(signer.jwks()))
}

async fn token(state: web::Data<AppState>, req: HttpRequest) -> V2Result<HttpResponse> {
    let signer = state.gate.signer().ok_or_else(|| no_signer(&state))?;
    // The token endpoint takes Basic credentials: a 401 here challenges for them (as token
    // servers for Distribution do), RFC 9110 requiring a 401 to carry a challenge.
    let basic = |error: AppError| V2Error {
        challenge: (error.kind == Kind::Unauthorized).then(|| format!("Basic realm=\"{}\"", state.config.v2.service)),
        error,
    };
    let who = state.gate.identify(&req).await.map_err(basic)?;
    if matches!(who, Identity::Token(..) | Identity::Bearer(..)) {
        return Err(basic(AppError::unauthorized(
            "use Basic credentials (or none) to get a token",
        )));
    }
    let scopes = query_all(&req, "scope");
    let access = state
        .gate
        .grant_scopes(&who, scopes.iter().flat_map(|s| s.split(' ')))
        .await?;
    let now = now_secs();
    let ttl = state.config.v2.token_ttl_secs;
    let claims = Claims {
        iss: ISSUER.into(),
        sub: who.username().unwrap_or("").to_string(),
        aud: state.config.v2.service.clone(),
        exp: now + ttl,
        nbf: now.saturating_sub(1),
        iat: now,
        jti: hex::encode(rand::random::<[u8; 12]>()),
        access,
        gen: match &who {
            Identity::User(p) | Identity::Pat(_, Holder::User(p)) => p.generation,
            _ => 0,
        },
        // Honoured only while the access token lives (see `Gate::holder`).
        pat: who.pat_id().map(str::to_string),
    };
    let jwt = signer.sign(&claims)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({
            "token": jwt,
            "access_token": jwt,
            "expires_in": ttl,
            "issued_at": rfc3339(now),
        })))
}

/// RFC 3339 UTC time of `secs` (the token response's `issued_at`).
fn rfc3339(secs: u64) -> String {
    let t = crate::clock::utc(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }
}
