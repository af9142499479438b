//! `/api/v1/session`: the web UI signs in here and holds a cookie instead of a password.
//!
//! - `GET` tells who the cookie stands for (or nobody), the session's CSRF token, and whether
//!   self-registration is offered.
//! - `POST {"username","password"}` signs in: the same check and throttle as HTTP Basic, then a
//!   new session in an `HttpOnly; SameSite=Strict` cookie (`Secure` when the server is reached
//!   over https).
//! - `DELETE` signs out: the session ends on the server, not only in the browser.
//!
//! The cookie authenticates the management API (see [`from_cookie`]); each change made under
//! it must echo the session's CSRF token in `X-CSRF-Token`, and no change is taken from a page
//! of another origin (see [`same_origin`]), whatever the credentials.

use super::body;
use crate::auth::Principal;
use crate::error::{AppError, AppResult};
use crate::http::{header_str, public_origin};
use crate::index::sessions::Session;
use crate::state::AppState;
use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

/// The cookie's name.
pub const COOKIE: &str = "skiff_session";
/// The header a change made under a session carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/session")
            .route(web::get().to(show))
            .route(web::post().to(sign_in))
            .route(web::delete().to(sign_out)),
    );
}

/// The session cookie's value, if the request carries one.
pub fn cookie(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Whether the method changes anything (everything but reads).
pub fn changes(req: &HttpRequest) -> bool {
    !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Refuses a change sent by a page of another origin. Browsers name the page's origin in
/// `Origin` on every such request (and `Sec-Fetch-Site` when they know it); clients that are
/// not browsers send neither and are not affected. Checked for every change, whatever the
/// credentials: a browser may also hold Basic credentials for this host.
pub fn same_origin(state: &AppState, req: &HttpRequest) -> AppResult<()> {
    let refused =
        || AppError::forbidden("Cross-origin request refused: changes are accepted from this server's own pages only");
    if let Some(site) = header_str(req, "sec-fetch-site") {
        if !matches!(site, "same-origin" | "none") {
            return Err(refused());
        }
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let (scheme, host) = public_origin(&state.config, req);
        let own = format!("{scheme}://{host}");
        let origin = origin.to_str().map_err(|_| refused())?;
        if !origin.eq_ignore_ascii_case(&own) {
            return Err(refused());
        }
    }
    Ok(())
}

/// Whether the request is authenticated by a session cookie (it carries no other credentials).
pub fn by_cookie(req: &HttpRequest) -> bool {
    req.conn_data::<crate::net::server::LocalOperator>().is_none()
        && req.headers().get(header::AUTHORIZATION).is_none()
        && cookie(req).is_some()
}

/// The account a session cookie stands for. A change needs the session's CSRF token too.
/// `None` when the request carries no cookie or one of a session that has ended.
pub async fn from_cookie(state: &AppState, req: &HttpRequest) -> AppResult<Option<Principal>> {
    let Some(id) = cookie(req) else {
        return Ok(None);
    };
    let Some((principal, session)) = state.gate.session(id).await? else {
        return Ok(None);
    };
    if changes(req) {
        let sent = header_str(req, CSRF_HEADER).unwrap_or_default();
        if !crate::auth::constant_time_eq(sent.as_bytes(), session.csrf.as_bytes()) {
            return Err(AppError::forbidden(
                "Missing or wrong CSRF token: send the session's csrf value in X-CSRF-Token",
            ));
        }
    }
    Ok(Some(principal))
}

fn index(state: &AppState) -> AppResult<&crate::index::Index> {
    super::index(state)
}

fn view(state: &AppState, signed_in: Option<(Value, &Session)>) -> Value {
    let (user, csrf) = match signed_in {
        Some((user, session)) => (user, json!(session.csrf)),
        None => (Value::Null, Value::Null),
    };
    json!({ "user": user, "csrf": csrf, "registration": state.config.index.registration })
}

async fn user_json(state: &AppState, principal: &Principal) -> AppResult<Value> {
    let name = principal.name.clone();
    let account = index(state)?.run(move |ix| ix.user(&name)).await?;
    Ok(json!({
        "name": principal.name,
        "admin": principal.admin,
        "email": account.map(|a| a.email).unwrap_or_default(),
    }))
}

async fn show(state: web::Data<AppState>, req: HttpRequest) -> AppResult<HttpResponse> {
    let signed_in = match cookie(&req) {
        Some(id) => state.gate.session(id).await?,
        None => None,
    };
    let body = match &signed_in {
        Some((p, session)) => view(&state, Some((user_json(&state, p).await?, session))),
        None => view(&state, None),
    };
    let mut reply = HttpResponse::Ok();
    reply.insert_header((header::CACHE_CONTROL, "no-store"));
    if signed_in.is_none() && cookie(&req).is_some() {
        reply.insert_header((header::SET_COOKIE, clear_cookie(&state, &req)));
    }
    Ok(reply.json(body))
}

#[derive(Deserialize)]
struct SignIn {
    username: String,
    password: String,
}

async fn sign_in(state: web::Data<AppState>, req: HttpRequest, raw: web::Bytes) -> AppResult<HttpResponse> {
    same_origin(&state, &req)?;
    let SignIn { username, password } = body(&raw)?;
    let address = state.gate.client_address(&req);
    let principal = state.gate.login(&username, &password, address).await?;
    let ttl = state.config.ui.session_hours.saturating_mul(3600);
    let (name, generation) = (principal.name.clone(), principal.generation);
    let opened = index(&state)?
        .write(move |ix| ix.open_session(&name, generation, ttl))
        .await?;
    let user = user_json(&state, &principal).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::SET_COOKIE, set_cookie(&state, &req, &opened.id, ttl)))
        .json(view(&state, Some((user, &opened.session)))))
}

async fn sign_out(state: web::Data<AppState>, req: HttpRequest) -> AppResult<HttpResponse> {
    same_origin(&state, &req)?;
    if let Some(id) = cookie(&req).map(str::to_string) {
        // Only the holder signs a session out: the CSRF token proves the page is ours.
        if from_cookie(&state, &req).await?.is_some() {
            index(&state)?.write(move |ix| ix.close_session(&id)).await?;
        }
    }
    Ok(HttpResponse::NoContent()
        .insert_header((header::SET_COOKIE, clear_cookie(&state, &req)))
        .finish())
}

fn secure(state: &AppState, req: &HttpRequest) -> &'static str {
    if public_origin(&state.config, req).0 == "https" {
        "; Secure"
    } else {
        ""
    }
}

fn set_cookie(state: &AppState, req: &HttpRequest, id: &str, ttl: u64) -> String {
    format!(
        "{COOKIE}={id}; Path=/; Max-Age={ttl}; HttpOnly; SameSite=Strict{}",
        secure(state, req)
    )
}

fn clear_cookie(state: &AppState, req: &HttpRequest) -> String {
    format!(
        "{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{}",
        secure(state, req)
    )
}
