//! The Docker token endpoint: `GET /v2/token?service=&scope=repository:NAME:pull,push` with
//! Basic credentials (or none) returns a short-lived JWT granting what the same policy as v1
//! allows; `GET /v2/token/keys` publishes the verification key (JWKS) for other registries.

use super::{query_all, V2Result};
use crate::auth::jwt::{AccessEntry, Claims, ISSUER};
use crate::auth::Identity;
use crate::clock::now_secs;
use crate::error::{AppError, Kind, V2Error};
use crate::index::Access;
use crate::names::RepoName;
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

/// `repository:name:pull,push` -> (name, actions). Other resource types are ignored.
fn parse_scope(scope: &str) -> Option<(String, Vec<String>)> {
    let (kind, rest) = scope.split_once(':')?;
    if kind != "repository" {
        return None;
    }
    let (name, actions) = rest.rsplit_once(':')?;
    Some((name.to_string(), actions.split(',').map(str::to_string).collect()))
}

/// The access entries of a token for the requested scopes: for each repository scope, the
/// actions the gate grants this caller (none listed when it grants nothing).
async fn grant_scopes<'a>(
    state: &AppState,
    who: &Identity,
    scopes: impl Iterator<Item = &'a str>,
) -> V2Result<Vec<AccessEntry>> {
    let mut access = Vec::new();
    for scope in scopes {
        let Some((raw, wanted)) = parse_scope(scope) else {
            continue;
        };
        let Ok(repo) = RepoName::parse(&raw) else {
            return Err(AppError::new(Kind::NameInvalid, format!("invalid repository name in scope {scope:?}")).into());
        };
        let mut levels = Vec::new();
        for action in &wanted {
            match action.as_str() {
                "pull" => levels.push(Access::Read),
                "push" => levels.push(Access::Write),
                "delete" => levels.push(Access::Delete),
                "*" => levels.extend([Access::Read, Access::Write, Access::Delete]),
                _ => {}
            }
        }
        let mut granted: Vec<String> = Vec::new();
        for level in state.gate.grantable(who, &repo, &levels).await? {
            let action = action_name(level);
            if !granted.iter().any(|g| g == action) {
                granted.push(action.to_string());
            }
        }
        if !granted.is_empty() {
            access.push(AccessEntry {
                kind: "repository".into(),
                name: repo.to_string(),
                actions: granted,
            });
        }
    }
    Ok(access)
}

fn action_name(access: Access) -> &'static str {
    match access {
        Access::Read => "pull",
        Access::Write => "push",
        Access::Delete => "delete",
    }
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
    if matches!(who, Identity::Token(_) | Identity::Bearer(_)) {
        return Err(basic(AppError::unauthorized(
            "use Basic credentials (or none) to get a token",
        )));
    }
    let scopes = query_all(&req, "scope");
    let access = grant_scopes(&state, &who, scopes.iter().flat_map(|s| s.split(' '))).await?;
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
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_dates() {
        assert_eq!(
            parse_scope("repository:alice/app:pull,push"),
            Some(("alice/app".into(), vec!["pull".into(), "push".into()]))
        );
        assert_eq!(parse_scope("registry:catalog:*"), None);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }
}
