//! The Docker 1.x push and pull sequences, end to end.

use crate::common::*;

#[tokio::test]
async fn docker_13_push_then_pull_by_other_user_and_anonymously() {
    docker_13_push_then_pull_by_other_user_and_anonymously_with("").await
}

/// On the storage `extra` configures (`s3` runs it on S3).
pub(crate) async fn docker_13_push_then_pull_by_other_user_and_anonymously_with(extra: &str) {
    let s = Server::start(extra);
    s.register("alice", "secret1").await;
    s.register("bobby", "secret2").await;
    let images = chain(3);
    push_13(&s.url, "alice", "secret1", "alice/app", &images, "latest").await;

    for login in [Some(("bobby", "secret2")), None] {
        let pulled = pull_13(&s.url, login, "alice/app", "latest").await.expect("pull");
        assert_eq!(pulled.len(), 3);
        for (p, img) in pulled.iter().zip(&images) {
            assert_eq!(p.id, img.id);
            assert_eq!(p.json, img.json, "json byte-identical");
            assert_eq!(p.layer, img.layer, "layer byte-identical");
            assert_eq!(p.size_header, Some(img.layer.len() as u64));
        }
    }

    let c = client();
    // The images list carries every declared id; tags and the single-tag read agree.
    let r = c
        .get(format!("{}/v1/repositories/alice/app/images", s.url))
        .send()
        .await
        .unwrap();
    let list = body_json(r).await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, images.iter().map(|i| i.id.as_str()).collect::<Vec<_>>());
    let top = &images[2];
    let r = c
        .get(format!("{}/v1/repositories/alice/app/tags/latest", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(body_json(r).await, serde_json::json!(top.id));
    let r = c
        .get(format!("{}/v1/repositories/alice/app/tags/latest/json", s.url))
        .send()
        .await
        .unwrap();
    let meta = body_json(r).await;
    assert_eq!(meta["docker_version"], "1.3.2");
    assert_eq!(meta["kernel"], "3.16.0");

    // json carries the payload checksum computed while streaming.
    let r = c
        .get(format!("{}/v1/images/{}/json", s.url, top.id))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["x-docker-checksum-payload"].to_str().unwrap(),
        top.payload_checksum()
    );

    // Range as Docker sends it on resume: the end is the total size (one past the last byte).
    let total = top.layer.len();
    let r = c
        .get(format!("{}/v1/images/{}/layer", s.url, top.id))
        .header("Range", format!("bytes=800-{total}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"].to_str().unwrap(),
        format!("bytes 800-{}/{total}", total - 1)
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &top.layer[800..]);
    let r = c
        .get(format!("{}/v1/images/{}/layer", s.url, top.id))
        .header("Range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &top.layer[10..20]);
    // Fully received: 416, which the client treats as EOF.
    let r = c
        .get(format!("{}/v1/images/{}/layer", s.url, top.id))
        .header("Range", format!("bytes={total}-{total}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
}

#[tokio::test]
async fn docker_19_variant_with_v2_probe_and_concurrent_lookups() {
    let s = Server::start("[v2]\nenabled = false\n");
    s.register("carol", "secret3").await;
    let c = reqwest::Client::builder().user_agent(UA_19).build().unwrap();
    // Docker 1.9 probes /v2/ first; without the registry/2.0 header it falls back to v1.
    let r = c.get(format!("{}/v2/", s.url)).send().await.unwrap();
    assert!(r.headers().get("docker-distribution-api-version").is_none());
    assert_ne!(r.status(), 200);

    let images = chain(3);
    let index: Vec<_> = images
        .iter()
        .enumerate()
        .map(|(i, img)| {
            if i == 2 {
                serde_json::json!({"id": img.id, "Tag": "v1"})
            } else {
                serde_json::json!({"id": img.id})
            }
        })
        .collect();
    let r = c
        .put(format!("{}/v1/repositories/carol/tool/", s.url))
        .header("Authorization", basic("carol", "secret3"))
        .header("X-Docker-Token", "true")
        .json(&index)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let tauth = token_auth(r.headers()["x-docker-token"].to_str().unwrap());
    // Up to 5 concurrent existence checks.
    let lookups = images.iter().map(|img| {
        c.get(format!("{}/v1/images/{}/json", s.url, img.id))
            .header("Authorization", &tauth)
            .send()
    });
    for r in futures::future::join_all(lookups).await {
        assert_eq!(r.unwrap().status(), 404);
    }
    for img in &images {
        push_image(&c, &s.url, &tauth, img).await;
    }
    let r = c
        .put(format!("{}/v1/repositories/carol/tool/tags/v1", s.url))
        .header("Authorization", &tauth)
        .json(&images[2].id)
        .send()
        .await
        .unwrap();
    expect(r, 200, "tag").await;
    let r = c
        .put(format!("{}/v1/repositories/carol/tool/images", s.url))
        .header("Authorization", basic("carol", "secret3"))
        .header("X-Docker-Token", "true")
        .json(&serde_json::json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // 1.9 pull reads one tag with GET .../tags/{tag}.
    let r = c
        .get(format!("{}/v1/repositories/carol/tool/images", s.url))
        .header("X-Docker-Token", "true")
        .send()
        .await
        .unwrap();
    let tauth = token_auth(r.headers()["x-docker-token"].to_str().unwrap());
    let r = c
        .get(format!("{}/v1/repositories/carol/tool/tags/v1", s.url))
        .header("Authorization", &tauth)
        .send()
        .await
        .unwrap();
    assert_eq!(body_json(r).await, serde_json::json!(images[2].id));
    let r = c
        .get(format!("{}/v1/repositories/carol/tool/tags/nope", s.url))
        .header("Authorization", &tauth)
        .send()
        .await
        .unwrap();
    expect(r, 404, "unknown tag").await;
    for img in &images {
        let r = c
            .get(format!("{}/v1/images/{}/layer", s.url, img.id))
            .header("Authorization", &tauth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.bytes().await.unwrap().as_ref(), img.layer.as_slice());
    }
}

#[tokio::test]
async fn repush_is_skipped_and_interrupted_upload_retries_from_put_json() {
    repush_is_skipped_and_interrupted_upload_retries_from_put_json_with("").await
}

/// On the storage `extra` configures (`s3` runs it on S3).
pub(crate) async fn repush_is_skipped_and_interrupted_upload_retries_from_put_json_with(extra: &str) {
    let s = Server::start(extra);
    s.register("dave1", "secret4").await;
    let images = chain(2);
    let token = push_13(&s.url, "dave1", "secret4", "dave1/app", &images, "latest").await;
    // Second push of the same images: lookups answer 200, so Docker skips them.
    push_13(&s.url, "dave1", "secret4", "dave1/app", &images, "latest").await;
    let c = client();
    let tauth = token_auth(&token);
    let r = c
        .put(format!("{}/v1/images/{}/json", s.url, images[0].id))
        .header("Authorization", &tauth)
        .body(images[0].json.clone())
        .send()
        .await
        .unwrap();
    let body = expect(r, 409, "re-PUT json").await;
    assert_eq!(body["error"], "Image already exists");

    // Interrupted push: json and a layer, no checksum. Not served; retry from PUT json works.
    let img = &chain(1)[0];
    let put_json = || {
        c.put(format!("{}/v1/images/{}/json", s.url, img.id))
            .header("Authorization", &tauth)
            .body(img.json.clone())
            .send()
    };
    expect(put_json().await.unwrap(), 200, "json").await;
    let r = c
        .put(format!("{}/v1/images/{}/layer", s.url, img.id))
        .header("Authorization", &tauth)
        .body(chunked(img.layer[..100].to_vec()))
        .send()
        .await
        .unwrap();
    expect(r, 200, "partial layer").await;
    let r = c
        .get(format!("{}/v1/images/{}/json", s.url, img.id))
        .header("Authorization", &tauth)
        .send()
        .await
        .unwrap();
    let body = expect(r, 400, "json of an image being uploaded").await;
    assert_eq!(body["error"], "Image is being uploaded, retry later");
    let r = c
        .get(format!("{}/v1/images/{}/layer", s.url, img.id))
        .header("Authorization", &tauth)
        .send()
        .await
        .unwrap();
    expect(r, 400, "layer of an image being uploaded").await;
    push_image(&c, &s.url, &tauth, img).await;
    let r = c
        .get(format!("{}/v1/images/{}/layer", s.url, img.id))
        .header("Authorization", &tauth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), img.layer.as_slice());
}

#[tokio::test]
async fn wrong_checksum_is_refused_and_the_image_never_served() {
    wrong_checksum_is_refused_and_the_image_never_served_with("").await
}

/// On the storage `extra` configures (`s3` runs it on S3).
pub(crate) async fn wrong_checksum_is_refused_and_the_image_never_served_with(extra: &str) {
    let s = Server::start(extra);
    s.register("erin1", "secret5").await;
    let c = client();
    let tauth = token_auth(&write_token(&s.url, ("erin1", "secret5"), "erin1/app").await);
    let img = &chain(1)[0];
    let url = |leaf: &str| format!("{}/v1/images/{}/{leaf}", s.url, img.id);
    expect(
        c.put(url("json"))
            .header("Authorization", &tauth)
            .body(img.json.clone())
            .send()
            .await
            .unwrap(),
        200,
        "json",
    )
    .await;
    expect(
        c.put(url("layer"))
            .header("Authorization", &tauth)
            .body(chunked(img.layer.clone()))
            .send()
            .await
            .unwrap(),
        200,
        "layer",
    )
    .await;
    // No payload header: 412; empty: 400; wrong: 400.
    expect(
        c.put(url("checksum"))
            .header("Authorization", &tauth)
            .send()
            .await
            .unwrap(),
        412,
        "no checksum",
    )
    .await;
    expect(
        c.put(url("checksum"))
            .header("Authorization", &tauth)
            .header("X-Docker-Checksum-Payload", "")
            .send()
            .await
            .unwrap(),
        400,
        "empty",
    )
    .await;
    let wrong = format!("sha256:{}", "0".repeat(64));
    let body = expect(
        c.put(url("checksum"))
            .header("Authorization", &tauth)
            .header("X-Docker-Checksum-Payload", wrong)
            .send()
            .await
            .unwrap(),
        400,
        "wrong",
    )
    .await;
    assert_eq!(body["error"], "Checksum mismatch");
    for leaf in ["json", "layer", "ancestry"] {
        expect(
            c.get(url(leaf)).header("Authorization", &tauth).send().await.unwrap(),
            400,
            "never served",
        )
        .await;
    }
    let r = c
        .put(format!("{}/v1/repositories/erin1/app/tags/latest", s.url))
        .header("Authorization", &tauth)
        .json(&img.id)
        .send()
        .await
        .unwrap();
    expect(r, 400, "tagging an incomplete image").await;
    // The right checksum after the mismatch still needs the layer again.
    let r = c
        .put(url("checksum"))
        .header("Authorization", &tauth)
        .header("X-Docker-Checksum-Payload", img.payload_checksum())
        .send()
        .await
        .unwrap();
    expect(r, 400, "checksum after mismatch without re-upload").await;
    push_image(&c, &s.url, &tauth, img).await;
    let r = c.get(url("json")).header("Authorization", &tauth).send().await.unwrap();
    assert_eq!(
        r.headers()["x-docker-checksum-payload"].to_str().unwrap(),
        img.payload_checksum()
    );
    expect(
        c.put(url("checksum"))
            .header("Authorization", &tauth)
            .header("X-Docker-Checksum-Payload", img.payload_checksum())
            .send()
            .await
            .unwrap(),
        409,
        "checksum after completion",
    )
    .await;
}

#[tokio::test]
async fn library_repositories_answer_to_both_spellings_and_admins_only() {
    let tmp = tempfile::tempdir().unwrap();
    let (ok, _, err) = cli(
        tmp.path(),
        &["user", "add", "root_admin", "--email", "root@example.com", "--admin"],
        "rootpass\n",
    );
    assert!(ok, "{err}");
    let s = Server::start_in(tmp.path(), "");
    s.register("frank", "secret6").await;
    let images = chain(2);
    // Docker sends the bare name to index routes and library/ to tag routes.
    push_13(&s.url, "root_admin", "rootpass", "busybox", &images, "latest").await;
    let pulled = pull_13(&s.url, None, "busybox", "latest").await.expect("pull bare");
    assert_eq!(pulled.last().unwrap().layer, images[1].layer);
    let c = client();
    let a = body_json(
        c.get(format!("{}/v1/repositories/busybox/tags", s.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let b = body_json(
        c.get(format!("{}/v1/repositories/library/busybox/tags", s.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a, b);
    assert_eq!(a["latest"], images[1].id.as_str());
    let r = c
        .put(format!("{}/v1/repositories/busybox/", s.url))
        .header("Authorization", basic("frank", "secret6"))
        .header("X-Docker-Token", "true")
        .json(&serde_json::json!([]))
        .send()
        .await
        .unwrap();
    expect(r, 403, "non-admin push to library").await;
}

#[tokio::test]
async fn login_flow_register_login_and_update() {
    let s = Server::start("");
    let c = client();
    let users = format!("{}/v1/users/", s.url);
    let new = serde_json::json!({"username": "gina1", "password": "secret7", "email": "gina@example.com", "auth": ""});
    let r = c.post(&users).json(&new).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.text().await.unwrap(), "\"User Created\"");
    // docker login on an existing account: exact body, then GET with Basic.
    let r = c.post(&users).json(&new).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.text().await.unwrap(), "\"Username or email already exists\"");
    let same_email = serde_json::json!({"username": "other1", "password": "secret7", "email": "GINA@example.com"});
    assert_eq!(
        c.post(&users)
            .json(&same_email)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "\"Username or email already exists\""
    );
    expect(
        c.get(&users)
            .header("Authorization", basic("gina1", "secret7"))
            .send()
            .await
            .unwrap(),
        200,
        "login",
    )
    .await;
    expect(
        c.get(&users)
            .header("Authorization", basic("gina1", "wrong"))
            .send()
            .await
            .unwrap(),
        401,
        "bad password",
    )
    .await;
    expect(
        c.get(&users)
            .header("Authorization", basic("nobody", "wrong"))
            .send()
            .await
            .unwrap(),
        401,
        "unknown user",
    )
    .await;
    expect(c.get(&users).send().await.unwrap(), 401, "no credentials").await;
    for bad in [
        serde_json::json!({"username": "a", "password": "secret7", "email": "a@b.io"}),
        serde_json::json!({"username": "Upper", "password": "secret7", "email": "a@b.io"}),
        serde_json::json!({"username": "okname", "password": "1234", "email": "a@b.io"}),
        serde_json::json!({"username": "okname", "password": "secret7", "email": "not-an-email"}),
    ] {
        expect(
            c.post(&users).json(&bad).send().await.unwrap(),
            400,
            "invalid registration",
        )
        .await;
    }
    expect(c.post(&users).body("{nope").send().await.unwrap(), 400, "bad json").await;
    // Password change: the old password stops working at once (no stale cache).
    let r = c
        .put(format!("{}/v1/users/gina1/", s.url))
        .header("Authorization", basic("gina1", "secret7"))
        .json(&serde_json::json!({"password": "newsecret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    expect(
        c.get(&users)
            .header("Authorization", basic("gina1", "secret7"))
            .send()
            .await
            .unwrap(),
        401,
        "old password",
    )
    .await;
    expect(
        c.get(&users)
            .header("Authorization", basic("gina1", "newsecret"))
            .send()
            .await
            .unwrap(),
        200,
        "new password",
    )
    .await;
    s.register("henry", "secret8").await;
    let r = c
        .put(format!("{}/v1/users/gina1/", s.url))
        .header("Authorization", basic("henry", "secret8"))
        .json(&serde_json::json!({"password": "hacked"}))
        .send()
        .await
        .unwrap();
    expect(r, 403, "changing someone else's account").await;
}

#[tokio::test]
async fn registration_modes() {
    let closed = Server::start("[index]\nregistration = \"closed\"\n");
    let c = client();
    let new = serde_json::json!({"username": "ivan1", "password": "secret9", "email": "ivan@example.com"});
    expect(
        c.post(format!("{}/v1/users/", closed.url))
            .json(&new)
            .send()
            .await
            .unwrap(),
        401,
        "closed",
    )
    .await;

    let act = Server::start("[index]\nregistration = \"activation\"\n");
    let r = c
        .post(format!("{}/v1/users/", act.url))
        .json(&new)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body = expect(
        c.get(format!("{}/v1/users/", act.url))
            .header("Authorization", basic("ivan1", "secret9"))
            .send()
            .await
            .unwrap(),
        403,
        "inactive",
    )
    .await;
    assert!(body["error"].as_str().unwrap().contains("not Active"));
    let r = c
        .put(format!("{}/v1/repositories/ivan1/app/", act.url))
        .header("Authorization", basic("ivan1", "secret9"))
        .json(&serde_json::json!([]))
        .send()
        .await
        .unwrap();
    expect(r, 403, "inactive account pushing").await;
}

/// Over https with a standalone registry, Docker 1.x sends Basic credentials on every call
/// instead of tokens (§4.0): the whole push and pull work with Basic alone.
#[tokio::test]
async fn basic_auth_on_every_registry_call() {
    let s = Server::start("");
    s.register("hanna", "secret9").await;
    let c = client();
    let auth = basic("hanna", "secret9");
    write_token(&s.url, ("hanna", "secret9"), "hanna/web").await;
    let images = chain(2);
    for img in &images {
        push_image(&c, &s.url, &auth, img).await;
    }
    let r = c
        .put(format!("{}/v1/repositories/hanna/web/tags/latest", s.url))
        .header("Authorization", &auth)
        .json(&images[1].id)
        .send()
        .await
        .unwrap();
    expect(r, 200, "tag with Basic").await;
    let pulled = pull_13(&s.url, Some(("hanna", "secret9")), "hanna/web", "latest")
        .await
        .expect("pull");
    assert_eq!(pulled[1].layer, images[1].layer);
    let r = c
        .get(format!("{}/v1/images/{}/layer", s.url, images[0].id))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), images[0].layer.as_slice());
    let r = c
        .get(format!("{}/v1/images/{}/json", s.url, images[0].id))
        .header("Authorization", basic("hanna", "wrong"))
        .send()
        .await
        .unwrap();
    expect(r, 401, "wrong password on a registry call").await;
}
