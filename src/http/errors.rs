//! Error bodies actix-web writes itself (a body over the size limit, a payload that breaks off,
//! a query it cannot decode) are plain text. This middleware gives each of them the JSON body
//! of the protocol the path belongs to, so every error a client sees is JSON: v2's
//! `{"errors": [...]}` under `/v2/`, v1's `{"error": ...}` elsewhere.

use crate::error::{AppError, Kind, V2Error};
use actix_web::dev::ServiceResponse;
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::ResponseError;

pub fn json_errors<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(to_json)
}

/// The kind an actix-written error is told as.
fn kind_of(status: StatusCode) -> Option<(Kind, &'static str)> {
    Some(match status {
        StatusCode::PAYLOAD_TOO_LARGE => (Kind::TooLarge, "request body larger than this endpoint accepts"),
        StatusCode::BAD_REQUEST => (Kind::BadRequest, "malformed request"),
        StatusCode::NOT_FOUND => (Kind::NotFound, "not found"),
        StatusCode::METHOD_NOT_ALLOWED => (Kind::MethodNotAllowed, "method not allowed"),
        StatusCode::INTERNAL_SERVER_ERROR => (Kind::Internal, "Internal server error"),
        _ => return None,
    })
}

fn to_json<B: 'static>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    let Some((kind, message)) = kind_of(res.status()).filter(|_| !is_json && res.request().method() != Method::HEAD)
    else {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    };
    let error = AppError::new(kind, message);
    let v2 = res.request().path().starts_with("/v2/") || res.request().path() == "/v2";
    let (req, old) = res.into_parts();
    let mut new = if v2 {
        V2Error::from(error).error_response()
    } else {
        error.error_response()
    };
    // Keep what actix said beyond the body (a challenge, an Allow list).
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH && !new.headers().contains_key(name) {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    *new.status_mut() = old.status();
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, new).map_into_right_body(),
    ))
}
