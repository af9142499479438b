//! The web UI: the files of `static/`, compiled into the binary so Skiff stays one file.

use actix_web::{web, HttpResponse};

const INDEX: &str = include_str!("../../static/index.html");
const APP_JS: &str = include_str!("../../static/app.js");
const STYLE: &str = include_str!("../../static/style.css");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(|| async { page(INDEX, "text/html; charset=utf-8") }))
        .route(
            "/static/app.js",
            web::get().to(|| async { page(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/static/style.css",
            web::get().to(|| async { page(STYLE, "text/css; charset=utf-8") }),
        );
}

fn page(body: &'static str, content_type: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(body)
}
