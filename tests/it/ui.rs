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
