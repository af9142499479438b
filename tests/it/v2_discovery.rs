//! Content discovery: end-8 (tags with `n`, `last` and `Link`), the catalog, and end-12 (the
//! referrers API with `artifactType` filtering).

use super::*;

/// `</path?...>; rel="next"` -> `/path?...`
fn next(g: &Got) -> Option<String> {
    let link = g.h("link")?;
    let (target, rel) = link.split_once(';').expect("Link has a rel");
    assert_eq!(rel.trim(), "rel=\"next\"", "{link}");
    Some(target.trim().trim_start_matches('<').trim_end_matches('>').to_string())
}

#[tokio::test]
async fn tags_list_order_and_pagination() {
    let s = Server::start("");
    let (alice, _, _) = users(&s).await;
    let api = Api::new(&s);
    let img = api.image(&alice, "alice/app", "", json!({})).await;
    let tags = ["v2", "latest", "1.0", "Z_last", "A", "a", "v10", "v1"];
    let g = go(api
        .req(
            Method::PUT,
            &format!("/v2/alice/app/manifests/{}", img.digest),
            Some(&alice),
        )
        .query(&tags.iter().map(|t| ("tag", *t)).collect::<Vec<_>>())
        .header("Content-Type", OCI_MANIFEST)
        .body(img.body.clone()))
    .await;
    ok(&g, 201, "tags");
    // ASCIIbetical (Go's sort.Strings).
    let sorted = ["1.0", "A", "Z_last", "a", "latest", "v1", "v10", "v2"];
    let list = |g: &Got| -> Vec<String> {
        let v = g.json();
        assert_eq!(v["name"], "alice/app");
        v["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    };

    let g = api.get("/v2/alice/app/tags/list", None).await;
    ok(&g, 200, "tags/list");
    assert_eq!(list(&g), sorted);
    assert_eq!(g.h("link"), None);
    assert!(g.h("content-type").unwrap().starts_with("application/json"));

    let h = api.head("/v2/alice/app/tags/list", None).await;
    ok(&h, 200, "HEAD tags/list");
    assert!(h.body.is_empty());
    assert_eq!(h.h("content-length"), Some(g.body.len().to_string()));

    let g = api.get("/v2/alice/app/tags/list?n=3", None).await;
    assert_eq!(list(&g), sorted[..3]);
    assert_eq!(
        g.h("link"),
        Some("</v2/alice/app/tags/list?n=3&last=Z_last>; rel=\"next\"".to_string())
    );
    // Following Link pages through everything exactly once.
    let mut all = list(&g);
    let mut page = g;
    while let Some(link) = next(&page) {
        page = api.get(&link, None).await;
        ok(&page, 200, &link);
        let got = list(&page);
        assert!(got.len() == 3 || next(&page).is_none(), "short page with a Link");
        all.extend(got);
    }
    assert_eq!(all, sorted);

    let g = api.get("/v2/alice/app/tags/list?n=0", None).await;
    ok(&g, 200, "n=0");
    assert!(list(&g).is_empty(), "n=0 is an empty list");
    assert_eq!(g.h("link"), None, "n=0 has no Link");
    let g = api.get("/v2/alice/app/tags/list?n=2&last=latest", None).await;
    assert_eq!(list(&g), ["v1", "v10"]);
    assert_eq!(next(&g).as_deref(), Some("/v2/alice/app/tags/list?n=2&last=v10"));
    let g = api.get("/v2/alice/app/tags/list?last=a", None).await;
    assert_eq!(list(&g), ["latest", "v1", "v10", "v2"], "last without n");
    assert_eq!(g.h("link"), None);
    let g = api.get("/v2/alice/app/tags/list?last=b", None).await;
    assert_eq!(list(&g), ["latest", "v1", "v10", "v2"], "last need not be a tag");
    for n in ["8", "100", ""] {
        let g = api.get(&format!("/v2/alice/app/tags/list?n={n}"), None).await;
        assert_eq!(list(&g), sorted, "n={n}");
        assert_eq!(g.h("link"), None, "all fit: no Link (n={n})");
    }
    let g = api.get("/v2/alice/app/tags/list?n=8&last=v2", None).await;
    assert!(list(&g).is_empty(), "after the last tag");
    assert_eq!(g.h("link"), None);
    for bad in ["-1", "abc"] {
        let g = api.get(&format!("/v2/alice/app/tags/list?n={bad}"), None).await;
        assert_eq!(g.status, 400, "n={bad}: {}", g.text());
    }
    err(
        &api.get("/v2/alice/none/tags/list", None).await,
        404,
        "NAME_UNKNOWN",
        "tags of a repository that does not exist",
    );
}

#[tokio::test]
async fn catalog_paginates_and_hides_private_repositories() {
    let s = Server::start("");
    let (alice, bobby, carol) = users(&s).await;
    let api = Api::new(&s);
    for repo in ["alice/app", "alice/zzz", "bobby/app", "alice/secret", "carol/tool"] {
        let auth = match repo.split('/').next().unwrap() {
            "alice" => &alice,
            "bobby" => &bobby,
            _ => &carol,
        };
        api.image(auth, repo, "latest", json!({})).await;
    }
    set_private(&api, &alice, "alice/secret", true).await;
    add_collaborator(&api, &alice, "alice/secret", "carol").await;
    let repos = |g: &Got| -> Vec<String> {
        g.json()["repositories"]
            .as_array()
            .expect("repositories")
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect()
    };
    let public = ["alice/app", "alice/zzz", "bobby/app", "carol/tool"];
    let with_secret = ["alice/app", "alice/secret", "alice/zzz", "bobby/app", "carol/tool"];
    for (who, want) in [
        (None, &public[..]),
        (Some(&bobby), &public[..]),
        (Some(&alice), &with_secret[..]),
        (Some(&carol), &with_secret[..]),
    ] {
        let g = api.get("/v2/_catalog", who.map(|s| s.as_str())).await;
        ok(&g, 200, "catalog");
        assert_eq!(repos(&g), want, "catalog for {who:?}");
        // Page by two, following Link.
        let mut g = api.get("/v2/_catalog?n=2", who.map(|s| s.as_str())).await;
        let mut all = repos(&g);
        assert_eq!(all.len(), 2);
        while let Some(link) = next(&g) {
            assert!(link.starts_with("/v2/_catalog?n=2&last="), "{link}");
            g = api.get(&link, who.map(|s| s.as_str())).await;
            all.extend(repos(&g));
        }
        assert_eq!(all, want, "paged catalog for {who:?}");
    }
    let h = api.head("/v2/_catalog", None).await;
    ok(&h, 200, "HEAD catalog");
    assert!(h.body.is_empty());
    let g = api.get("/v2/_catalog?n=0", None).await;
    assert!(repos(&g).is_empty());
    assert_eq!(g.h("link"), None);
}

#[tokio::test]
async fn referrers_list_filter_and_removal() {
    let s = Server::start("");
    let (alice, _, _) = users(&s).await;
    let api = Api::new(&s);
    let repo = "alice/app";
    let subject = api.image(&alice, repo, "latest", json!({})).await;
    let sub = subject.descriptor();

    // An artifact with artifactType, an empty config and annotations.
    api.blob(&alice, repo, b"{}").await;
    let sbom = b"{\"sbom\":true}".to_vec();
    api.blob(&alice, repo, &sbom).await;
    let sbom_m = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom.v1",
        "config": desc(OCI_EMPTY, b"{}"),
        "layers": [desc("application/spdx+json", &sbom)],
        "subject": sub,
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z", "org.example.format": "json"},
    }))
    .unwrap();
    let g = api
        .put_manifest(Some(&alice), repo, &sha256(&sbom_m), OCI_MANIFEST, &sbom_m)
        .await;
    ok(&g, 201, "sbom");
    assert_eq!(g.h("oci-subject"), Some(subject.digest.clone()));

    // No artifactType: the config's media type stands in; an empty artifactType counts as none.
    let sig_config = b"{\"signature\":1}".to_vec();
    api.blob(&alice, repo, &sig_config).await;
    let sig = |at: Option<&str>, n: u32| {
        let mut m = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc("application/vnd.example.signature.config", &sig_config),
            "layers": [],
            "subject": sub,
            "annotations": {"n": n.to_string()},
        });
        if let Some(at) = at {
            m["artifactType"] = json!(at);
        }
        serde_json::to_vec(&m).unwrap()
    };
    let sig_m = sig(None, 1);
    let sig_empty = sig(Some(""), 2);
    for m in [&sig_m, &sig_empty] {
        ok(
            &api.put_manifest(Some(&alice), repo, &sha256(m), OCI_MANIFEST, m).await,
            201,
            "signature",
        );
    }

    // An index with a subject: without artifactType the descriptor has none.
    let child = api.image(&alice, repo, "", json!({})).await;
    let index = |at: Option<&str>| {
        let mut m = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [child.descriptor()],
            "subject": sub,
            "annotations": {"kind": "index"},
        });
        if let Some(at) = at {
            m["artifactType"] = json!(at);
        }
        serde_json::to_vec(&m).unwrap()
    };
    let (idx, idx_empty, idx_typed) = (
        index(None),
        index(Some("")),
        index(Some("application/vnd.example.bundle")),
    );
    for m in [&idx, &idx_empty, &idx_typed] {
        let g = api.put_manifest(Some(&alice), repo, &sha256(m), OCI_INDEX, m).await;
        ok(&g, 201, "index with subject");
        assert_eq!(g.h("oci-subject"), Some(subject.digest.clone()));
    }
    // A referrer in another repository is not listed here.
    let other = api.image(&alice, "alice/other", "", json!({"subject": sub})).await;

    let path = format!("/v2/{repo}/referrers/{}", subject.digest);
    let g = api.get(&path, None).await;
    ok(&g, 200, "referrers");
    assert_eq!(g.h("content-type").as_deref(), Some(OCI_INDEX));
    let v = g.json();
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(v["mediaType"], OCI_INDEX);
    let list = v["manifests"].as_array().expect("manifests").clone();
    let h = api.head(&path, None).await;
    ok(&h, 200, "HEAD referrers");
    assert_eq!(h.h("content-type").as_deref(), Some(OCI_INDEX));
    assert_eq!(h.h("content-length"), Some(g.body.len().to_string()));
    let find = |body: &[u8]| -> Value {
        let d = sha256(body);
        list.iter()
            .find(|m| m["digest"] == d.as_str())
            .unwrap_or_else(|| panic!("{d} missing from {list:?}"))
            .clone()
    };
    assert_eq!(list.len(), 6, "{list:?}");
    assert!(!list.iter().any(|m| m["digest"] == other.digest.as_str()));
    assert_eq!(
        find(&sbom_m),
        json!({
            "mediaType": OCI_MANIFEST,
            "digest": sha256(&sbom_m),
            "size": sbom_m.len(),
            "artifactType": "application/vnd.example.sbom.v1",
            "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z", "org.example.format": "json"},
        })
    );
    for m in [&sig_m, &sig_empty] {
        let d = find(m);
        assert_eq!(d["artifactType"], "application/vnd.example.signature.config", "{d}");
        assert_eq!(d["size"], m.len());
        assert_eq!(d["mediaType"], OCI_MANIFEST);
    }
    for m in [&idx, &idx_empty] {
        let d = find(m);
        assert!(d.get("artifactType").is_none(), "index without artifactType: {d}");
        assert_eq!(d["mediaType"], OCI_INDEX);
        assert_eq!(d["annotations"], json!({"kind": "index"}));
    }
    assert_eq!(find(&idx_typed)["artifactType"], "application/vnd.example.bundle");

    // Filtering by artifactType.
    let g = api
        .get(&format!("{path}?artifactType=application/vnd.example.sbom.v1"), None)
        .await;
    ok(&g, 200, "filtered");
    assert_eq!(g.h("oci-filters-applied").as_deref(), Some("artifactType"));
    assert_eq!(g.h("content-type").as_deref(), Some(OCI_INDEX));
    let v = g.json();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(v["manifests"][0]["digest"], sha256(&sbom_m));
    let g = api
        .get(
            &format!("{path}?artifactType=application/vnd.example.signature.config"),
            None,
        )
        .await;
    assert_eq!(g.json()["manifests"].as_array().unwrap().len(), 2);
    let g = api.get(&format!("{path}?artifactType=application/none"), None).await;
    assert_eq!(g.h("oci-filters-applied").as_deref(), Some("artifactType"));
    assert_eq!(g.json()["manifests"], json!([]));
    assert_eq!(
        api.get(&path, None).await.h("oci-filters-applied"),
        None,
        "no filter asked"
    );

    // Unknown subject: 200 and an empty list (never 404). Invalid digest: 400.
    let g = api
        .get(&format!("/v2/{repo}/referrers/{}", sha256(b"no such subject")), None)
        .await;
    ok(&g, 200, "unknown subject");
    assert_eq!(g.h("content-type").as_deref(), Some(OCI_INDEX));
    assert_eq!(
        g.json(),
        json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
    );
    let g = api.get(&format!("/v2/{repo}/referrers/sha256:nothex"), None).await;
    err(&g, 400, "DIGEST_INVALID", "invalid digest");
    let g = api.get(&format!("/v2/{repo}/referrers/latest"), None).await;
    assert_eq!(g.status, 400, "a tag is not a digest: {}", g.text());

    // Deleting a referrer removes it from the list.
    let g = api
        .delete(&format!("/v2/{repo}/manifests/{}", sha256(&sbom_m)), Some(&alice))
        .await;
    ok(&g, 202, "delete referrer");
    let v = api.get(&path, None).await.json();
    let left: Vec<&str> = v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(left.len(), 5);
    assert!(!left.contains(&sha256(&sbom_m).as_str()));
    // The subject itself may go first: its referrers stay listed (the subject is a weak link).
    ok(
        &api.delete(&format!("/v2/{repo}/manifests/{}", subject.digest), Some(&alice))
            .await,
        202,
        "delete subject",
    );
    assert_eq!(
        api.get(&path, None).await.json()["manifests"].as_array().unwrap().len(),
        5
    );
}
