//! `GET /api/v1/audit?user=&repository=&action=&since=&before=&limit=`: the audit log, newest
//! first, a page at a time (see `manage::audit` for who sees what).

use super::{ok, ApiCaller};
use crate::audit::Query;
use crate::error::{AppError, AppResult};
use crate::manage::audit;
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(list));
}

async fn list(state: web::Data<AppState>, ApiCaller(actor): ApiCaller, req: HttpRequest) -> AppResult<HttpResponse> {
    let query: Query = parse_query(&req)?;
    ok(&audit::list(&state, &actor, query).await?)
}

/// The query string, with a message that names what is wrong with it.
fn parse_query(req: &HttpRequest) -> AppResult<Query> {
    web::Query::<Query>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| AppError::bad_request(format!("Invalid query: {e}")))
}
