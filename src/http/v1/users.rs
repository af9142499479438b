//! `/v1/users/`: registration (`docker login` POSTs first), login check, account update.

use super::json;
use crate::auth::Identity;
use crate::config::Registration;
use crate::error::{AppError, AppResult, Kind};
use crate::http::access::Caller;
use crate::index::users::USER_EXISTS;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    for path in ["/users", "/users/"] {
        cfg.service(
            web::resource(path)
                .route(web::get().to(login))
                .route(web::post().to(register)),
        );
    }
    for path in ["/users/{username}", "/users/{username}/"] {
        cfg.route(path, web::put().to(update));
    }
}

#[derive(Deserialize)]
struct NewUser {
    username: String,
    password: String,
    email: String,
}

/// `POST /v1/users/`. For an existing name or email the body must be exactly
/// `"Username or email already exists"`: that is how Docker knows to log in instead.
async fn register(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let new: NewUser = serde_json::from_slice(&body).map_err(|_| AppError::bad_request("Error Decoding JSON"))?;
    let ix = state
        .index
        .clone()
        .ok_or_else(|| AppError::not_found("no index here"))?;
    // Docker 1.x's `docker login` POSTs here first: with an access token (a robot's login is no
    // valid account name) it must read "already exists" and go on to sign in with it.
    if crate::index::pats::is_secret(&new.password) {
        return Ok(json(StatusCode::BAD_REQUEST, &USER_EXISTS));
    }
    let (u, e) = (new.username.clone(), new.email.clone());
    // Check before hashing: every `docker login` POSTs here first, and hashing is slow by design.
    if ix.run(move |ix| ix.user_exists(&u, &e)).await? {
        return Ok(json(StatusCode::BAD_REQUEST, &USER_EXISTS));
    }
    // After the existence check: Docker 1.x logs in to an operator-made `admin` by POSTing
    // here first and reading "already exists".
    crate::index::users::check_not_reserved(&new.username)?;
    let active = match state.config.index.registration {
        Registration::Closed => {
            return Err(AppError::unauthorized(
                "Registration is closed: ask an administrator for an account",
            ))
        }
        Registration::Open => true,
        Registration::Activation => false,
    };
    let created = ix
        .write(move |ix| ix.create_user(&new.username, &new.password, &new.email, active, false))
        .await;
    match created {
        Ok(user) => {
            let target = crate::audit::Target::account(&user.username)
                .detail(serde_json::json!({ "active": active, "registered": true }));
            crate::audit::by_client(
                &state,
                &req,
                &Identity::Anonymous,
                crate::audit::Action::UserCreate,
                target,
            );
            Ok(json(StatusCode::CREATED, &"User Created"))
        }
        Err(e) if e.kind == Kind::AccountExists => Ok(json(StatusCode::BAD_REQUEST, &USER_EXISTS)),
        Err(e) => Err(e),
    }
}

/// `GET /v1/users/` with Basic: 200 if the credentials are good, 401 if not, 403 if inactive.
async fn login(Caller(who): Caller) -> AppResult<HttpResponse> {
    match who {
        Identity::User(_) | Identity::Pat(..) => Ok(json(StatusCode::OK, &"OK")),
        _ => Err(AppError::unauthorized("Wrong login/password, please try again")),
    }
}

#[derive(Deserialize)]
struct UserUpdate {
    email: Option<String>,
    password: Option<String>,
}

/// `PUT /v1/users/{username}/ {"email", "password"}`: the user themself or an admin. 204.
async fn update(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    Caller(who): Caller,
    path: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let username = path.into_inner();
    let Identity::User(me) = &who else {
        return Err(AppError::unauthorized("Requires authorization"));
    };
    if me.name != username && !me.admin {
        return Err(AppError::forbidden("You may only change your own account"));
    }
    let change: UserUpdate = serde_json::from_slice(&body).map_err(|_| AppError::bad_request("Error Decoding JSON"))?;
    let target = crate::audit::Target::account(&username).detail(serde_json::json!({ "email": change.email }));
    let changes_password = change.password.is_some();
    let ix = state
        .index
        .clone()
        .ok_or_else(|| AppError::not_found("no index here"))?;
    ix.write(move |ix| {
        if ix.user(&username)?.is_none() {
            return Err(AppError::not_found(format!("No such user: {username}")));
        }
        if let Some(p) = &change.password {
            crate::index::users::validate_password(p)?;
        }
        if let Some(e) = &change.email {
            ix.set_email(&username, e)?;
        }
        if let Some(p) = &change.password {
            ix.set_password(&username, p)?;
        }
        Ok(())
    })
    .await?;
    if changes_password {
        crate::audit::by_client(&state, &req, &who, crate::audit::Action::UserPassword, target);
    }
    Ok(super::no_cache(HttpResponse::NoContent()).finish())
}
