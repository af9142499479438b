//! Access extractors: a handler that names `V1Access<Push>` or `V2Access<Pull>` among its
//! arguments only runs once the caller is identified and allowed that access on the repository
//! in its path, so no handler can forget the check. The route's path names the repository
//! `{repo}` (v1) or `{name}` (v2).
//!
//! v1 and v2 differ only in how a refusal is written: v1 answers `{"error"}`, v2 answers
//! `{"errors"}` with a Bearer challenge for exactly the scope the route needs.

use crate::auth::Identity;
use crate::error::{AppError, AppResult, V2Error};
use crate::http::v2::{authorize, Name};
use crate::index::Access;
use crate::names::RepoName;
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures::future::LocalBoxFuture;
use std::marker::PhantomData;

/// The access a route needs, as a type.
pub trait Need {
    const ACCESS: Access;
}

/// Read: pull images, list tags.
pub struct Pull;
/// Write: push images and tags.
pub struct Push;
/// Delete: remove tags, manifests, repositories; change a repository's settings.
pub struct Delete;

impl Need for Pull {
    const ACCESS: Access = Access::Read;
}
impl Need for Push {
    const ACCESS: Access = Access::Write;
}
impl Need for Delete {
    const ACCESS: Access = Access::Delete;
}

/// The application state, from any extractor.
pub(crate) fn state(req: &HttpRequest) -> AppResult<web::Data<AppState>> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::internal("application state missing"))
}

fn path_param(req: &HttpRequest, name: &str) -> AppResult<String> {
    req.match_info()
        .get(name)
        .map(str::to_string)
        .ok_or_else(|| AppError::internal(format!("route has no {{{name}}} parameter")))
}

/// The caller, identified (bad credentials are refused, never made anonymous).
pub struct Caller(pub Identity);

impl FromRequest for Caller {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state(&req)?;
            Ok(Caller(state.gate.identify(&req).await?))
        })
    }
}

/// A v1 caller allowed `N` on the repository `{repo}` of the path.
pub struct V1Access<N> {
    pub who: Identity,
    pub repo: RepoName,
    need: PhantomData<N>,
}

impl<N: Need> FromRequest for V1Access<N> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state(&req)?;
            let repo = RepoName::parse(&path_param(&req, "repo")?)?;
            let who = state.gate.identify(&req).await?;
            state.gate.check(&who, &repo, N::ACCESS).await?;
            Ok(V1Access {
                who,
                repo,
                need: PhantomData,
            })
        })
    }
}

/// A v2 caller allowed `N` on the repository `{name}` of the path.
pub struct V2Access<N> {
    pub who: Identity,
    pub name: Name,
    need: PhantomData<N>,
}

impl<N> V2Access<N> {
    pub fn repo(&self) -> &RepoName {
        &self.name.repo
    }
}

impl<N: Need> FromRequest for V2Access<N> {
    type Error = V2Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state(&req)?;
            let raw = path_param(&req, "name")?;
            let name = Name::parse(&raw)?;
            let who = authorize(&state, &req, &name, N::ACCESS).await?;
            Ok(V2Access {
                who,
                name,
                need: PhantomData,
            })
        })
    }
}

/// The built-in index, for routes only an index serves. Checked before any access extractor
/// after it in a handler's arguments, so a registry-only process says where the index is
/// instead of asking it about the caller first.
pub struct IndexRole(pub crate::index::Index);

impl FromRequest for IndexRole {
    type Error = AppError;
    type Future = futures::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        futures::future::ready(state(req).and_then(|state| {
            state.index.clone().map(IndexRole).ok_or_else(|| {
                AppError::not_found(format!(
                    "This server is a registry only (standalone = false); use the index at {}",
                    state.config.index_endpoint
                ))
            })
        }))
    }
}
