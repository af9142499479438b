//! Private repositories are invisible to strangers everywhere; collaborators get in; search
//! filters by visibility; namespaces belong to their users.

use crate::common::*;

#[tokio::test]
async fn private_repositories_and_collaborators() {
    let s = Server::start("");
    for (u, p) in [("alice", "secret1"), ("bobby", "secret2"), ("carol", "secret3")] {
        s.register(u, p).await;
    }
    let (alice, bobby, carol) = (
        basic("alice", "secret1"),
        basic("bobby", "secret2"),
        basic("carol", "secret3"),
    );
    let c = client();
    let url = &s.url;
    let images = chain(2);
    push_13(url, "alice", "secret1", "alice/secret", &images, "latest").await;
    push_13(url, "alice", "secret1", "alice/opensource", &chain(1), "latest").await;
    let props = format!("{url}/v1/repositories/alice/secret/properties");
    expect(
        c.put(&props)
            .header("Authorization", &bobby)
            .json(&serde_json::json!({"access": "private"}))
            .send()
            .await
            .unwrap(),
        403,
        "stranger sets properties",
    )
    .await;
    expect(
        c.put(&props)
            .header("Authorization", &alice)
            .json(&serde_json::json!({"access": "secret"}))
            .send()
            .await
            .unwrap(),
        400,
        "bad access value",
    )
    .await;
    expect(
        c.put(&props)
            .header("Authorization", &alice)
            .json(&serde_json::json!({"access": "private", "description": "top secret"}))
            .send()
            .await
            .unwrap(),
        200,
        "owner sets private",
    )
    .await;
    assert_eq!(
        body_json(c.get(&props).header("Authorization", &alice).send().await.unwrap()).await["access"],
        "private"
    );

    // Strangers and anonymous callers see nothing, on every route.
    for who in [Some(bobby.as_str()), None] {
        let get = |path: String| {
            let mut r = c.get(format!("{url}{path}"));
            if let Some(a) = who {
                r = r.header("Authorization", a);
            }
            r.send()
        };
        expect(
            get("/v1/repositories/alice/secret/images".into()).await.unwrap(),
            404,
            "images",
        )
        .await;
        expect(
            get("/v1/repositories/alice/secret/tags".into()).await.unwrap(),
            404,
            "tags",
        )
        .await;
        expect(
            get("/v1/repositories/alice/secret/tags/latest".into()).await.unwrap(),
            404,
            "tag",
        )
        .await;
        expect(
            get("/v1/repositories/alice/secret/properties".into()).await.unwrap(),
            404,
            "properties",
        )
        .await;
        for img in &images {
            for leaf in ["json", "layer", "ancestry"] {
                expect(get(format!("/v1/images/{}/{leaf}", img.id)).await.unwrap(), 404, leaf).await;
            }
        }
        let found = body_json(get("/v1/search?q=secret".into()).await.unwrap()).await;
        let names: Vec<&str> = found["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(!names.contains(&"alice/secret"), "search leaks: {names:?}");
        assert_eq!(
            pull_13(url, who.map(|_| ("bobby", "secret2")), "alice/secret", "latest")
                .await
                .err(),
            Some(404)
        );
    }
    // Strangers cannot reuse a private image as a parent of their own.
    let btok = token_auth(&write_token(url, ("bobby", "secret2"), "bobby/steal").await);
    let child = random_id();
    let r = c
        .put(format!("{url}/v1/images/{child}/json"))
        .header("Authorization", &btok)
        .body(image_json(&child, Some(&images[1].id)))
        .send()
        .await
        .unwrap();
    let body = expect(r, 400, "private parent").await;
    // The same answer as a parent that does not exist: the private image is not there for Bob.
    assert_eq!(body["error"], "Image depends on a non existing parent");
    let r = c
        .put(format!("{url}/v1/repositories/bobby/steal/tags/x"))
        .header("Authorization", &btok)
        .json(&images[1].id)
        .send()
        .await
        .unwrap();
    expect(r, 404, "tagging a private image").await;

    // The owner sees it in search, and pulls.
    let found = body_json(
        c.get(format!("{url}/v1/search?q=secret"))
            .header("Authorization", &alice)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(found["results"][0]["name"], "alice/secret");
    assert_eq!(found["results"][0]["description"], "top secret");
    assert!(pull_13(url, Some(("alice", "secret1")), "alice/secret", "latest")
        .await
        .is_ok());

    // A collaborator reads and writes, but cannot delete or change visibility.
    let collab = format!("{url}/v1/repositories/alice/secret/collaborators");
    expect(
        c.put(format!("{collab}/nosuchuser"))
            .header("Authorization", &alice)
            .send()
            .await
            .unwrap(),
        404,
        "unknown user",
    )
    .await;
    expect(
        c.put(format!("{collab}/bobby"))
            .header("Authorization", &carol)
            .send()
            .await
            .unwrap(),
        403,
        "stranger adds collaborator",
    )
    .await;
    expect(
        c.put(format!("{collab}/bobby"))
            .header("Authorization", &alice)
            .send()
            .await
            .unwrap(),
        200,
        "add collaborator",
    )
    .await;
    assert_eq!(
        body_json(c.get(&collab).header("Authorization", &alice).send().await.unwrap()).await,
        serde_json::json!(["bobby"])
    );
    let pulled = pull_13(url, Some(("bobby", "secret2")), "alice/secret", "latest")
        .await
        .expect("collaborator pulls");
    assert_eq!(pulled[1].layer, images[1].layer);
    let more = chain(1);
    push_13(url, "bobby", "secret2", "alice/secret", &more, "v2").await;
    expect(
        c.put(&props)
            .header("Authorization", &bobby)
            .json(&serde_json::json!({"access": "public"}))
            .send()
            .await
            .unwrap(),
        403,
        "collaborator changes visibility",
    )
    .await;
    expect(
        c.delete(format!("{url}/v1/repositories/alice/secret/"))
            .header("Authorization", &bobby)
            .send()
            .await
            .unwrap(),
        403,
        "collaborator deletes",
    )
    .await;
    let found = body_json(
        c.get(format!("{url}/v1/search?q=secret"))
            .header("Authorization", &bobby)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(found["num_results"], 1);
    // Carol is still a stranger.
    assert_eq!(
        pull_13(url, Some(("carol", "secret3")), "alice/secret", "latest")
            .await
            .err(),
        Some(404)
    );
    expect(
        c.delete(format!("{collab}/bobby"))
            .header("Authorization", &alice)
            .send()
            .await
            .unwrap(),
        200,
        "remove collaborator",
    )
    .await;
    assert_eq!(
        pull_13(url, Some(("bobby", "secret2")), "alice/secret", "latest")
            .await
            .err(),
        Some(404)
    );
    expect(
        c.delete(format!("{collab}/bobby"))
            .header("Authorization", &alice)
            .send()
            .await
            .unwrap(),
        404,
        "not a collaborator",
    )
    .await;

    // Making it public again opens it to all.
    expect(
        c.put(&props)
            .header("Authorization", &alice)
            .json(&serde_json::json!({"access": "public"}))
            .send()
            .await
            .unwrap(),
        200,
        "public",
    )
    .await;
    assert!(pull_13(url, None, "alice/secret", "latest").await.is_ok());
}

#[tokio::test]
async fn namespaces_and_search_pagination() {
    let s = Server::start("");
    s.register("alice", "secret1").await;
    s.register("bobby", "secret2").await;
    let c = client();
    let url = &s.url;
    let r = c
        .put(format!("{url}/v1/repositories/alice/app/"))
        .header("Authorization", basic("bobby", "secret2"))
        .json(&serde_json::json!([]))
        .send()
        .await
        .unwrap();
    expect(r, 403, "push into another user's namespace").await;
    let r = c
        .put(format!("{url}/v1/repositories/alice/app/"))
        .json(&serde_json::json!([]))
        .send()
        .await
        .unwrap();
    expect(r, 401, "anonymous push").await;
    let r = c
        .put(format!("{url}/v1/repositories/alice/app/"))
        .header("Authorization", basic("alice", "wrong"))
        .json(&serde_json::json!([]))
        .send()
        .await
        .unwrap();
    expect(r, 401, "bad password").await;
    for i in 0..7 {
        let r = c
            .put(format!("{url}/v1/repositories/alice/tool{i}/"))
            .header("Authorization", basic("alice", "secret1"))
            .json(&serde_json::json!([]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let page = |n: u32, p: u32| c.get(format!("{url}/v1/search?q=tool&n={n}&page={p}")).send();
    let first = body_json(page(3, 1).await.unwrap()).await;
    assert_eq!(first["num_results"], 7);
    assert_eq!(first["num_pages"], 3);
    assert_eq!(first["page_size"], 3);
    assert_eq!(first["results"].as_array().unwrap().len(), 3);
    let last = body_json(page(3, 3).await.unwrap()).await;
    assert_eq!(last["results"].as_array().unwrap().len(), 1);
    assert_eq!(last["results"][0]["name"], "alice/tool6");
    let none = body_json(c.get(format!("{url}/v1/search?q=zzz")).send().await.unwrap()).await;
    assert_eq!(none["num_results"], 0);
}
