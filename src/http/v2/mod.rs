//! The OCI Distribution (v2) API on the same storage, users and access rules as v1.

mod base;
mod blobs;
pub(crate) mod discovery;
mod manifests;
mod token;
pub(crate) mod uploads;

use crate::auth::Identity;
use crate::error::{AppError, Kind, V2Error};
use crate::index::Access;
use crate::names::RepoName;
use crate::state::AppState;
use actix_web::{middleware::DefaultHeaders, web, HttpRequest, HttpResponse};

pub type V2Result<T> = Result<T, V2Error>;

pub fn configure(cfg: &mut web::ServiceConfig, state: &AppState) {
    if !state.config.v2.enabled {
        return;
    }
    let mut scope = web::scope("/v2")
        .wrap(DefaultHeaders::new().add(("Docker-Distribution-API-Version", "registry/2.0")))
        .default_service(web::to(no_endpoint))
        .configure(base::configure)
        .configure(token::configure);
    if state.config.registry {
        scope = scope
            .configure(discovery::configure_catalog)
            .configure(uploads::configure)
            .configure(blobs::configure)
            .configure(manifests::configure)
            .configure(discovery::configure);
    }
    cfg.service(scope);
}

/// Any other path under `/v2/`: 404 in the v2 error format (a JSON error body must be the
/// spec's `{"errors": [...]}`, not v1's `{"error": ...}`).
async fn no_endpoint(req: HttpRequest) -> V2Result<HttpResponse> {
    Err(AppError::new(
        Kind::NotFound,
        format!("no v2 endpoint {} {}", req.method(), req.path()),
    )
    .into())
}

/// The repository named in the URL, as the client spelled it and as Skiff names it.
pub struct Name {
    pub raw: String,
    pub repo: RepoName,
}

impl Name {
    pub fn parse(raw: &str) -> V2Result<Name> {
        let repo = RepoName::parse(raw)
            .map_err(|_| AppError::new(Kind::NameInvalid, format!("invalid repository name {raw:?}")))?;
        Ok(Name {
            raw: raw.to_string(),
            repo,
        })
    }
}

/// `Bearer realm=...,service=...[,scope=...]`: where to get a token, and for what.
pub fn challenge(state: &AppState, req: &HttpRequest, scope: Option<String>, error: Option<&str>) -> String {
    let realm = if state.config.standalone {
        let (scheme, host) = crate::http::public_origin(&state.config, req);
        format!("{scheme}://{host}/v2/token")
    } else {
        format!("{}/v2/token", state.config.index_endpoint.trim_end_matches('/'))
    };
    let mut c = format!("Bearer realm=\"{realm}\",service=\"{}\"", state.config.v2.service);
    if let Some(s) = scope {
        c.push_str(&format!(",scope=\"{s}\""));
    }
    if let Some(e) = error {
        c.push_str(&format!(",error=\"{e}\""));
    }
    c
}

/// `error`, with the Bearer challenge for `scope` when it is a 401: RFC 9110 requires a 401 to
/// carry a challenge, and it tells the client where to get credentials.
pub fn challenged(state: &AppState, req: &HttpRequest, scope: Option<String>, error: AppError) -> V2Error {
    let challenge = (error.kind == Kind::Unauthorized).then(|| challenge(state, req, scope, None));
    V2Error { error, challenge }
}

fn actions(access: Access) -> &'static str {
    match access {
        Access::Read => "pull",
        Access::Write => "pull,push",
        Access::Delete => "delete",
    }
}

/// Who is calling, and may they do `access` on the repository. A 401 carries the Bearer
/// challenge for exactly the scope the request needs; a repository the caller may not see is
/// `NAME_UNKNOWN`, as if it did not exist.
pub async fn authorize(state: &AppState, req: &HttpRequest, name: &Name, access: Access) -> V2Result<Identity> {
    let scope = format!("repository:{}:{}", name.raw, actions(access));
    let who = match state.gate.identify(req).await {
        Ok(w) => w,
        Err(e) => return Err(challenged(state, req, Some(scope), e)),
    };
    match state.gate.check(&who, &name.repo, access).await {
        Ok(()) => Ok(who),
        Err(e) if e.kind == Kind::Unauthorized => {
            let error = matches!(who, Identity::Bearer(..)).then_some("insufficient_scope");
            Err(V2Error {
                error: e,
                challenge: Some(challenge(state, req, Some(scope), error)),
            })
        }
        Err(e) if e.kind == Kind::NotFound => Err(name_unknown().into()),
        Err(e) => Err(e.into()),
    }
}

fn name_unknown() -> AppError {
    AppError::new(Kind::NameUnknown, "repository name not known to registry")
}

/// The answer for something not found in `repo`: `missing`, or NAME_UNKNOWN when the repository
/// itself does not exist. A repository the caller may not see answers NAME_UNKNOWN too (in
/// `authorize`), so no answer tells a private repository from no repository. Checked only on a
/// miss, to keep the hit path to one storage read.
pub async fn not_found(state: &AppState, repo: &RepoName, missing: AppError) -> V2Error {
    match state.v2_repos.exists(repo).await {
        Ok(true) => missing.into(),
        Ok(false) => name_unknown().into(),
        Err(e) => e.into(),
    }
}

/// All values of a query parameter (`tag` and `scope` may repeat).
pub fn query_all(req: &HttpRequest, key: &str) -> Vec<String> {
    form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}

pub fn query_one(req: &HttpRequest, key: &str) -> Option<String> {
    query_all(req, key).into_iter().next()
}
