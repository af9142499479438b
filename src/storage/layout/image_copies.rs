//! Layout 2 -> 3: v1 images stored per owner. Layout 2 kept one `images/<id>/` per id, owned by
//! whoever pushed it first (`_owner`); layout 3 keeps each owner's copy in
//! `images/<id>/<owner>/` (see `keys`), with a `_lineage` naming the copy of each ancestor, and
//! a repository's membership `_images/<id>` names the copy it holds. Every layout 2 image
//! becomes its owner's copy; nothing else changes, so what was served is served the same.
//!
//! Rerunnable after a crash at any point: an image's owner is read from its copy once one
//! exists (owner keys never collide with layout 2 entry names), entries are copied before the
//! old ones are removed, `_owner` goes last, and the other writes are idempotent.

use super::super::keys::{self, RepositoryEntry};
use super::super::Storage;
use crate::names::{ImageCopy, ImageId, Owner};
use bytes::Bytes;
use std::collections::HashMap;
use std::io;

pub(super) async fn image_copies(storage: &Storage) -> io::Result<()> {
    // First every image's owner: a lineage names its ancestors' owners.
    let mut owners: HashMap<ImageId, Owner> = HashMap::new();
    for raw in storage.list(keys::IMAGES).await? {
        let Ok(id) = ImageId::parse(&raw) else {
            log::warn!(
                "storage migration: {}/{raw} is not an image; left as it is",
                keys::IMAGES
            );
            continue;
        };
        let owner = owner_of(storage, &id).await?;
        owners.insert(id, owner);
    }
    for (id, owner) in &owners {
        let copy = ImageCopy::new(id, owner);
        move_into(storage, &copy).await?;
        write_lineage(storage, &copy, &owners).await?;
        storage.delete(&format!("{}/_owner", keys::image_copies(id))).await?;
        remove_empty_leftovers(storage, id).await?;
    }
    let mut members = 0usize;
    for key in storage.walk(keys::REPOSITORIES).await? {
        let Some((_, RepositoryEntry::V1Member(id))) = keys::parse_repository_key(&key) else {
            continue;
        };
        // A membership of an image that is not stored names nothing; `skiff check` reports it.
        let Some(owner) = owners.get(&id) else { continue };
        let named = Bytes::from(owner.key());
        if storage.get(&key).await?.as_ref() != Some(&named) {
            storage.put(&key, named).await?;
            members += 1;
        }
    }
    log::info!(
        "storage migration: {} v1 images moved to their owner's copy, {members} memberships name it",
        owners.len()
    );
    Ok(())
}

/// The owner of a layout 2 image: of its copy if an interrupted run made one, else `_owner`
/// (its first uploader), else the uploader of a push in progress; else nobody's (images
/// stored before owners were recorded: readable through their repositories only, as before).
async fn owner_of(storage: &Storage, id: &ImageId) -> io::Result<Owner> {
    let dir = keys::image_copies(id);
    if let Some(owner) = storage.list(&dir).await?.iter().find_map(|n| Owner::from_key(n)) {
        return Ok(owner);
    }
    for leaf in ["_owner", "_inprogress"] {
        if let Some(raw) = storage.get(&format!("{dir}/{leaf}")).await? {
            return Ok(Owner::new(&String::from_utf8_lossy(&raw)));
        }
    }
    Ok(Owner::new(""))
}

/// Moves every layout 2 entry of the image (`json`, `ancestry`, `layer`, `_checksum`,
/// `_tarsum`, `_inprogress`, `_repos/<repo>`) into `copy`; `_owner` stays until the end.
async fn move_into(storage: &Storage, copy: &ImageCopy) -> io::Result<()> {
    let dir = keys::image_copies(&copy.id);
    for old in storage.walk(&dir).await? {
        let Some(leaf) = old.strip_prefix(&dir).and_then(|l| l.strip_prefix('/')) else {
            continue;
        };
        let first = leaf.split('/').next().unwrap_or_default();
        if leaf == "_owner" || Owner::from_key(first).is_some() {
            continue; // the owner, read again by a rerun; or already moved
        }
        if let Some(bytes) = storage.get(&old).await? {
            storage.put(&keys::image(copy, leaf), bytes).await?;
        }
        storage.delete(&old).await?;
    }
    Ok(())
}

/// `_lineage`: the owner of each id of the ancestry (in layout 2 each id had one). An ancestor
/// that is not stored gets nobody's key; `skiff check` reports the missing parent as before.
async fn write_lineage(storage: &Storage, copy: &ImageCopy, owners: &HashMap<ImageId, Owner>) -> io::Result<()> {
    let key = keys::image(copy, "_lineage");
    if storage.exists(&key).await? {
        return Ok(());
    }
    let Some(raw) = storage.get(&keys::image(copy, "ancestry")).await? else {
        return Ok(()); // a damaged image (`skiff check` says so): no chain to name
    };
    let Ok(ids) = serde_json::from_slice::<Vec<String>>(&raw) else {
        return Ok(());
    };
    let nobody = Owner::new("");
    let lineage: Vec<String> = ids
        .iter()
        .map(|id| {
            ImageId::parse(id)
                .ok()
                .and_then(|id| owners.get(&id))
                .unwrap_or(&nobody)
                .key()
        })
        .collect();
    let body = serde_json::to_vec(&lineage).map_err(io::Error::other)?;
    storage.put(&key, Bytes::from(body)).await
}

/// Directories the moved entries leave behind (`_repos/`, on drivers that have directories).
async fn remove_empty_leftovers(storage: &Storage, id: &ImageId) -> io::Result<()> {
    let dir = keys::image_copies(id);
    for name in storage.list(&dir).await? {
        let prefix = format!("{dir}/{name}");
        let is_prefix = storage.stat(&prefix).await?.is_some_and(|s| s.is_prefix);
        if Owner::from_key(&name).is_none() && is_prefix && storage.walk(&prefix).await?.is_empty() {
            storage.delete_all(&prefix).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{check, CURRENT};
    use super::*;
    use crate::names::RepoName;
    use crate::storage::fs::FsDriver;
    use crate::storage::Driver;
    use std::sync::Arc;

    fn id(c: char) -> ImageId {
        ImageId::parse(&c.to_string().repeat(64)).expect("id")
    }

    /// A layout 2 store: alice's base `a` and child `b` in `alice/app`; bobby's `c` on alice's
    /// base, pushed half-way; `d` from before owners were recorded, in `alice/old`; a
    /// membership of an image that is not stored.
    fn layout_2() -> Vec<(String, String)> {
        let (a, b, c, d) = (id('a'), id('b'), id('c'), id('d'));
        let link = r#"{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}"#;
        let mut kv = vec![("_layout".to_string(), r#"{"version":2}"#.to_string())];
        for (img, ancestry, owner) in [
            (&a, format!(r#"["{a}"]"#), Some("alice")),
            (&b, format!(r#"["{b}","{a}"]"#), Some("alice")),
            (&c, format!(r#"["{c}","{a}"]"#), Some("bobby")),
            (&d, format!(r#"["{d}"]"#), None),
        ] {
            kv.push((format!("images/{img}/json"), format!(r#"{{"id":"{img}"}}"#)));
            kv.push((format!("images/{img}/ancestry"), ancestry));
            if let Some(o) = owner {
                kv.push((format!("images/{img}/_owner"), o.to_string()));
            }
            if img != &c {
                kv.push((format!("images/{img}/layer"), link.to_string()));
                kv.push((format!("images/{img}/_checksum"), format!("sha256:{img}")));
            }
        }
        kv.push((format!("images/{c}/_inprogress"), "bobby".into()));
        for (repo, img) in [("alice+app", &a), ("alice+app", &b), ("alice+old", &d)] {
            kv.push((format!("images/{img}/_repos/{repo}"), String::new()));
            kv.push((format!("repositories/{repo}/_images/{img}"), String::new()));
        }
        kv.push(("repositories/alice+app/_tags/latest".to_string(), b.to_string()));
        kv.push((format!("repositories/alice+app/_images/{}", id('e')), String::new()));
        kv
    }

    /// The layout 3 store `layout_2` becomes.
    fn layout_3() -> Vec<(String, String)> {
        let (a, b, c, d) = (id('a'), id('b'), id('c'), id('d'));
        let link = r#"{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}"#;
        let mut kv = vec![("_layout".to_string(), format!(r#"{{"version":{CURRENT}}}"#))];
        for (img, owner, ancestry, lineage) in [
            (&a, "@alice", format!(r#"["{a}"]"#), r#"["@alice"]"#),
            (&b, "@alice", format!(r#"["{b}","{a}"]"#), r#"["@alice","@alice"]"#),
            (&c, "@bobby", format!(r#"["{c}","{a}"]"#), r#"["@bobby","@alice"]"#),
            (&d, "~", format!(r#"["{d}"]"#), r#"["~"]"#),
        ] {
            kv.push((format!("images/{img}/{owner}/json"), format!(r#"{{"id":"{img}"}}"#)));
            kv.push((format!("images/{img}/{owner}/ancestry"), ancestry));
            kv.push((format!("images/{img}/{owner}/_lineage"), lineage.to_string()));
            if img != &c {
                kv.push((format!("images/{img}/{owner}/layer"), link.to_string()));
                kv.push((format!("images/{img}/{owner}/_checksum"), format!("sha256:{img}")));
            }
        }
        kv.push((format!("images/{c}/@bobby/_inprogress"), "bobby".into()));
        for (repo, img, owner) in [
            ("alice+app", &a, "@alice"),
            ("alice+app", &b, "@alice"),
            ("alice+old", &d, "~"),
        ] {
            kv.push((format!("images/{img}/{owner}/_repos/{repo}"), String::new()));
            kv.push((format!("repositories/{repo}/_images/{img}"), owner.to_string()));
        }
        kv.push(("repositories/alice+app/_tags/latest".to_string(), b.to_string()));
        // Names no image, and still names none.
        kv.push((format!("repositories/alice+app/_images/{}", id('e')), String::new()));
        kv.sort();
        kv
    }

    async fn everything(raw: &FsDriver) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for top in ["_layout", "images", "repositories"] {
            let keys = match top {
                "_layout" => vec![top.to_string()],
                _ => raw.walk(top).await.expect("walk"),
            };
            for k in keys {
                let v = raw.get(&k).await.expect("get").expect("object");
                out.push((k, String::from_utf8_lossy(&v).into_owned()));
            }
        }
        out.sort();
        out
    }

    async fn seed(raw: &FsDriver, kv: &[(String, String)]) {
        for (k, v) in kv {
            raw.put(k, Bytes::from(v.clone())).await.expect("seed");
        }
    }

    /// Every layout 2 image becomes its owner's copy (nobody's when no owner was recorded),
    /// with the lineage of its ancestry; memberships name the copy; nothing else is left.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn layout_2_images_become_their_owners_copies() {
        let dir = tempfile::tempdir().expect("temp dir");
        let raw = Arc::new(FsDriver::open(dir.path()).expect("fs"));
        seed(&raw, &layout_2()).await;
        let storage = Storage::open(raw.clone()).await.expect("open migrates");
        assert_eq!(everything(&raw).await, layout_3());
        assert_eq!(
            storage.list(&keys::image_copies(&id('a'))).await.expect("list"),
            vec!["@alice"],
            "no layout 2 entry, not even an empty directory, is left"
        );
        Storage::open(raw.clone()).await.expect("reopen");
        assert_eq!(everything(&raw).await, layout_3(), "a second open changes nothing");
        let repo = RepoName::parse("alice/app").expect("name");
        assert_eq!(
            storage
                .get(&keys::v1_member(&repo, &id('b')))
                .await
                .expect("get")
                .as_deref(),
            Some(&b"@alice"[..])
        );
    }

    /// A crash half-way (some entries of an image copied, some removed, its lineage not yet
    /// written, `_owner` still there; another image not touched): the rerun finishes the job.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interrupted_migration_is_finished_by_the_next_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let raw = Arc::new(FsDriver::open(dir.path()).expect("fs"));
        let mut half: Vec<(String, String)> = layout_2()
            .into_iter()
            .filter(|(k, _)| k != &format!("images/{}/json", id('b')))
            .collect();
        let b = id('b');
        half.push((format!("images/{b}/@alice/json"), format!(r#"{{"id":"{b}"}}"#)));
        half.push((
            format!("images/{b}/@alice/ancestry"),
            format!(r#"["{b}","{}"]"#, id('a')),
        ));
        seed(&raw, &half).await;
        let storage = Storage::open(raw.clone()).await.expect("open");
        assert_eq!(everything(&raw).await, layout_3());
        drop(storage);
        // Were `_owner` gone, the copy made so far would still name the owner.
        let dir = tempfile::tempdir().expect("temp dir");
        let raw = Arc::new(FsDriver::open(dir.path()).expect("fs"));
        let mut half: Vec<(String, String)> = layout_2()
            .into_iter()
            .filter(|(k, _)| k != &format!("images/{b}/_owner") && k != &format!("images/{b}/json"))
            .collect();
        half.push((format!("images/{b}/@alice/json"), format!(r#"{{"id":"{b}"}}"#)));
        seed(&raw, &half).await;
        check(&Storage {
            driver: raw.clone(),
            pins: Default::default(),
            cache: None,
        })
        .await
        .expect("migrate");
        assert_eq!(everything(&raw).await, layout_3());
    }
}
