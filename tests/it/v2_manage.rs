//! Content management (end-9, end-10) with Skiff's delete right, and private repositories,
//! collaborators and search for content pushed over v2.

use super::*;

#[tokio::test]
async fn delete_tags_manifests_and_blobs() {
    let s = Server::start("");
    let (alice, bobby, carol) = users(&s).await;
    let api = Api::new(&s);
    let repo = "alice/app";
    let img = api.image(&alice, repo, "latest", json!({})).await;
    add_collaborator(&api, &alice, repo, "carol").await;
    for t in ["stable", "keep"] {
        api.manifest(&alice, repo, t, OCI_MANIFEST, img.body.clone()).await;
    }
    let other = api.image(&alice, repo, "other", json!({})).await;
    let layer = api.blob(&alice, repo, b"a layer to delete").await;
    let by_digest = format!("/v2/{repo}/manifests/{}", img.digest);

    // Delete needs the delete right: anonymous 401 (with the delete scope), others 403.
    let g = api.delete(&format!("/v2/{repo}/manifests/latest"), None).await;
    err(&g, 401, "UNAUTHORIZED", "anonymous delete");
    assert_eq!(
        g.h("www-authenticate"),
        Some(challenge(&s.url, Some(&format!("repository:{repo}:delete")), None))
    );
    for (who, what) in [(&bobby, "stranger"), (&carol, "collaborator")] {
        for path in [
            format!("/v2/{repo}/manifests/latest"),
            by_digest.clone(),
            format!("/v2/{repo}/blobs/{layer}"),
        ] {
            err(
                &api.delete(&path, Some(who)).await,
                403,
                "DENIED",
                &format!("{what} {path}"),
            );
        }
    }
    // A token that grants pull and push but not delete does not delete either.
    let (tok, c) = api
        .token(Some(&carol), &[&format!("repository:{repo}:pull,push,delete")])
        .await;
    assert_eq!(
        access(&c),
        vec![(repo.to_string(), vec!["pull".to_string(), "push".to_string()])]
    );
    let g = api.delete(&by_digest, Some(&bearer(&tok))).await;
    err(&g, 401, "UNAUTHORIZED", "token without delete");
    assert_eq!(
        g.h("www-authenticate"),
        Some(challenge(
            &s.url,
            Some(&format!("repository:{repo}:delete")),
            Some("insufficient_scope")
        ))
    );
    ok(&api.get(&by_digest, None).await, 200, "nothing deleted");

    // Tag: 202, then the tag is 404 but the manifest stays pullable by digest and other tags.
    let g = api.delete(&format!("/v2/{repo}/manifests/latest"), Some(&alice)).await;
    ok(&g, 202, "DELETE tag");
    err(
        &api.get(&format!("/v2/{repo}/manifests/latest"), None).await,
        404,
        "MANIFEST_UNKNOWN",
        "deleted tag",
    );
    ok(&api.get(&by_digest, None).await, 200, "digest after tag delete");
    ok(
        &api.get(&format!("/v2/{repo}/manifests/stable"), None).await,
        200,
        "other tag",
    );
    err(
        &api.delete(&format!("/v2/{repo}/manifests/latest"), Some(&alice)).await,
        404,
        "MANIFEST_UNKNOWN",
        "tag deleted twice",
    );

    // Manifest by digest (the owner may, with a token too): 202, then it and its tags are 404.
    let (tok, c) = api.token(Some(&alice), &[&format!("repository:{repo}:delete")]).await;
    assert_eq!(access(&c), vec![(repo.to_string(), vec!["delete".to_string()])]);
    let g = api.delete(&by_digest, Some(&bearer(&tok))).await;
    ok(&g, 202, "DELETE manifest");
    err(
        &api.get(&by_digest, None).await,
        404,
        "MANIFEST_UNKNOWN",
        "deleted manifest",
    );
    err(
        &api.head(&by_digest, None).await,
        404,
        "MANIFEST_UNKNOWN",
        "HEAD deleted manifest",
    );
    for t in ["stable", "keep"] {
        err(
            &api.get(&format!("/v2/{repo}/manifests/{t}"), None).await,
            404,
            "MANIFEST_UNKNOWN",
            &format!("tag {t} of a deleted manifest"),
        );
    }
    let tags = api.get(&format!("/v2/{repo}/tags/list"), None).await.json();
    assert_eq!(tags["tags"], json!(["other"]));
    ok(
        &api.get(&format!("/v2/{repo}/manifests/{}", other.digest), None).await,
        200,
        "other manifest untouched",
    );
    err(
        &api.delete(&by_digest, Some(&alice)).await,
        404,
        "MANIFEST_UNKNOWN",
        "deleted twice",
    );

    // Blob: 202, then 404; unknown blobs 404.
    let blob = format!("/v2/{repo}/blobs/{layer}");
    ok(&api.delete(&blob, Some(&alice)).await, 202, "DELETE blob");
    err(&api.get(&blob, None).await, 404, "BLOB_UNKNOWN", "deleted blob");
    err(&api.head(&blob, None).await, 404, "BLOB_UNKNOWN", "HEAD deleted blob");
    err(
        &api.delete(&blob, Some(&alice)).await,
        404,
        "BLOB_UNKNOWN",
        "blob deleted twice",
    );
    // Deleted content can be pushed again (the conformance suite re-uploads between workflows).
    assert_eq!(api.blob(&alice, repo, b"a layer to delete").await, layer);
    ok(&api.get(&blob, None).await, 200, "blob pushed again");
    let loc = api.session(repo, &alice).await;
    ok(
        &api.close(&loc, &alice, &layer, None, b"a layer to delete").await,
        201,
        "again, POST+PUT",
    );
    api.manifest(&alice, repo, "", OCI_MANIFEST, img.body.clone()).await;
    ok(&api.get(&by_digest, None).await, 200, "manifest pushed again");
    err(
        &api.get(&format!("/v2/{repo}/manifests/stable"), None).await,
        404,
        "MANIFEST_UNKNOWN",
        "its old tags stay deleted",
    );
    err(
        &api.delete(&format!("/v2/{repo}/blobs/{}", sha256(b"never")), Some(&alice))
            .await,
        404,
        "BLOB_UNKNOWN",
        "unknown blob",
    );
    err(
        &api.delete(&format!("/v2/{repo}/manifests/{}", sha256(b"never")), Some(&alice))
            .await,
        404,
        "MANIFEST_UNKNOWN",
        "unknown manifest",
    );
    for never in ["never", ".INVALID_MANIFEST_NAME"] {
        err(
            &api.delete(&format!("/v2/{repo}/manifests/{never}"), Some(&alice)).await,
            404,
            "MANIFEST_UNKNOWN",
            never,
        );
    }
    // A malformed digest is a bad request here (end-9/end-10 allow 400; Distribution answers so).
    err(
        &api.delete(&format!("/v2/{repo}/manifests/sha256:totallywrong"), Some(&alice))
            .await,
        400,
        "DIGEST_INVALID",
        "malformed manifest digest",
    );
    err(
        &api.delete(&format!("/v2/{repo}/blobs/sha256:nothex"), Some(&alice))
            .await,
        400,
        "DIGEST_INVALID",
        "malformed blob digest",
    );
    let g = api
        .delete(&format!("/v2/alice/none/manifests/{}", sha256(b"x")), Some(&alice))
        .await;
    assert_eq!(g.status, 404, "delete in a repository that does not exist");
}

/// Names found by `GET /v1/search?q=` for `who`.
async fn search(api: &Api, q: &str, who: Option<&str>) -> Vec<String> {
    let mut rb = api.c.get(format!("{}/v1/search", api.url)).query(&[("q", q)]);
    if let Some(a) = who {
        rb = rb.header("Authorization", a);
    }
    let v = body_json(rb.send().await.unwrap()).await;
    v["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn private_repositories_collaborators_and_search() {
    let s = Server::start("");
    let (alice, bobby, carol) = users(&s).await;
    let api = Api::new(&s);
    let repo = "alice/vault";
    let img = api.image(&alice, repo, "latest", json!({})).await;
    let layer = api.blob(&alice, repo, b"secret layer").await;

    // Pushed over v2, the repository is in the index: searchable, owned by its pusher.
    assert_eq!(search(&api, "vault", None).await, [repo]);
    let props = api
        .c
        .get(format!("{}/v1/repositories/{repo}/properties", s.url))
        .send()
        .await
        .unwrap();
    let props = body_json(props).await;
    assert_eq!(props["owner"], "alice");
    assert_eq!(props["access"], "public");

    set_private(&api, &alice, repo, true).await;
    add_collaborator(&api, &alice, repo, "carol").await;
    assert!(
        search(&api, "vault", None).await.is_empty(),
        "hidden from anonymous search"
    );
    assert!(
        search(&api, "vault", Some(&bobby)).await.is_empty(),
        "hidden from strangers"
    );
    assert_eq!(search(&api, "vault", Some(&alice)).await, [repo]);
    assert_eq!(search(&api, "vault", Some(&carol)).await, [repo]);

    // Strangers and anonymous callers: the repository does not exist, on every endpoint.
    let paths = [
        format!("/v2/{repo}/manifests/latest"),
        format!("/v2/{repo}/manifests/{}", img.digest),
        format!("/v2/{repo}/blobs/{layer}"),
        format!("/v2/{repo}/tags/list"),
        format!("/v2/{repo}/referrers/{}", img.digest),
    ];
    for who in [None, Some(bobby.as_str())] {
        for p in &paths {
            err(&api.get(p, who).await, 404, "NAME_UNKNOWN", &format!("{who:?} GET {p}"));
            err(
                &api.head(p, who).await,
                404,
                "NAME_UNKNOWN",
                &format!("{who:?} HEAD {p}"),
            );
        }
        let cat = api.get("/v2/_catalog", who).await.json();
        assert_eq!(cat["repositories"], json!([]), "catalog for {who:?}");
    }
    // A stranger cannot push into it, nor learn that it exists by trying: the answer is the
    // one for a repository of alice's that does not exist.
    let absent = "alice/never-created";
    for r in [repo, absent] {
        let g = api.start_upload(r, "", Some(&bobby)).await;
        err(&g, 403, "DENIED", &format!("stranger pushes to {r}"));
        let g = api.put_manifest(Some(&bobby), r, "mine", OCI_MANIFEST, &img.body).await;
        err(&g, 403, "DENIED", &format!("stranger tags in {r}"));
    }
    for p in [&paths[0], &paths[2]] {
        err(&api.delete(p, Some(&bobby)).await, 403, "DENIED", "stranger deletes");
    }
    err(
        &api.delete(&paths[0], Some(&carol)).await,
        403,
        "DENIED",
        "collaborator deletes",
    );

    // The owner and a collaborator pull; the collaborator pushes.
    for who in [&alice, &carol] {
        let g = api.get(&paths[0], Some(who)).await;
        ok(&g, 200, "pull");
        assert_eq!(g.body, img.body);
        assert_eq!(api.get(&paths[2], Some(who)).await.body, b"secret layer");
        ok(&api.get(&paths[3], Some(who)).await, 200, "tags");
    }
    let pushed = api.image(&carol, repo, "carol", json!({})).await;
    let g = api.get(&format!("/v2/{repo}/manifests/carol"), Some(&alice)).await;
    assert_eq!(g.h("docker-content-digest"), Some(pushed.digest));
    let cat = api.get("/v2/_catalog", Some(&carol)).await.json();
    assert_eq!(cat["repositories"], json!([repo]));
    // Pushing did not change the owner or the visibility.
    let props = api
        .c
        .get(format!("{}/v1/repositories/{repo}/properties", s.url))
        .header("Authorization", &alice)
        .send()
        .await
        .unwrap();
    let props = body_json(props).await;
    assert_eq!(
        (props["owner"].as_str(), props["access"].as_str()),
        (Some("alice"), Some("private"))
    );
}

/// A repository delete removes exactly the repository it names: `alice/app`'s delete leaves
/// `alice/app/sub` whole, and deleting the absent `alice/app2`'s tags touches `alice/app2/sub`
/// not at all (storage keys of one repository are never a prefix of another's).
#[tokio::test]
async fn repository_deletes_touch_only_the_repository_named() {
    let s = Server::start("");
    let (alice, _, _) = users(&s).await;
    let api = Api::new(&s);
    api.image(&alice, "alice/app", "v1", json!({})).await;
    let child = api.image(&alice, "alice/app/sub", "v1", json!({})).await;
    let lone = api.image(&alice, "alice/app2/sub", "v1", json!({})).await;
    let c = client();
    let del = |path: &str| {
        c.delete(format!("{}{path}", s.url))
            .header("Authorization", alice.as_str())
            .send()
    };
    assert_eq!(del("/v1/repositories/alice/app2/tags").await.unwrap().status(), 404);
    assert_eq!(del("/v1/repositories/alice/app/").await.unwrap().status(), 200);
    ok(
        &api.get("/v2/alice/app/manifests/v1", None).await,
        404,
        "the deleted repository",
    );
    for (repo, pushed) in [("alice/app/sub", &child), ("alice/app2/sub", &lone)] {
        let g = api.get(&format!("/v2/{repo}/manifests/v1"), None).await;
        ok(&g, 200, repo);
        assert_eq!(g.body, pushed.body, "{repo} intact");
    }
    let catalog = api.get("/v2/_catalog", None).await.json();
    assert_eq!(catalog["repositories"], json!(["alice/app/sub", "alice/app2/sub"]));
}
