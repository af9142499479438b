//! The web UI. Served from `[ui] static_dir` (default `./static`) by actix-files, with ETag,
//! Last-Modified and conditional requests, so a page edited on disk is served at once. A binary
//! copied alone to a host has no such directory: it serves the copy of `static/` compiled into
//! it, with an ETag of its own, so Skiff still ships as one file.

use crate::config::Config;
use actix_web::http::header::{self, EntityTag, IfNoneMatch};
use actix_web::http::Method;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

/// `(URL path, content type, bytes)` of every embedded file.
const EMBEDDED: &[(&str, &str, &str)] = &[
    ("/", "text/html; charset=utf-8", include_str!("../../static/index.html")),
    (
        "/static/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/app.js"),
    ),
    (
        "/static/style.css",
        "text/css; charset=utf-8",
        include_str!("../../static/style.css"),
    ),
];

fn headers() -> DefaultHeaders {
    DefaultHeaders::new()
        // Revalidate every time: the ETag makes that a 304 when nothing changed.
        .add((header::CACHE_CONTROL, "no-cache"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
}

pub fn configure(cfg: &mut web::ServiceConfig, config: &Config) {
    let dir = config.ui.static_dir.clone();
    if dir.join("index.html").is_file() {
        log::info!("web UI served from {}", dir.display());
        let index = dir.join("index.html");
        cfg.service(web::resource("/").wrap(headers()).route(
            web::get().to(move |req: HttpRequest| {
                let index = index.clone();
                async move {
                    Ok::<_, actix_web::Error>(actix_files::NamedFile::open_async(index).await?.into_response(&req))
                }
            }),
        ))
        .service(
            web::scope("/static")
                .wrap(headers())
                .service(actix_files::Files::new("", dir).prefer_utf8(true)),
        );
    } else {
        log::info!("web UI served from the copy built into the binary");
        for (path, content_type, body) in EMBEDDED {
            // The files never change while the binary runs: their tags are computed once.
            let tag = EntityTag::new_strong(hex::encode(&Sha256::digest(body.as_bytes())[..12]));
            cfg.service(
                web::resource(*path)
                    .wrap(headers())
                    .route(web::get().to(move |req: HttpRequest| {
                        let tag = tag.clone();
                        async move { embedded(&req, content_type, body, tag) }
                    })),
            );
        }
    }
}

/// An embedded file, or 304 when the client's copy is current.
fn embedded(req: &HttpRequest, content_type: &'static str, body: &'static str, tag: EntityTag) -> HttpResponse {
    let current = match header::Header::parse(req) {
        Ok(IfNoneMatch::Any) => true,
        Ok(IfNoneMatch::Items(tags)) => tags.iter().any(|t| t.weak_eq(&tag)),
        Err(_) => false,
    };
    if current && (req.method() == Method::GET || req.method() == Method::HEAD) {
        return HttpResponse::NotModified().insert_header(header::ETag(tag)).finish();
    }
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(header::ETag(tag))
        .body(body)
}
