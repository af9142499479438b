//! The storage key parsers.

use super::*;

// ---- storage keys ----

const KEY_PREFIXES: &[&str] = &[
    "blobs/",
    "images/",
    "repositories/",
    "blobs/sha256/",
    "repositories/a+b/",
];

proptest! {
    #![proptest_config(config())]

    /// The key parsers gc and the catalog use on walks: never panic on any key, and what they
    /// recognise is exactly a key Skiff writes.
    #[test]
    fn fuzz_storage_keys(
        raw in prop_oneof![
            text(),
            (
                proptest::sample::select(KEY_PREFIXES),
                near_text(),
                digest_text(),
            )
                .prop_map(|(p, t, d)| format!("{p}{t}/{}", d.replace(':', "/"))),
        ],
    ) {
        if let Some(d) = keys::parse_blob(&raw) {
            prop_assert_eq!(keys::blob(&d), raw.clone());
        }
        if let Some(copy) = keys::parse_image_layer(&raw) {
            prop_assert_eq!(keys::image(&copy, "layer"), raw.clone());
        }
        if let Some((id, owner, leaf)) = keys::parse_image_key(&raw) {
            prop_assert_eq!(format!("images/{id}/{owner}/{leaf}"), raw.clone());
        }
        if let Some(repo) = keys::parse_repository(&raw) {
            prop_assert_eq!(repo.flat(), raw.clone());
        }
        if let Some((repo, entry)) = keys::parse_repository_key(&raw) {
            let dir = keys::repository(&repo) + "/";
            prop_assert!(raw.starts_with(&dir));
            match entry {
                RepositoryEntry::BlobLink(d) => prop_assert_eq!(keys::blob_link(&repo, &d), raw.clone()),
                RepositoryEntry::RevisionData(d) => prop_assert_eq!(keys::revision_data(&repo, &d), raw.clone()),
                RepositoryEntry::RevisionType(d) => prop_assert_eq!(keys::revision_type(&repo, &d), raw.clone()),
                RepositoryEntry::V2Tag(t) => prop_assert_eq!(keys::v2_tag(&repo, &t), raw.clone()),
                RepositoryEntry::V1Tag(t) => prop_assert_eq!(keys::v1_tag(&repo, &t), raw.clone()),
                RepositoryEntry::V1Member(id) => prop_assert_eq!(keys::v1_member(&repo, &id), raw.clone()),
                RepositoryEntry::Other(leaf) => {
                    prop_assert_eq!(format!("{}/{leaf}", keys::repository(&repo)), raw.clone())
                }
            }
        }
    }
}
