//! The web UI: a single-page app with real URLs. Served from `[ui] static_dir` (default
//! `./static`) by actix-files, with ETag, Last-Modified and conditional requests, so a page
//! edited on disk is served at once. A binary copied alone to a host has no such directory: it
//! serves the copy of `static/` compiled into it, with an ETag of its own, so Skiff still ships
//! as one file.
//!
//! Every page path of the app (`/`, `/r/NAME...`, `/signin`, ...) answers `index.html`; the
//! script reads the path and draws the page, so links, reloads and back/forward all work.
//! Every UI response carries a Content-Security-Policy that allows no inline script and no
//! other origin: even a bug that put data into markup could not run it.

use crate::config::Config;
use actix_web::http::header::{self, EntityTag, IfNoneMatch};
use actix_web::http::Method;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

/// The policy of every UI response: scripts, styles and images from this origin only (images
/// also as `data:` URLs), no plugins, no `<base>`, no framing, forms post here only.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The paths the app draws itself (actix patterns); each answers `index.html`.
const PAGES: &[&str] = &[
    "/",
    "/r/{tail:.*}",
    "/signin",
    "/register",
    "/account",
    "/stars",
    "/admin",
];

macro_rules! embed {
    ($($file:literal => $type:literal),* $(,)?) => {
        &[$((concat!("/static/", $file), $type, include_str!(concat!("../../static/", $file)))),*]
    };
}

/// `(URL path, content type, bytes)` of every file of `static/` (`tests/it/ui.rs` checks that
/// none is missing).
const EMBEDDED: &[(&str, &str, &str)] = embed![
    "index.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "app.js" => "text/javascript; charset=utf-8",
    "js/api.js" => "text/javascript; charset=utf-8",
    "js/dom.js" => "text/javascript; charset=utf-8",
    "js/list.js" => "text/javascript; charset=utf-8",
    "js/repo.js" => "text/javascript; charset=utf-8",
    "js/settings.js" => "text/javascript; charset=utf-8",
    "js/account.js" => "text/javascript; charset=utf-8",
    "js/admin.js" => "text/javascript; charset=utf-8",
];

const INDEX: &str = "/static/index.html";

fn headers() -> DefaultHeaders {
    DefaultHeaders::new()
        // Revalidate every time: the ETag makes that a 304 when nothing changed.
        .add((header::CACHE_CONTROL, "no-cache"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::CONTENT_SECURITY_POLICY, CSP))
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
}

pub fn configure(cfg: &mut web::ServiceConfig, config: &Config) {
    let dir = config.ui.static_dir.clone();
    if dir.join("index.html").is_file() {
        log::info!("web UI served from {}", dir.display());
        let index = dir.join("index.html");
        for page in PAGES {
            let index = index.clone();
            cfg.service(
                web::resource(*page)
                    .wrap(headers())
                    .route(web::get().to(move |req: HttpRequest| {
                        let index = index.clone();
                        async move {
                            Ok::<_, actix_web::Error>(
                                actix_files::NamedFile::open_async(index).await?.into_response(&req),
                            )
                        }
                    })),
            );
        }
        cfg.service(
            web::scope("/static")
                .wrap(headers())
                .service(actix_files::Files::new("", dir).prefer_utf8(true)),
        );
    } else {
        log::info!("web UI served from the copy built into the binary");
        for (path, content_type, body) in EMBEDDED {
            let tag = tag(body);
            let resources: Vec<&str> = if *path == INDEX {
                PAGES.iter().copied().chain([*path]).collect()
            } else {
                vec![*path]
            };
            for resource in resources {
                let tag = tag.clone();
                cfg.service(
                    web::resource(resource)
                        .wrap(headers())
                        .route(web::get().to(move |req: HttpRequest| {
                            let tag = tag.clone();
                            async move { embedded(&req, content_type, body, tag) }
                        })),
                );
            }
        }
    }
}

/// The files never change while the binary runs: their tags are computed once, at startup.
fn tag(body: &str) -> EntityTag {
    EntityTag::new_strong(hex::encode(&Sha256::digest(body.as_bytes())[..12]))
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
