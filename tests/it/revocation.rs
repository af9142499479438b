//! Revoked access stays revoked: every use of a v1 token or a v2 JWT sees the rules as they are
//! now (visibility, collaborators), and a changed password or a deactivated account ends the
//! tokens issued before, also after a restart.

use crate::common::*;
use crate::v2::{add_collaborator, bearer, random_bytes, sha256, Api};
use reqwest::Method;

/// `PUT /v1/images/{id}/json` with `auth`: the status.
async fn put_image_json(url: &str, auth: &str) -> u16 {
    let id = random_id();
    client()
        .put(format!("{url}/v1/images/{id}/json"))
        .header("Authorization", auth)
        .body(image_json(&id, None))
        .send()
        .await
        .expect("put json")
        .status()
        .as_u16()
}

/// `PUT /v1/repositories/{repo}/tags/{tag}` naming `id`: the status.
async fn put_tag(url: &str, auth: &str, repo: &str, tag: &str, id: &str) -> u16 {
    client()
        .put(format!("{url}/v1/repositories/{repo}/tags/{tag}"))
        .header("Authorization", auth)
        .json(&id)
        .send()
        .await
        .expect("put tag")
        .status()
        .as_u16()
}

/// A monolithic v2 blob push with `auth`: the status.
async fn push_blob(api: &Api, repo: &str, auth: &str) -> u16 {
    let data = random_bytes(64);
    let g = crate::v2::go(
        api.req(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={}", sha256(&data)),
            Some(auth),
        )
        .body(data),
    )
    .await;
    g.status
}

async fn read_token(url: &str, repo: &str) -> String {
    let r = client()
        .get(format!("{url}/v1/repositories/{repo}/images"))
        .header("X-Docker-Token", "true")
        .send()
        .await
        .expect("images");
    assert_eq!(r.status(), 200, "anonymous pull start");
    format!("Token {}", r.headers()["x-docker-token"].to_str().expect("token"))
}

#[tokio::test]
async fn visibility_and_collaborators_apply_to_issued_tokens() {
    let s = Server::start("");
    let api = Api::new(&s);
    let (alice, _, carol) = crate::v2::users(&s).await;
    let images = chain(1);
    push_13(&s.url, "alice", "secret1", "alice/app", &images, "latest").await;
    let id = images[0].id.clone();

    // An anonymous read token and an anonymous JWT, issued while the repository is public.
    let anon_v1 = read_token(&s.url, "alice/app").await;
    let (anon_jwt, _) = api.token(None, &["repository:alice/app:pull"]).await;
    let tags = |auth: String| {
        client()
            .get(format!("{}/v1/repositories/alice/app/tags", s.url))
            .header("Authorization", auth)
            .send()
    };
    assert_eq!(tags(anon_v1.clone()).await.unwrap().status(), 200);
    assert_eq!(
        api.get("/v2/alice/app/tags/list", Some(&bearer(&anon_jwt)))
            .await
            .status,
        200
    );

    // Carol collaborates and takes a v1 write token and a push JWT.
    add_collaborator(&api, &alice, "alice/app", "carol").await;
    let carol_v1 = format!("Token {}", write_token(&s.url, ("carol", "secret3"), "alice/app").await);
    let (carol_jwt, _) = api.token(Some(&carol), &["repository:alice/app:pull,push"]).await;
    assert_eq!(put_tag(&s.url, &carol_v1, "alice/app", "carol1", &id).await, 200);
    assert_eq!(push_blob(&api, "alice/app", &bearer(&carol_jwt)).await, 201);

    // Alice makes it private and removes Carol.
    crate::v2::set_private(&api, &alice, "alice/app", true).await;
    let r = client()
        .delete(format!("{}/v1/repositories/alice/app/collaborators/carol", s.url))
        .header("Authorization", &alice)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "remove collaborator: {}", r.status());

    // The anonymous tokens read nothing any more: the repository does not exist for them.
    expect(
        tags(anon_v1.clone()).await.unwrap(),
        404,
        "anonymous v1 token after private",
    )
    .await;
    let g = api.get("/v2/alice/app/tags/list", Some(&bearer(&anon_jwt))).await;
    assert_eq!(g.status, 404, "anonymous JWT after private: {}", g.text());
    let r = client()
        .get(format!("{}/v1/images/{id}/json", s.url))
        .header("Authorization", &anon_v1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "anonymous v1 token reads an image of the private repository"
    );

    // Carol's tokens write nothing.
    let status = put_tag(&s.url, &carol_v1, "alice/app", "carol2", &id).await;
    assert_eq!(status, 401, "removed collaborator's v1 token writes a tag");
    assert_eq!(
        put_image_json(&s.url, &carol_v1).await,
        401,
        "removed collaborator's token uploads an image"
    );
    let status = push_blob(&api, "alice/app", &bearer(&carol_jwt)).await;
    assert!(
        status == 401 || status == 404,
        "removed collaborator's JWT pushes a blob: {status}"
    );
    // Alice's own rights are untouched.
    assert_eq!(tags(alice.clone()).await.unwrap().status(), 200);
}

#[tokio::test]
async fn password_change_and_deactivation_end_tokens_also_after_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::start_in(tmp.path(), "");
    let api = Api::new(&s);
    s.register("bobby", "secret2").await;
    s.register("dave", "secret4").await;
    let bobby = basic("bobby", "secret2");
    let bobby_v1 = format!("Token {}", write_token(&s.url, ("bobby", "secret2"), "bobby/app").await);
    let (bobby_jwt, _) = api.token(Some(&bobby), &["repository:bobby/app:pull,push"]).await;
    let dave_v1 = format!("Token {}", write_token(&s.url, ("dave", "secret4"), "dave/app").await);
    let (dave_jwt, _) = api
        .token(Some(&basic("dave", "secret4")), &["repository:dave/app:pull,push"])
        .await;
    assert_eq!(put_image_json(&s.url, &bobby_v1).await, 200);
    assert_eq!(push_blob(&api, "bobby/app", &bearer(&bobby_jwt)).await, 201);
    assert_eq!(put_image_json(&s.url, &dave_v1).await, 200);

    // Bobby changes his password over the v1 API.
    let r = client()
        .put(format!("{}/v1/users/bobby/", s.url))
        .header("Authorization", &bobby)
        .json(&serde_json::json!({"password": "newsecret2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "password change");
    assert_eq!(
        put_image_json(&s.url, &bobby_v1).await,
        401,
        "old v1 token after password change"
    );
    assert_eq!(
        push_blob(&api, "bobby/app", &bearer(&bobby_jwt)).await,
        401,
        "old JWT after password change"
    );
    // A token taken with the new password works.
    let fresh = format!(
        "Token {}",
        write_token(&s.url, ("bobby", "newsecret2"), "bobby/app").await
    );
    assert_eq!(put_image_json(&s.url, &fresh).await, 200);

    // Dave is deactivated by the operator, with the server stopped (the offline CLI).
    s.kill9();
    let (ok, _, err) = cli(tmp.path(), &["user", "activate", "dave", "--off"], "");
    assert!(ok, "deactivate: {err}");
    let s = Server::start_in(tmp.path(), "");
    let api = Api::new(&s);
    assert_eq!(
        put_image_json(&s.url, &dave_v1).await,
        401,
        "deactivated user's v1 token"
    );
    let status = push_blob(&api, "dave/app", &bearer(&dave_jwt)).await;
    assert_eq!(status, 401, "deactivated user's JWT");
    // And Bobby's old credentials stay dead after the restart, his new ones work.
    assert_eq!(put_image_json(&s.url, &bobby_v1).await, 401, "old token after restart");
    assert_eq!(put_image_json(&s.url, &fresh).await, 200, "new token after restart");
}
