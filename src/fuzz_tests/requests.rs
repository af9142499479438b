//! Whole requests of both protocols through the whole app.

use super::manifests::{manifest_body, mutated_manifest, MEDIA_TYPES};
use super::*;

// ---- whole requests ----

/// One request as a hostile client may send it: a route of either protocol with its parts
/// (name, reference, digest, id, query) near-valid or arbitrary, hostile headers and a body.
#[derive(Debug, Clone)]
struct FuzzRequest {
    method: &'static str,
    uri: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

/// Percent-encodes all but unreserved characters, `/` and `:`, so any text makes a valid URI.
fn uri_part(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn fuzz_request(blob: Digest) -> impl Strategy<Value = FuzzRequest> {
    let name = prop_oneof![
        3 => proptest::sample::select(&["alice/app", "alice/app/sub", "busybox", "carol/x", "alice/app/"][..])
            .prop_map(str::to_string),
        1 => valid_name(),
        1 => near_text(),
    ];
    let digest = prop_oneof![2 => Just(blob.to_string()), 2 => digest_text()];
    let reference = prop_oneof![2 => Just("latest".to_string()), 1 => Just(blob.to_string()), 2 => text()];
    let id = prop_oneof![hex(), text(), Just(format!("{}/json", "a".repeat(64)))];
    let number = prop_oneof![Just(String::new()), "-?[0-9]{1,25}", text()];
    const METHODS: &[&str] = &["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"];
    let route = (
        0u8..14,
        name,
        digest,
        reference,
        id,
        number,
        text(),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(|(route, name, digest, reference, id, n, q, pick, any_method)| {
            let (name, digest, reference, id, n, q) = (
                uri_part(&name),
                uri_part(&digest),
                uri_part(&reference),
                uri_part(&id),
                uri_part(&n),
                uri_part(&q),
            );
            // The methods the route has, mostly; any method sometimes.
            let (uri, methods): (String, &[&'static str]) = match route {
                0 => (
                    format!("/v2/{name}/manifests/{reference}"),
                    &["GET", "HEAD", "PUT", "DELETE"],
                ),
                1 => (format!("/v2/{name}/blobs/{digest}"), &["GET", "HEAD", "DELETE"]),
                2 => (format!("/v2/{name}/blobs/uploads/?digest={digest}"), &["POST"]),
                3 => (format!("/v2/{name}/blobs/uploads/?mount={digest}&from={q}"), &["POST"]),
                4 => (
                    format!("/v2/{name}/blobs/uploads/{id}?digest={digest}"),
                    &["GET", "PATCH", "PUT", "DELETE"],
                ),
                5 => (format!("/v2/{name}/tags/list?n={n}&last={q}"), &["GET"]),
                6 => (format!("/v2/_catalog?n={n}&last={q}"), &["GET"]),
                7 => (format!("/v2/{name}/referrers/{digest}?artifactType={q}"), &["GET"]),
                8 => (format!("/v2/token?service=skiff&scope=repository:{name}:{q}"), &["GET"]),
                9 => (format!("/v1/images/{id}/{q}"), &["GET", "PUT"]),
                10 => (
                    format!("/v1/repositories/{name}/tags/{reference}"),
                    &["GET", "PUT", "DELETE"],
                ),
                11 => (format!("/v1/repositories/{name}/{q}"), &["GET", "PUT", "DELETE"]),
                12 => (format!("/v1/search?q={q}&n={n}&page={n}"), &["GET"]),
                _ => (format!("/{q}"), METHODS),
            };
            let methods = if any_method { METHODS } else { methods };
            (methods[usize::from(pick) % methods.len()], uri)
        });
    let auth = prop_oneof![
        2 => Just(None),
        2 => Just(Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("alice:alice-pw")))),
        1 => text().prop_map(|t| Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(t)))),
        1 => (proptest::sample::select(&["Basic ", "Token ", "Bearer ", ""][..]), text())
            .prop_map(|(s, t)| Some(format!("{s}{t}"))),
    ];
    let content_type = prop_oneof![
        2 => Just(None),
        2 => proptest::sample::select(MEDIA_TYPES).prop_map(|m| Some(m.to_string())),
        1 => text().prop_map(Some),
    ];
    let range = proptest::option::of(prop_oneof![
        (edge_u64(), edge_u64()).prop_map(|(a, b)| format!("bytes={a}-{b}")),
        (edge_u64(), edge_u64()).prop_map(|(a, b)| format!("{a}-{b}")),
        text(),
    ]);
    let body = prop_oneof![
        2 => Just(Vec::new()),
        2 => prop_oneof![manifest_body(), mutated_manifest()]
            .prop_map(|(b, _)| serde_json::to_vec(&b).unwrap_or_default()),
        1 => json_bytes(),
    ];
    (route, auth, content_type, range, body).prop_map(|((method, uri), auth, content_type, range, body)| {
        let mut headers = Vec::new();
        // Header values must be visible ASCII to be sent at all: keep what a client could send.
        let mut add = |name: &'static str, v: Option<String>| {
            if let Some(v) = v.filter(|v| actix_web::http::header::HeaderValue::from_str(v).is_ok()) {
                headers.push((name, v));
            }
        };
        add("Authorization", auth);
        add("Content-Type", content_type);
        add("Range", range.clone());
        add("Content-Range", range);
        FuzzRequest {
            method,
            uri,
            headers,
            body,
        }
    })
}

/// The whole app on temp storage, with a user, a pushed blob and a tagged manifest, answers
/// every generated request without a panic or a 5xx.
#[actix_web::test]
async fn fuzz_http_requests() {
    use actix_web::test::{self as t, TestRequest};
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = crate::config::Config {
        data_dir: dir.path().join("data"),
        ..crate::config::Config::default()
    };
    cfg.index.pbkdf2_rounds = 10_000;
    let state = actix_web::web::Data::new(crate::open_state(cfg).await.expect("state"));
    let ix = state.index.clone().expect("index");
    ix.run(|ix| ix.create_user("alice", "alice-pw", "alice@example.com", true, false))
        .await
        .expect("user");
    let app = t::init_service(actix_web::App::new().configure(|c| crate::http::configure(c, state.clone()))).await;
    let alice = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:alice-pw")
    );

    // Something to find: a blob and a manifest tagged `latest` in alice/app.
    let blob = b"some layer bytes, 0123456789".to_vec();
    let digest = Digest::sha256_of(&blob);
    let push = TestRequest::post()
        .uri(&format!("/v2/alice/app/blobs/uploads/?digest={digest}"))
        .insert_header(("Authorization", alice.clone()))
        .set_payload(blob.clone())
        .to_request();
    assert_eq!(t::call_service(&app, push).await.status(), 201);
    let config_type = "application/vnd.oci.image.config.v1+json";
    let m = json!({"schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": digest.to_string(), "size": blob.len()},
        "layers": []});
    let put = TestRequest::put()
        .uri("/v2/alice/app/manifests/latest")
        .insert_header(("Authorization", alice.clone()))
        .insert_header(("Content-Type", manifest::OCI_MANIFEST))
        .set_payload(serde_json::to_vec(&m).expect("json"))
        .to_request();
    assert_eq!(t::call_service(&app, put).await.status(), 201);

    // Requests are drawn from the strategy (no shrinking: each failure prints its request).
    let mut runner = TestRunner::new(config());
    let strategy = fuzz_request(digest);
    let mut failures = Vec::new();
    for _ in 0..config().cases {
        let r = strategy.new_tree(&mut runner).expect("a request").current();
        let method = actix_web::http::Method::from_bytes(r.method.as_bytes()).expect("method");
        let mut req = TestRequest::default()
            .method(method)
            .uri(&r.uri)
            .set_payload(r.body.clone());
        for (k, v) in &r.headers {
            req = req.insert_header((*k, v.as_str()));
        }
        let resp = t::call_service(&app, req.to_request()).await;
        let status = resp.status();
        let _ = t::read_body(resp).await;
        if status.is_server_error() {
            failures.push(format!("{status} for {r:?}"));
        }
    }
    assert!(failures.is_empty(), "server errors:\n{}", failures.join("\n"));
}
