//! The bodies webhooks send, built once per event (every hook gets the same bytes):
//!
//! - v2 pushes and every delete: CNCF Distribution's notification envelope
//!   (`{"events": [...]}`, `application/vnd.docker.distribution.events.v1+json`), so a
//!   receiver written for Distribution's notifications works unchanged;
//! - v1 pushes: Docker Hub's webhook payload (`callback_url`, `push_data`, `repository`).

use serde_json::{json, Value};

/// Distribution's envelope media type.
pub const ENVELOPE: &str = "application/vnd.docker.distribution.events.v1+json";
/// Docker Hub's payload is plain JSON.
pub const HUB: &str = "application/json";

/// The request that caused an event, as Distribution reports it.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub id: String,
    /// The client's address.
    pub addr: String,
    /// The `Host` it asked for.
    pub host: String,
    pub method: String,
    pub useragent: String,
    /// This server as clients reach it: scheme and host[:port] (URLs in the payloads).
    pub scheme: String,
    pub origin_host: String,
}

impl RequestInfo {
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.origin_host)
    }
}

/// A random UUID (version 4), the form Distribution's ids take.
pub fn uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// Now, in RFC 3339 with milliseconds, UTC.
pub fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let t = crate::clock::utc(now.as_secs());
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        now.subsec_millis()
    )
}

/// What a Distribution event's `target` names.
pub struct Target<'a> {
    pub repository: &'a str,
    pub media_type: Option<&'a str>,
    pub size: Option<u64>,
    pub digest: Option<&'a str>,
    pub tag: Option<&'a str>,
}

/// One event in Distribution's envelope. `action` is `push` or `delete`; `instance` names this
/// process (Distribution's `source.instanceID`).
pub fn envelope(action: &str, target: &Target, req: &RequestInfo, actor: &str, instance: &str) -> Value {
    let mut t = json!({ "repository": target.repository });
    if let Some(m) = target.media_type {
        t["mediaType"] = m.into();
    }
    if let Some(size) = target.size {
        t["size"] = size.into();
        t["length"] = size.into();
    }
    if let Some(d) = target.digest {
        t["digest"] = d.into();
        t["url"] = format!("{}/v2/{}/manifests/{d}", req.base_url(), target.repository).into();
    }
    if let Some(tag) = target.tag {
        t["tag"] = tag.into();
    }
    json!({
        "events": [{
            "id": uuid(),
            "timestamp": timestamp(),
            "action": action,
            "target": t,
            "request": {
                "id": req.id,
                "addr": req.addr,
                "host": req.host,
                "method": req.method,
                "useragent": req.useragent,
            },
            "actor": { "name": actor },
            "source": { "addr": req.origin_host, "instanceID": instance },
        }]
    })
}

/// What a Docker Hub payload says of the repository.
pub struct HubRepo<'a> {
    pub name: &'a str,
    pub owner: &'a str,
    pub private: bool,
    pub description: &'a str,
    pub created: u64,
    pub star_count: u64,
}

/// Docker Hub's push payload for a v1 push of `images`, reached by `tags` (newest first;
/// `tag` is the first). Skiff takes no callback: `callback_url` is empty.
pub fn hub_push(repo: &HubRepo, images: &[String], tags: &[String], pusher: &str, req: &RequestInfo) -> Value {
    let (namespace, short) = repo.name.split_once('/').unwrap_or(("library", repo.name));
    json!({
        "callback_url": "",
        "push_data": {
            "images": images,
            "pushed_at": crate::clock::now_secs(),
            "pusher": pusher,
            "tag": tags.first().map_or("", String::as_str),
            "tags": tags,
        },
        "repository": {
            "date_created": repo.created,
            "description": repo.description,
            "dockerfile": "",
            "full_description": "",
            "is_official": false,
            "is_private": repo.private,
            "is_trusted": false,
            "name": short,
            "namespace": namespace,
            "owner": repo.owner,
            "repo_name": repo.name,
            "repo_url": format!("{}/r/{}", req.base_url(), repo.name),
            "star_count": repo.star_count,
            "status": "Active",
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> RequestInfo {
        RequestInfo {
            id: "r1".into(),
            addr: "10.0.0.9".into(),
            host: "reg.lan:5000".into(),
            method: "PUT".into(),
            useragent: "docker/27".into(),
            scheme: "http".into(),
            origin_host: "reg.lan:5000".into(),
        }
    }

    #[test]
    fn envelope_has_distributions_fields() {
        let target = Target {
            repository: "alice/app",
            media_type: Some("application/vnd.oci.image.manifest.v1+json"),
            size: Some(708),
            digest: Some("sha256:ab"),
            tag: Some("v1"),
        };
        let v = envelope("push", &target, &req(), "alice", "inst");
        let e = &v["events"][0];
        assert_eq!(e["action"], "push");
        assert_eq!(e["target"]["length"], 708);
        assert_eq!(
            e["target"]["url"],
            "http://reg.lan:5000/v2/alice/app/manifests/sha256:ab"
        );
        assert_eq!(e["request"]["useragent"], "docker/27");
        assert_eq!(e["actor"]["name"], "alice");
        assert_eq!(e["source"]["instanceID"], "inst");
        let id = e["id"].as_str().expect("id");
        assert_eq!((id.len(), id.as_bytes()[14]), (36, b'4'), "{id}");
        let ts = e["timestamp"].as_str().expect("timestamp");
        assert!(ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
    }

    #[test]
    fn hub_payload_splits_the_name() {
        let repo = HubRepo {
            name: "alice/app",
            owner: "alice",
            private: true,
            description: "d",
            created: 5,
            star_count: 2,
        };
        let v = hub_push(&repo, &["abc".into()], &["latest".into(), "v1".into()], "bob", &req());
        assert_eq!(v["push_data"]["tag"], "latest");
        assert_eq!(v["push_data"]["pusher"], "bob");
        assert_eq!(v["repository"]["namespace"], "alice");
        assert_eq!(v["repository"]["name"], "app");
        assert_eq!(v["repository"]["repo_name"], "alice/app");
        assert_eq!(v["repository"]["repo_url"], "http://reg.lan:5000/r/alice/app");
        assert_eq!(v["repository"]["is_private"], true);
    }
}
