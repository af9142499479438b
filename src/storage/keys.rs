//! Every key of the storage layout, in one place (as distribution's `paths.go`). Keys are
//! `/`-separated and relative to the driver's root; a driver maps them to files or objects.
//!
//! ```text
//! _layout                                                   layout version (see `layout`)
//! _tmp/<random>/<random>                                    files being written by one process
//! _tmp_locks/<random>.lock                                  held while that process lives (fs)
//! _uploads/<uuid>/info                                      v2 upload session: offset, parts, hash state
//! _uploads/<uuid>/part-<offset:020>-<8 hex>                 the bytes of one PATCH from <offset>
//! blobs/<algo>/<2 hex>/<hex>                                content-addressed bytes
//! images/<id>/<owner>/{json,ancestry,layer,_checksum,_tarsum} one owner's copy of v1 image <id>
//! images/<id>/<owner>/_lineage                              the <owner> of each id of its ancestry
//! images/<id>/<owner>/_inprogress                           v1 push state (the uploader)
//! images/<id>/<owner>/_repos/<flat repo>                    v1 repositories holding this copy
//! repositories/<flat>/_tags/<tag>                           v1 tag -> image id
//! repositories/<flat>/_tagjson/<tag>                        v1 tag metadata
//! repositories/<flat>/_images/<id>                          v1 membership; holds the member copy's <owner>
//! repositories/<flat>/_layers/<algo>/<hex>                  v2: the repository may serve a blob
//! repositories/<flat>/_manifests/revisions/<algo>/<hex>/{data,type}
//! repositories/<flat>/_manifests/tags/<tag>                 v2 tag -> digest
//! repositories/<flat>/_referrers/<algo>-<hex>/<algo>-<hex>  v2 referrer descriptors
//! _quarantine/<secs>/<algo>/<hex>{,.why}                    corrupt blobs moved aside by `skiff check --repair`
//! ```
//! `<flat>` is the repository name with `/` written `+` (`alice+app`), one key component: no
//! repository's keys are a prefix of another's, so removing `alice/app` can never touch
//! `alice/app/sub` (layout 1 nested names, `repositories/alice/app/sub/...` inside
//! `repositories/alice/app/`; see `layout`).
//!
//! v1 image ids are global, but an image is stored per owner (layout 3; layout 2 had one
//! `images/<id>/` per id, whoever pushed it first): `<owner>` is [`Owner::key`], `@<username>`
//! or `~<hex>` for any other uploader name, one key component that is never `.`, `..` or empty,
//! and never the name of a layout 2 entry. Which copy a request means is decided by who asks
//! (see `auth::images`); a repository holds at most one copy of an id.

use crate::digest::Digest;
use crate::names::{ImageCopy, ImageId, Owner, RepoName, TagName};

pub const LAYOUT: &str = "_layout";
pub const TMP: &str = "_tmp";
/// The locks of the processes writing in `_tmp` (fs driver only; see `fs::OwnTemp`).
pub const TMP_LOCKS: &str = "_tmp_locks";
pub const UPLOADS: &str = "_uploads";
pub const BLOBS: &str = "blobs";
pub const IMAGES: &str = "images";
pub const REPOSITORIES: &str = "repositories";
pub const QUARANTINE: &str = "_quarantine";

/// Refuses keys that are not plain `/`-separated components (empty, absolute, `.` or `..`
/// parts): keys are built from validated names, and this is a second line of defence against
/// traversal in every driver.
pub fn check(key: &str) -> std::io::Result<()> {
    if key.is_empty() || key.starts_with('/') || key.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bad storage key {key:?}"),
        ));
    }
    Ok(())
}

pub fn temp(random: &str) -> String {
    format!("{TMP}/{random}")
}

pub fn blob(d: &Digest) -> String {
    let hex = d.hex();
    format!("{BLOBS}/{}/{}/{hex}", d.algorithm().name(), &hex[..2])
}

/// The digest a blob key names (the inverse of [`blob`]), for walks over the blob store. Only
/// exactly a blob's key: a stray `blobs/sha256/zz/<hex>` or `.../<hex>/x` names no blob.
pub fn parse_blob(key: &str) -> Option<Digest> {
    let mut parts = key.strip_prefix(BLOBS)?.strip_prefix('/')?.split('/');
    let (algo, _, hex) = (parts.next()?, parts.next()?, parts.next()?);
    let digest: Digest = format!("{algo}:{hex}").parse().ok()?;
    (blob(&digest) == key).then_some(digest)
}

/// Where `skiff check --repair` moves a corrupt blob: out of the blob store (so it is no longer
/// served and can be pushed again), kept for inspection. `stamp` tells runs apart.
pub fn quarantine(stamp: &str, d: &Digest) -> String {
    format!("{QUARANTINE}/{stamp}/{}/{}", d.algorithm().name(), d.hex())
}

/// The note beside a quarantined blob saying why it was moved.
pub fn quarantine_note(stamp: &str, d: &Digest) -> String {
    format!("{}.why", quarantine(stamp, d))
}

// ---- v2 upload sessions ----

pub fn upload_info(uuid: &str) -> String {
    format!("{UPLOADS}/{uuid}/info")
}

/// A part of an upload: the bytes one request sent from `offset` on. The random suffix keeps
/// two requests at the same offset (on two nodes, say) from writing the same object; which of
/// them counts is what the session's info lists.
pub fn upload_part(uuid: &str, offset: u64, random: &str) -> String {
    format!("{UPLOADS}/{uuid}/part-{offset:020}-{random}")
}

pub fn upload(uuid: &str) -> String {
    format!("{UPLOADS}/{uuid}")
}

// ---- v1 images ----

/// `images/<id>`: one entry per copy of the image, named by its owner's key.
pub fn image_copies(id: &ImageId) -> String {
    format!("{IMAGES}/{id}")
}

/// `images/<id>/<owner>`: everything of one copy.
pub fn image_copy(c: &ImageCopy) -> String {
    format!("{IMAGES}/{}/{}", c.id, c.owner.key())
}

/// `json`, `ancestry`, `_lineage`, `layer`, `_checksum`, `_tarsum` or `_inprogress` of a copy.
pub fn image(c: &ImageCopy, leaf: &str) -> String {
    format!("{}/{leaf}", image_copy(c))
}

pub fn image_repos(c: &ImageCopy) -> String {
    format!("{}/_repos", image_copy(c))
}

pub fn image_repo(c: &ImageCopy, repo: &RepoName) -> String {
    format!("{}/{}", image_repos(c), repo.flat())
}

/// The copy whose layer link `key` is (`images/<id>/<owner>/layer`), for gc.
pub fn parse_image_layer(key: &str) -> Option<ImageCopy> {
    let (id, owner, leaf) = parse_image_key(key)?;
    let c = ImageCopy {
        id: ImageId::parse(id).ok()?,
        owner: Owner::from_key(owner)?,
    };
    (leaf == "layer").then_some(c)
}

/// Splits a key under `images/` into the id and owner components and the leaf after them
/// (`images/<id>/<owner>/_repos/x` -> (`<id>`, `<owner>`, `_repos/x`)), for walks over the v1
/// images. The components are as stored: check them with `ImageId::parse` and `Owner::from_key`.
pub fn parse_image_key(key: &str) -> Option<(&str, &str, &str)> {
    let (id, rest) = key.strip_prefix(IMAGES)?.strip_prefix('/')?.split_once('/')?;
    let (owner, leaf) = rest.split_once('/')?;
    Some((id, owner, leaf))
}

// ---- repositories ----

pub fn repository(repo: &RepoName) -> String {
    format!("{REPOSITORIES}/{}", repo.flat())
}

/// The repository an entry of `repositories/` names (the inverse of [`repository`]'s last
/// component); `None` for anything that is not exactly a repository's flat name.
pub fn parse_repository(flat: &str) -> Option<RepoName> {
    RepoName::from_flat(flat).filter(|n| n.flat() == flat)
}

pub fn v1_tags(repo: &RepoName) -> String {
    format!("{}/_tags", repository(repo))
}

pub fn v1_tag(repo: &RepoName, tag: &TagName) -> String {
    format!("{}/_tags/{tag}", repository(repo))
}

pub fn v1_tag_json(repo: &RepoName, tag: &TagName) -> String {
    format!("{}/_tagjson/{tag}", repository(repo))
}

pub fn v1_members(repo: &RepoName) -> String {
    format!("{}/_images", repository(repo))
}

pub fn v1_member(repo: &RepoName, id: &ImageId) -> String {
    format!("{}/_images/{id}", repository(repo))
}

pub fn blob_link(repo: &RepoName, d: &Digest) -> String {
    format!("{}/_layers/{}/{}", repository(repo), d.algorithm().name(), d.hex())
}

pub fn revision(repo: &RepoName, d: &Digest) -> String {
    format!(
        "{}/_manifests/revisions/{}/{}",
        repository(repo),
        d.algorithm().name(),
        d.hex()
    )
}

pub fn revision_data(repo: &RepoName, d: &Digest) -> String {
    format!("{}/data", revision(repo, d))
}

/// The media type; written after `data`, so its presence marks the revision complete.
pub fn revision_type(repo: &RepoName, d: &Digest) -> String {
    format!("{}/type", revision(repo, d))
}

pub fn v2_tags(repo: &RepoName) -> String {
    format!("{}/_manifests/tags", repository(repo))
}

pub fn v2_tag(repo: &RepoName, tag: &TagName) -> String {
    format!("{}/_manifests/tags/{tag}", repository(repo))
}

fn flat(d: &Digest) -> String {
    format!("{}-{}", d.algorithm().name(), d.hex())
}

pub fn referrers(repo: &RepoName, subject: &Digest) -> String {
    format!("{}/_referrers/{}", repository(repo), flat(subject))
}

pub fn referrer(repo: &RepoName, subject: &Digest, d: &Digest) -> String {
    format!("{}/{}", referrers(repo, subject), flat(d))
}

/// What a key under `repositories/` is, for walks (gc, the catalog without an index).
#[derive(Debug, PartialEq, Eq)]
pub enum RepositoryEntry<'a> {
    /// `_layers/<algo>/<hex>`: a blob link.
    BlobLink(Digest),
    /// `_manifests/revisions/<algo>/<hex>/data`: a manifest's bytes.
    RevisionData(Digest),
    /// `_manifests/revisions/<algo>/<hex>/type`: its media type (marks it complete).
    RevisionType(Digest),
    /// `_manifests/tags/<tag>`: a v2 tag.
    V2Tag(TagName),
    /// `_tags/<tag>`: a v1 tag.
    V1Tag(TagName),
    /// `_images/<id>`: v1 membership.
    V1Member(ImageId),
    /// Any other entry of the repository (`leaf` is the part after the name).
    Other(&'a str),
}

/// Splits a key under `repositories/` into the repository's name and what the key holds.
pub fn parse_repository_key(key: &str) -> Option<(RepoName, RepositoryEntry<'_>)> {
    let rest = key.strip_prefix(REPOSITORIES)?.strip_prefix('/')?;
    let (flat, leaf) = rest.split_once('/')?;
    let name = parse_repository(flat)?;
    let parts: Vec<&str> = leaf.split('/').collect();
    let digest = |algo: &str, hex: &str| format!("{algo}:{hex}").parse::<Digest>().ok();
    let entry = match parts.as_slice() {
        ["_layers", algo, hex] => digest(algo, hex).map(RepositoryEntry::BlobLink),
        ["_manifests", "revisions", algo, hex, "data"] => digest(algo, hex).map(RepositoryEntry::RevisionData),
        ["_manifests", "revisions", algo, hex, "type"] => digest(algo, hex).map(RepositoryEntry::RevisionType),
        ["_manifests", "tags", tag] => TagName::parse(tag).ok().map(RepositoryEntry::V2Tag),
        ["_tags", tag] => TagName::parse(tag).ok().map(RepositoryEntry::V1Tag),
        ["_images", id] => ImageId::parse(id).ok().map(RepositoryEntry::V1Member),
        _ => None,
    };
    Some((name, entry.unwrap_or(RepositoryEntry::Other(leaf))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let d: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        let repo = RepoName::parse("alice/app").unwrap();
        assert_eq!(blob(&d), format!("blobs/sha256/ab/{}", "ab".repeat(32)));
        assert_eq!(parse_blob(&blob(&d)), Some(d.clone()));
        assert_eq!(parse_blob("blobs/sha256/ab"), None);
        // Regression (found by the property tests): only exactly a blob's key names it.
        assert_eq!(parse_blob(&format!("blobs/sha256/zz/{}", d.hex())), None);
        assert_eq!(parse_blob(&format!("{}/extra", blob(&d))), None);
        assert_eq!(
            blob_link(&repo, &d),
            format!("repositories/alice+app/_layers/sha256/{}", d.hex())
        );
        assert_eq!(
            parse_repository_key(&blob_link(&repo, &d)),
            Some((repo.clone(), RepositoryEntry::BlobLink(d.clone())))
        );
        assert_eq!(
            parse_repository_key(&revision_data(&repo, &d)),
            Some((repo.clone(), RepositoryEntry::RevisionData(d.clone())))
        );
        assert_eq!(
            parse_repository_key(&revision_type(&repo, &d)),
            Some((repo.clone(), RepositoryEntry::RevisionType(d.clone())))
        );
        let tag = TagName::parse("v1.0").unwrap();
        assert_eq!(
            parse_repository_key(&v2_tag(&repo, &tag)),
            Some((repo.clone(), RepositoryEntry::V2Tag(tag.clone())))
        );
        assert_eq!(
            parse_repository_key(&v1_tag(&repo, &tag)),
            Some((repo.clone(), RepositoryEntry::V1Tag(tag.clone())))
        );
        assert_eq!(
            parse_repository_key(&v1_tag_json(&repo, &tag)),
            Some((repo.clone(), RepositoryEntry::Other("_tagjson/v1.0")))
        );
        // No repository's keys are a prefix of another's.
        let sub = RepoName::parse("alice/app/sub").unwrap();
        assert!(!repository(&sub).starts_with(&format!("{}/", repository(&repo))));
        let id = ImageId::parse(&"c".repeat(64)).unwrap();
        let copy = ImageCopy::new(&id, &Owner::new("alice"));
        assert_eq!(image(&copy, "layer"), format!("images/{id}/@alice/layer"));
        assert_eq!(parse_image_layer(&image(&copy, "layer")), Some(copy.clone()));
        assert_eq!(parse_image_layer(&image(&copy, "json")), None);
        // A layout 2 layer link names no copy.
        assert_eq!(parse_image_layer(&format!("images/{id}/layer")), None);
        assert_eq!(parse_image_layer(&format!("images/{id}/alice/layer")), None);
        assert_eq!(
            parse_repository_key(&v1_member(&repo, &id)),
            Some((repo.clone(), RepositoryEntry::V1Member(id.clone())))
        );
        assert_eq!(
            parse_image_key(&image_repo(&copy, &repo)),
            Some((id.as_str(), "@alice", "_repos/alice+app"))
        );
        let nobody = ImageCopy::new(&id, &Owner::new(""));
        assert_eq!(image(&nobody, "json"), format!("images/{id}/~/json"));
        assert_eq!(
            quarantine("1700000000", &d),
            format!("_quarantine/1700000000/sha256/{}", d.hex())
        );
    }
}
