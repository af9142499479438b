//! In-process handler tests: the whole app on temp storage through `actix_web::test`, no socket
//! and no child process, so a change to a handler, the gate or storage is checked in seconds.
//! The real-process suite (`tests/it`) stays the judge of wire behaviour.

use crate::config::Config;
use crate::digest::Digest;
use crate::state::AppState;
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use actix_web::{web, App};
use base64::Engine;

struct Harness {
    state: web::Data<AppState>,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    config.index.pbkdf2_rounds = 10_000;
    let state = web::Data::new(crate::open_state(config).await.expect("state"));
    let ix = state.index.clone().expect("standalone has an index");
    ix.run(|ix| {
        ix.create_user("alice", "alice-pw", "alice@example.com", true, false)?;
        ix.create_user("carol", "carol-pw", "carol@example.com", true, false)
    })
    .await
    .expect("users");
    Harness { state, _dir: dir }
}

/// The whole app on the harness's state.
macro_rules! app {
    ($h:expr) => {{
        let state = $h.state.clone();
        test::init_service(App::new().configure(|cfg| super::configure(cfg, state))).await
    }};
}

fn basic(user: &str, pw: &str) -> (&'static str, String) {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
    ("Authorization", format!("Basic {token}"))
}

async fn body_of(resp: ServiceResponse) -> Vec<u8> {
    test::read_body(resp).await.to_vec()
}

fn header(resp: &ServiceResponse, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn manifest_for(config: &[u8], layer: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": Digest::sha256_of(config).to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": Digest::sha256_of(layer).to_string(), "size": layer.len()}]
    }))
    .expect("json")
}

#[actix_web::test]
async fn v2_push_pull_range_and_delete() {
    let h = harness().await;
    let app = app!(h);
    let alice = basic("alice", "alice-pw");
    let (config, layer) = (b"{}".to_vec(), b"layer bytes, 0123456789".to_vec());
    for blob in [&config, &layer] {
        let req = TestRequest::post()
            .uri(&format!(
                "/v2/alice/app/blobs/uploads/?digest={}",
                Digest::sha256_of(blob)
            ))
            .insert_header(alice.clone())
            .set_payload(blob.clone())
            .to_request();
        assert_eq!(test::call_service(&app, req).await.status(), StatusCode::CREATED);
    }
    let manifest = manifest_for(&config, &layer);
    let req = TestRequest::put()
        .uri("/v2/alice/app/manifests/v1")
        .insert_header(alice.clone())
        .insert_header(("Content-Type", "application/vnd.oci.image.manifest.v1+json"))
        .set_payload(manifest.clone())
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let digest = Digest::sha256_of(&manifest).to_string();
    assert_eq!(header(&resp, "Docker-Content-Digest"), digest);

    // Anonymous pulls of a public repository: manifest by tag, a byte range of the layer.
    let resp = test::call_service(&app, TestRequest::get().uri("/v2/alice/app/manifests/v1").to_request()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(body_of(resp).await, manifest);
    let req = TestRequest::get()
        .uri(&format!("/v2/alice/app/blobs/{}", Digest::sha256_of(&layer)))
        .insert_header(("Range", "bytes=6-10"))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&resp, "Content-Range"), format!("bytes 6-10/{}", layer.len()));
    assert_eq!(body_of(resp).await, b"bytes");

    // The record made by the push: listed in the catalog.
    let resp = test::call_service(&app, TestRequest::get().uri("/v2/_catalog").to_request()).await;
    let catalog: serde_json::Value = serde_json::from_slice(&body_of(resp).await).expect("json");
    assert_eq!(catalog["repositories"], serde_json::json!(["alice/app"]));

    // Deleting by digest removes the tag on it too.
    let req = TestRequest::delete()
        .uri(&format!("/v2/alice/app/manifests/{digest}"))
        .insert_header(alice.clone())
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), StatusCode::ACCEPTED);
    let resp = test::call_service(&app, TestRequest::get().uri("/v2/alice/app/manifests/v1").to_request()).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let err: serde_json::Value = serde_json::from_slice(&body_of(resp).await).expect("json");
    assert_eq!(err["errors"][0]["code"], "MANIFEST_UNKNOWN");
}

/// The extractors refuse before a handler runs, in each protocol's own shape.
#[actix_web::test]
async fn access_extractors_refuse_in_each_protocols_shape() {
    let h = harness().await;
    let app = app!(h);
    // v2, anonymous push: 401 with a challenge for exactly the scope needed.
    let resp = test::call_service(
        &app,
        TestRequest::post().uri("/v2/alice/app/blobs/uploads/").to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let challenge = header(&resp, "WWW-Authenticate");
    assert!(
        challenge.contains("scope=\"repository:alice/app:pull,push\""),
        "{challenge}"
    );
    // v2, a stranger's push into alice's namespace: 403 DENIED.
    let req = TestRequest::post()
        .uri("/v2/alice/app/blobs/uploads/")
        .insert_header(basic("carol", "carol-pw"))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let err: serde_json::Value = serde_json::from_slice(&body_of(resp).await).expect("json");
    assert_eq!(err["errors"][0]["code"], "DENIED");
    // v1, the same stranger deleting a tag: 403 in v1's `{"error"}` shape.
    let req = TestRequest::delete()
        .uri("/v1/repositories/alice/app/tags/latest")
        .insert_header(basic("carol", "carol-pw"))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let err: serde_json::Value = serde_json::from_slice(&body_of(resp).await).expect("json");
    assert!(err["error"].is_string(), "{err}");
    // A wrong password is 401, never anonymous.
    let req = TestRequest::get()
        .uri("/v1/repositories/alice/app/tags")
        .insert_header(basic("alice", "wrong"))
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), StatusCode::UNAUTHORIZED);
    // A private repository is absent to a stranger, on v2 as on v1.
    let req = TestRequest::put()
        .uri("/v1/repositories/alice/secret/properties")
        .insert_header(basic("alice", "alice-pw"))
        .set_payload(r#"{"access": "private"}"#)
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), StatusCode::OK);
    let req = TestRequest::get()
        .uri("/v2/alice/secret/tags/list")
        .insert_header(basic("carol", "carol-pw"))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let err: serde_json::Value = serde_json::from_slice(&body_of(resp).await).expect("json");
    assert_eq!(err["errors"][0]["code"], "NAME_UNKNOWN");
}

/// A v1 push as Docker 1.x makes it (json, layer, checksum, tag), then a pull of the layer.
#[actix_web::test]
async fn v1_image_push_and_pull() {
    let h = harness().await;
    let app = app!(h);
    let alice = basic("alice", "alice-pw");
    let id = "a".repeat(64);
    let json = format!(r#"{{"id":"{id}"}}"#);
    let layer = b"not really a tar, but bytes".to_vec();
    let req = TestRequest::put()
        .uri(&format!("/v1/images/{id}/json"))
        .insert_header(alice.clone())
        .set_payload(json.clone())
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), StatusCode::OK);
    let req = TestRequest::put()
        .uri(&format!("/v1/images/{id}/layer"))
        .insert_header(alice.clone())
        .set_payload(layer.clone())
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), StatusCode::OK);
    let mut payload = json.clone().into_bytes();
    payload.push(b'\n');
    payload.extend_from_slice(&layer);
    let req = TestRequest::put()
        .uri(&format!("/v1/images/{id}/checksum"))
        .insert_header(alice.clone())
        .insert_header(("X-Docker-Checksum-Payload", Digest::sha256_of(&payload).to_string()))
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), StatusCode::OK);
    let req = TestRequest::put()
        .uri("/v1/repositories/alice/app/tags/latest")
        .insert_header(alice.clone())
        .set_payload(format!("\"{id}\""))
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), StatusCode::OK);
    let resp = test::call_service(
        &app,
        TestRequest::get().uri(&format!("/v1/images/{id}/layer")).to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "X-Docker-Size"), layer.len().to_string());
    assert_eq!(body_of(resp).await, layer);
    let resp = test::call_service(
        &app,
        TestRequest::get().uri("/v1/repositories/alice/app/tags").to_request(),
    )
    .await;
    let tags: serde_json::Value = serde_json::from_slice(&body_of(resp).await).expect("json");
    assert_eq!(tags, serde_json::json!({ "latest": id }));
}
