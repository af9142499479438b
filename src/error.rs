//! One error type for the whole server and one table mapping each kind to its HTTP status and
//! v2 error code. v1 routes render `{"error": "..."}`; v2 routes wrap it in [`V2Error`] and render
//! `{"errors": [{"code", "message", "detail"}]}`. An error keeps its cause (`source`); the cause
//! of a server-side failure is logged once, where the response is made, and never sent.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PreconditionFailed,
    RangeNotSatisfiable,
    Unavailable,
    /// The registry's storage is full: nothing was stored, the client may retry later.
    DiskFull,
    Internal,
    // Codes of the OCI distribution spec.
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    TagInvalid,
    Unsupported,
    TooLarge,
    /// A username or email is taken (Docker 1.x reads the exact message to switch to login).
    AccountExists,
    /// A client asks too much, too fast (failed logins, concurrent uploads): `Retry-After`
    /// says when to try again.
    TooManyRequests,
    /// The request body stopped arriving; the connection is closed.
    BodyTimeout,
}

/// kind -> (status, v2 code). The single place a status code is chosen for an error.
fn table(kind: Kind) -> (StatusCode, &'static str) {
    use Kind::*;
    match kind {
        BadRequest => (StatusCode::BAD_REQUEST, "UNSUPPORTED"),
        Unauthorized => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
        Forbidden => (StatusCode::FORBIDDEN, "DENIED"),
        NotFound => (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
        MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED"),
        Conflict => (StatusCode::CONFLICT, "DENIED"),
        PreconditionFailed => (StatusCode::PRECONDITION_FAILED, "UNSUPPORTED"),
        RangeNotSatisfiable => (StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID"),
        Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        // No code of the OCI table says it; clients show the message with any code, and this
        // one names the problem for scripts that read it.
        DiskFull => (StatusCode::INSUFFICIENT_STORAGE, "DISK_FULL"),
        Internal => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN"),
        BlobUnknown => (StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
        BlobUploadInvalid => (StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID"),
        BlobUploadUnknown => (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
        DigestInvalid => (StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
        ManifestBlobUnknown => (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN"),
        ManifestInvalid => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"),
        ManifestUnknown => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
        NameInvalid => (StatusCode::BAD_REQUEST, "NAME_INVALID"),
        NameUnknown => (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
        SizeInvalid => (StatusCode::BAD_REQUEST, "SIZE_INVALID"),
        TagInvalid => (StatusCode::BAD_REQUEST, "TAG_INVALID"),
        Unsupported => (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED"),
        TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID"),
        AccountExists => (StatusCode::BAD_REQUEST, "DENIED"),
        TooManyRequests => (StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS"),
        BodyTimeout => (StatusCode::REQUEST_TIMEOUT, "BLOB_UPLOAD_INVALID"),
    }
}

#[derive(Debug, Clone)]
pub struct AppError {
    pub kind: Kind,
    /// What the client is told.
    pub message: String,
    /// Why, when the error comes from below (an I/O or database error, say): logged, never sent.
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    /// Seconds after which the client may retry (`Retry-After`).
    retry_after: Option<u64>,
}

pub type AppResult<T> = Result<T, AppError>;

/// A cause known only as text (a panic message, an invariant that did not hold).
#[derive(Debug)]
struct Cause(String);

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Cause {}

impl AppError {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        AppError {
            kind,
            message: message.into(),
            source: None,
            retry_after: None,
        }
    }
    /// The same error, telling the client when to retry.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
    }
    /// The same error with its cause attached.
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(cause));
        self
    }
    /// The same cause, told to the client as another kind (a tag parse error is TAG_INVALID on
    /// the v2 routes, say).
    pub fn as_kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(Kind::BadRequest, m)
    }
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(Kind::Unauthorized, m)
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(Kind::Forbidden, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(Kind::Conflict, m)
    }
    /// A server-side failure: the client gets a generic message, the cause is kept for the log.
    pub fn internal(cause: impl fmt::Display) -> Self {
        Self::server(Cause(cause.to_string()))
    }
    /// The same, for a cause that is an error of its own (kept whole, with its chain).
    pub fn server(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::new(Kind::Internal, "Internal server error").caused_by(cause)
    }
    pub fn status(&self) -> StatusCode {
        table(self.kind).0
    }
    pub fn v2_code(&self) -> &'static str {
        table(self.kind).1
    }

    /// What every rendering adds beyond the body: `Retry-After`, and closing the connection
    /// when the request body was not read to its end (a stalled or refused upload), so it is
    /// neither drained nor taken for the next request.
    fn head(&self, resp: &mut actix_web::HttpResponseBuilder) {
        if let Some(secs) = self.retry_after {
            resp.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if matches!(self.kind, Kind::TooManyRequests | Kind::BodyTimeout) {
            resp.force_close();
        }
    }

    /// Logs a server-side failure with its whole chain of causes; client errors are not logged
    /// (the access log has them).
    fn log_if_server_error(&self) {
        if !self.status().is_server_error() {
            return;
        }
        let mut chain = self.message.clone();
        let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(self);
        while let Some(e) = next {
            chain.push_str(": ");
            chain.push_str(&e.to_string());
            next = e.source();
        }
        log::error!("{chain}");
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Whether a write failed for want of space: ENOSPC (`StorageFull`) or a quota (EDQUOT), which
/// is the same to a client. By kind, so it holds for errors re-wrapped with more context.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// The message a client gets when a write finds the storage full.
pub const DISK_FULL: &str =
    "The registry is out of disk space: nothing was stored. Retry once its operator has freed space (skiff gc).";

impl From<std::io::Error> for AppError {
    fn from(e: std::io::Error) -> Self {
        if is_disk_full(&e) {
            return AppError::new(Kind::DiskFull, DISK_FULL).caused_by(e);
        }
        AppError::server(e)
    }
}

impl From<sled::Error> for AppError {
    fn from(e: sled::Error) -> Self {
        AppError::server(e)
    }
}

impl From<serde_json::Error> for AppError {
    fn from(e: serde_json::Error) -> Self {
        AppError::server(e)
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        AppError::internal(format!("blocking task: {e}"))
    }
}

/// v1 rendering: `{"error": "..."}`, with the `WWW-Authenticate: Token` challenge on 401.
impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }
    fn error_response(&self) -> HttpResponse {
        self.log_if_server_error();
        let mut resp = HttpResponse::build(self.status());
        resp.insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header((header::PRAGMA, "no-cache"))
            .insert_header((header::EXPIRES, "-1"));
        if self.kind == Kind::Unauthorized {
            resp.insert_header((header::WWW_AUTHENTICATE, "Token"));
        }
        self.head(&mut resp);
        resp.json(serde_json::json!({ "error": self.message }))
    }
}

/// v2 rendering of the same error, with the Bearer challenge added by the v2 layer.
#[derive(Debug)]
pub struct V2Error {
    pub error: AppError,
    pub challenge: Option<String>,
}

impl fmt::Display for V2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl From<AppError> for V2Error {
    fn from(error: AppError) -> Self {
        V2Error { error, challenge: None }
    }
}

impl ResponseError for V2Error {
    fn status_code(&self) -> StatusCode {
        self.error.status()
    }
    fn error_response(&self) -> HttpResponse {
        self.error.log_if_server_error();
        let mut resp = HttpResponse::build(self.error.status());
        resp.insert_header(("Docker-Distribution-API-Version", "registry/2.0"));
        if let Some(c) = &self.challenge {
            resp.insert_header((header::WWW_AUTHENTICATE, c.as_str()));
        }
        self.error.head(&mut resp);
        resp.json(serde_json::json!({
            "errors": [{ "code": self.error.v2_code(), "message": self.error.message, "detail": null }]
        }))
    }
}
