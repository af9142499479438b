//! Every error path answers its status with a JSON `{"error": ...}` body and changes nothing.

use crate::common::*;
use reqwest::Client;

struct Fixture {
    s: Server,
    c: Client,
    write: String,
    read: String,
}

async fn setup(extra: &str) -> Fixture {
    let s = Server::start(extra);
    s.register("alice", "secret1").await;
    let c = client();
    let write = token_auth(&write_token(&s.url, ("alice", "secret1"), "alice/app").await);
    let r = c
        .get(format!("{}/v1/repositories/alice/app/images", s.url))
        .header("Authorization", basic("alice", "secret1"))
        .header("X-Docker-Token", "true")
        .send()
        .await
        .unwrap();
    let read = token_auth(r.headers()["x-docker-token"].to_str().unwrap());
    Fixture { s, c, write, read }
}

#[tokio::test]
async fn image_errors_change_nothing() {
    let f = setup("").await;
    let (c, url) = (&f.c, &f.s.url);
    let img = &chain(1)[0];
    let put_json = |id: &str, body: Vec<u8>| {
        c.put(format!("{url}/v1/images/{id}/json"))
            .header("Authorization", &f.write)
            .body(body)
            .send()
    };
    expect(put_json(&img.id, b"{not json".to_vec()).await.unwrap(), 400, "bad json").await;
    expect(
        put_json(&img.id, b"[1,2]".to_vec()).await.unwrap(),
        400,
        "not an object",
    )
    .await;
    expect(
        put_json(&img.id, br#"{"parent": null}"#.to_vec()).await.unwrap(),
        400,
        "missing id",
    )
    .await;
    let other = random_id();
    expect(
        put_json(&img.id, image_json(&other, None)).await.unwrap(),
        400,
        "id mismatch",
    )
    .await;
    let missing_parent = image_json(&img.id, Some(&random_id()));
    let body = expect(put_json(&img.id, missing_parent).await.unwrap(), 400, "missing parent").await;
    assert_eq!(body["error"], "Image depends on a non existing parent");
    for bad in ["ABCDEF", "1234", "..", "%2e%2e", &"g".repeat(64)] {
        expect(put_json(bad, img.json.clone()).await.unwrap(), 404, "bad id").await;
        expect(
            c.get(format!("{url}/v1/images/{bad}/json")).send().await.unwrap(),
            404,
            "bad id read",
        )
        .await;
    }
    // Nothing above stored anything.
    for leaf in ["json", "layer", "ancestry"] {
        expect(
            c.get(format!("{url}/v1/images/{}/{leaf}", img.id))
                .header("Authorization", &f.write)
                .send()
                .await
                .unwrap(),
            404,
            "unknown image",
        )
        .await;
    }
    expect(
        c.put(format!("{url}/v1/images/{}/layer", img.id))
            .header("Authorization", &f.write)
            .body(img.layer.clone())
            .send()
            .await
            .unwrap(),
        404,
        "layer of unknown image",
    )
    .await;
    expect(
        c.put(format!("{url}/v1/images/{}/checksum", img.id))
            .header("Authorization", &f.write)
            .header("X-Docker-Checksum-Payload", img.payload_checksum())
            .send()
            .await
            .unwrap(),
        404,
        "checksum of unknown image",
    )
    .await;
    // Checksum before the layer: a clear 400, not a crash.
    expect(put_json(&img.id, img.json.clone()).await.unwrap(), 200, "json").await;
    expect(
        c.put(format!("{url}/v1/images/{}/checksum", img.id))
            .header("Authorization", &f.write)
            .header("X-Docker-Checksum-Payload", img.payload_checksum())
            .send()
            .await
            .unwrap(),
        400,
        "checksum before layer",
    )
    .await;
    assert!(f.s.log().contains("PUT /v1/images"), "requests are logged");
}

#[tokio::test]
async fn token_errors() {
    let f = setup("[index]\ntoken_ttl_secs = 2\n").await;
    let (c, url) = (&f.c, &f.s.url);
    let img = &chain(1)[0];
    let put_json = |auth: String| {
        c.put(format!("{url}/v1/images/{}/json", img.id))
            .header("Authorization", auth)
            .body(img.json.clone())
            .send()
    };
    expect(
        put_json("Token signature=forged123,repository=\"alice/app\",access=write".into())
            .await
            .unwrap(),
        401,
        "forged token",
    )
    .await;
    let r = put_json(f.read.clone()).await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Token");
    expect(r, 401, "read token used to write").await;
    expect(put_json("Token".into()).await.unwrap(), 401, "no token at all").await;
    // The doubled form PYREG clients send works.
    expect(
        put_json(format!("Token {}", f.write)).await.unwrap(),
        200,
        "Token Token form",
    )
    .await;
    expect(
        c.put(format!("{url}/v1/images/{}/layer", img.id))
            .header("Authorization", &f.write)
            .body(img.layer.clone())
            .send()
            .await
            .unwrap(),
        200,
        "layer",
    )
    .await;
    expect(
        c.put(format!("{url}/v1/images/{}/checksum", img.id))
            .header("Authorization", &f.write)
            .header("X-Docker-Checksum-Payload", img.payload_checksum())
            .send()
            .await
            .unwrap(),
        200,
        "checksum",
    )
    .await;

    // A token for alice/app does not open alice/other (foreign token), and a read token never tags.
    let tag = |repo: &str, auth: &str| {
        c.put(format!("{url}/v1/repositories/{repo}/tags/latest"))
            .header("Authorization", auth)
            .json(&img.id)
            .send()
    };
    expect(tag("alice/other", &f.write).await.unwrap(), 401, "foreign token").await;
    expect(tag("alice/app", &f.read).await.unwrap(), 401, "read token tagging").await;
    expect(
        c.get(format!("{url}/v1/repositories/alice/other/tags"))
            .header("Authorization", &f.write)
            .send()
            .await
            .unwrap(),
        404,
        "foreign repo has nothing",
    )
    .await;
    expect(
        c.get(format!("{url}/v1/repositories/alice/app/tags/latest"))
            .header("Authorization", &f.read)
            .send()
            .await
            .unwrap(),
        404,
        "no tag was written",
    )
    .await;
    // Expired tokens are refused.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    expect(tag("alice/app", &f.write).await.unwrap(), 401, "expired token").await;
    expect(
        c.get(format!("{url}/v1/repositories/alice/app/tags"))
            .send()
            .await
            .unwrap(),
        200,
        "still readable anonymously",
    )
    .await;
}

#[tokio::test]
async fn name_and_tag_errors() {
    let f = setup("").await;
    let (c, url) = (&f.c, &f.s.url);
    let alice = basic("alice", "secret1");
    let long = format!("alice/{}", "a".repeat(300));
    for bad in ["alice/%2e%2e", "alice/..", "alice/%2E%2E/x", "alice/%2fetc"] {
        // Sent verbatim: reqwest would normalise dot segments away.
        let status = raw_status(&f.s.addr, "PUT", &format!("/v1/repositories/{bad}/"), &alice, "[]");
        assert_eq!(status, 400, "{bad}");
        let status = raw_status(&f.s.addr, "GET", &format!("/v1/repositories/{bad}/tags"), &alice, "");
        assert!(status == 400 || status == 404, "{bad}: {status}");
    }
    for bad in ["Alice/app", "alice/App", "alice/.hidden", "alice/app_", long.as_str()] {
        let r = c
            .put(format!("{url}/v1/repositories/{bad}/"))
            .header("Authorization", &alice)
            .json(&serde_json::json!([]))
            .send()
            .await
            .unwrap();
        expect(r, 400, bad).await;
        let r = c.get(format!("{url}/v1/repositories/{bad}/tags")).send().await.unwrap();
        let status = r.status().as_u16();
        assert!(status == 400 || status == 404, "{bad}: {status}");
    }
    let img = &chain(1)[0];
    push_image(c, url, &f.write, img).await;
    let tag = |t: &str, body: serde_json::Value| {
        c.put(format!("{url}/v1/repositories/alice/app/tags/{t}"))
            .header("Authorization", &f.write)
            .json(&body)
            .send()
    };
    for bad in [".hidden", "-x", "a..b", &"t".repeat(129)] {
        expect(tag(bad, serde_json::json!(img.id)).await.unwrap(), 400, bad).await;
    }
    expect(
        tag("ok", serde_json::json!({"id": img.id})).await.unwrap(),
        400,
        "tag body not a string",
    )
    .await;
    expect(
        tag("ok", serde_json::json!(random_id())).await.unwrap(),
        404,
        "tag to unknown image",
    )
    .await;
    let tags = body_json(
        c.get(format!("{url}/v1/repositories/alice/app/tags"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(tags, serde_json::json!({}), "no bad tag was stored");
    expect(tag("ok", serde_json::json!(img.id)).await.unwrap(), 200, "good tag").await;
    expect(
        c.delete(format!("{url}/v1/repositories/alice/app/tags/nope"))
            .header("Authorization", &alice)
            .send()
            .await
            .unwrap(),
        404,
        "delete unknown tag",
    )
    .await;
    expect(
        c.delete(format!("{url}/v1/repositories/alice/app/tags/ok"))
            .header("Authorization", &alice)
            .send()
            .await
            .unwrap(),
        200,
        "delete tag",
    )
    .await;
    expect(
        c.get(format!("{url}/v1/repositories/nobody/none/tags"))
            .send()
            .await
            .unwrap(),
        404,
        "unknown repository",
    )
    .await;
    expect(
        c.put(format!("{url}/v1/repositories/alice/app/"))
            .header("Authorization", &alice)
            .body("{\"not\": \"a list\"}")
            .send()
            .await
            .unwrap(),
        400,
        "index body not a list",
    )
    .await;
    expect(
        c.put(format!("{url}/v1/repositories/alice/app/"))
            .header("Authorization", &alice)
            .json(&serde_json::json!([{"id": "nothex"}]))
            .send()
            .await
            .unwrap(),
        400,
        "bad id in list",
    )
    .await;
}

#[tokio::test]
async fn repository_delete_flows() {
    let f = setup("").await;
    let (c, url) = (&f.c, &f.s.url);
    let alice = basic("alice", "secret1");
    let images = chain(2);
    push_13(url, "alice", "secret1", "alice/app", &images, "latest").await;
    f.s.register("mallory", "secret9").await;
    expect(
        c.delete(format!("{url}/v1/repositories/alice/app/"))
            .header("Authorization", basic("mallory", "secret9"))
            .send()
            .await
            .unwrap(),
        403,
        "stranger deletes",
    )
    .await;
    expect(
        c.delete(format!("{url}/v1/repositories/alice/app/"))
            .send()
            .await
            .unwrap(),
        401,
        "anonymous deletes",
    )
    .await;
    // Hub flow: 202 + delete token; the token deletes the repository (data and record).
    let r = c
        .delete(format!("{url}/v1/repositories/alice/app/"))
        .header("Authorization", &alice)
        .header("X-Docker-Token", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let token = r.headers()["x-docker-token"].to_str().unwrap().to_string();
    assert!(token.contains("access=delete"));
    expect(
        c.get(format!("{url}/v1/repositories/alice/app/tags"))
            .send()
            .await
            .unwrap(),
        200,
        "202 deletes nothing yet",
    )
    .await;
    expect(
        c.delete(format!("{url}/v1/repositories/alice/app/"))
            .header("Authorization", token_auth(&token))
            .send()
            .await
            .unwrap(),
        200,
        "registry delete",
    )
    .await;
    // Deleted is absent on every route, whichever flow deleted it: the index record went too.
    expect(
        c.get(format!("{url}/v1/repositories/alice/app/tags"))
            .send()
            .await
            .unwrap(),
        404,
        "gone after the token delete",
    )
    .await;
    expect(
        c.get(format!("{url}/v1/repositories/alice/app/images"))
            .header("Authorization", &alice)
            .send()
            .await
            .unwrap(),
        404,
        "no image list either",
    )
    .await;
    let found = body_json(c.get(format!("{url}/v1/search?q=alice/app")).send().await.unwrap()).await;
    assert_eq!(found["num_results"], 0, "not in search");
    expect(
        c.delete(format!("{url}/v1/repositories/alice/app/"))
            .header("Authorization", &alice)
            .send()
            .await
            .unwrap(),
        404,
        "already gone",
    )
    .await;
    // Images are not deleted (garbage collection's job), but they no longer belong to anything.
    expect(
        c.get(format!("{url}/v1/images/{}/json", images[0].id))
            .send()
            .await
            .unwrap(),
        404,
        "orphan hidden from anonymous",
    )
    .await;
    expect(
        c.get(format!("{url}/v1/images/{}/json", images[0].id))
            .header("Authorization", &alice)
            .send()
            .await
            .unwrap(),
        200,
        "uploader still sees it",
    )
    .await;
}
