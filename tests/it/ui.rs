//! The web UI: every page path answers the app's index.html, `/static/*` serves its files (from
//! disk or the copy built into the binary, all of them), and every UI response carries the
//! security headers (a CSP without inline script, nosniff, no framing, same-origin referrers).

use crate::common::*;
use std::path::Path;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The page paths of the app (ISSUE 12's page map), names with `/` and odd characters included.
const PAGES: &[&str] = &[
    "/",
    "/r/alice/web",
    "/r/alice/team/web",
    "/r/alice/web/-/settings",
    "/r/alice/web/-/tags/v1.2",
    "/r/library/x/-/tags/latest?digest=sha256:00",
    "/signin",
    "/signin?next=/account",
    "/register",
    "/account",
    "/stars",
    "/admin",
    "/?q=web&page=2",
];

fn assert_security_headers(r: &reqwest::Response, what: &str) {
    let h = r.headers();
    assert_eq!(h["content-security-policy"], CSP, "{what}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["referrer-policy"], "same-origin", "{what}");
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
}

/// Every file under `static/`, as `(URL path, bytes)`.
fn static_files() -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                out.push((format!("/static/{rel}"), std::fs::read(&path).unwrap()));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out
}

fn built_in() -> (Server, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&format!(
        "[ui]\nstatic_dir = {:?}\n",
        tmp.path().join("absent").display().to_string()
    ));
    (server, tmp)
}

#[tokio::test]
async fn every_page_path_serves_the_app_with_security_headers() {
    let on_disk = Server::start("");
    let (embedded, _tmp) = built_in();
    let index = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/static/index.html")).unwrap();
    assert!(index.contains(r#"<script type="module" src="/static/app.js">"#));
    // No inline script or style anywhere in the page: the CSP would block it.
    assert_eq!(index.matches("<script").count(), 1, "one external script only");
    assert!(!index.contains("style=") && !index.contains("<style") && !index.contains(" on"));
    let c = client();
    for server in [&on_disk, &embedded] {
        for page in PAGES {
            let r = c.get(format!("{}{page}", server.url)).send().await.unwrap();
            assert_eq!(r.status(), 200, "{page}");
            assert!(
                r.headers()["content-type"].to_str().unwrap().starts_with("text/html"),
                "{page}"
            );
            assert_security_headers(&r, page);
            assert_eq!(r.text().await.unwrap(), index, "{page}");
        }
        // The files and the API around the pages are what they were.
        let js = c.get(format!("{}/static/app.js", server.url)).send().await.unwrap();
        assert_eq!(js.status(), 200);
        assert_security_headers(&js, "app.js");
        let missing = c.get(format!("{}/static/nope.js", server.url)).send().await.unwrap();
        assert_eq!(missing.status(), 404);
        for path in ["/nope", "/signin/x", "/r", "/api/v1/nope"] {
            let r = c.get(format!("{}{path}", server.url)).send().await.unwrap();
            assert_eq!(r.status(), 404, "{path}");
            assert!(
                r.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("application/json"),
                "{path}"
            );
        }
        let v2 = c.get(format!("{}/v2/", server.url)).send().await.unwrap();
        assert_eq!(v2.status(), 401, "the registry's own answer");
        assert!(
            !v2.headers().contains_key("content-security-policy"),
            "only UI responses carry the CSP"
        );
        let ping = c.get(format!("{}/v1/_ping", server.url)).send().await.unwrap();
        assert_eq!(ping.status(), 200);
    }
}

/// A binary without `static/` serves the copy built into it: every file of `static/` must be
/// in it, byte for byte, with its type (a file added to `static/` but not to `EMBEDDED` fails).
#[tokio::test]
async fn the_built_in_copy_has_every_static_file() {
    let (server, _tmp) = built_in();
    let c = client();
    let files = static_files();
    assert!(
        files.len() >= 10,
        "{files:?}",
        files = files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (path, bytes) in files {
        let r = c.get(format!("{}{path}", server.url)).send().await.unwrap();
        assert_eq!(
            r.status(),
            200,
            "{path} is not built in: add it to EMBEDDED in src/http/ui.rs"
        );
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        let want = match path.rsplit('.').next() {
            Some("js") => "text/javascript",
            Some("css") => "text/css",
            Some("html") => "text/html",
            other => panic!("{path}: no type known for {other:?}"),
        };
        assert!(ct.starts_with(want), "{path}: {ct}");
        assert_security_headers(&r, &path);
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice(), "{path}");
    }
}

/// `static/` is served by actix-files with validators; a binary without the directory serves
/// its built-in copy, also with an ETag, and both answer a matching If-None-Match with 304.
#[tokio::test]
async fn ui_files_from_disk_and_built_in_both_revalidate() {
    let on_disk = Server::start("");
    let (built_in, _tmp) = built_in();
    let c = client();
    let expected = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/static/app.js")).unwrap();
    for (server, from_disk) in [(&on_disk, true), (&built_in, false)] {
        let url = format!("{}/static/app.js", server.url);
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        assert_eq!(r.headers().contains_key("last-modified"), from_disk);
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
        assert_eq!(r.text().await.unwrap(), expected);
        let again = c.get(&url).header("If-None-Match", &etag).send().await.unwrap();
        assert_eq!(again.status(), 304, "from disk: {from_disk}");
        let stale = c.get(&url).header("If-None-Match", "\"other\"").send().await.unwrap();
        assert_eq!(stale.status(), 200);
        for page in ["/", "/r/a/b"] {
            let page = c.get(format!("{}{page}", server.url)).send().await.unwrap();
            assert_eq!(page.status(), 200);
            let etag = page.headers()["etag"].to_str().unwrap().to_string();
            assert!(page.text().await.unwrap().contains("/static/app.js"));
            let again = c
                .get(format!("{}/stars", server.url))
                .header("If-None-Match", &etag)
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), 304, "every page path is the same index.html");
        }
    }
}

/// The script calls the routes of issue 12's contract, sends the CSRF token, and never parses
/// data as markup.
#[test]
fn the_app_asks_the_apis_of_the_contract() {
    let js: String = static_files()
        .into_iter()
        .filter(|(p, _)| p.ends_with(".js"))
        .map(|(_, b)| String::from_utf8(b).unwrap())
        .collect();
    for route in [
        "/api/v1/session",
        "/api/v1/browse",
        "/-/tags?n=",
        "/-/star",
        "/-/comments",
        "/api/v1/tokens",
        "/api/v1/gc",
    ] {
        assert!(js.contains(route), "{route}");
    }
    assert!(js.contains("X-CSRF-Token"));
    // Data reaches the page as text only.
    for forbidden in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
    ] {
        assert!(!js.contains(forbidden), "{forbidden} in static/");
    }
}
