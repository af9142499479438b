//! The web UI is served from the binary, and the API it calls answers it.

use crate::common::*;

#[tokio::test]
async fn ui_pages_and_the_search_they_use() {
    let s = Server::start("");
    let c = client();
    let r = c.get(format!("{}/", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = r.text().await.unwrap();
    assert!(html.contains("/static/app.js") && html.contains("/static/style.css"));
    let js = c.get(format!("{}/static/app.js", s.url)).send().await.unwrap();
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let js = js.text().await.unwrap();
    assert!(js.contains("/v1/search?q=") && js.contains("/tags/list"));
    assert_eq!(
        c.get(format!("{}/static/nope.js", s.url))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // What the page asks for on load: an empty search.
    let found = body_json(c.get(format!("{}/v1/search?q=&n=100", s.url)).send().await.unwrap()).await;
    assert_eq!(found["num_results"], 0);
}

/// `static/` is served by actix-files with validators; a binary without the directory serves
/// its built-in copy, also with an ETag, and both answer a matching If-None-Match with 304.
#[tokio::test]
async fn ui_files_from_disk_and_built_in_both_revalidate() {
    let on_disk = Server::start("");
    let tmp = tempfile::tempdir().unwrap();
    let built_in = Server::start(&format!(
        "[ui]\nstatic_dir = {:?}\n",
        tmp.path().join("absent").display().to_string()
    ));
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
        let page = c.get(format!("{}/", server.url)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.headers().contains_key("etag"));
        assert!(page.text().await.unwrap().contains("/static/app.js"));
    }
}
