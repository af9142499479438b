//! v1 JSON bodies, search and listing paging.

use super::*;

// ---- v1 JSON bodies, search, listings ----

proptest! {
    #![proptest_config(config())]

    /// The image list of `PUT /v1/repositories/R/images`: never panics; accepted exactly when
    /// every `id` is an image id, keeping the non-empty checksums.
    #[test]
    fn fuzz_v1_image_lists(
        entries in proptest::collection::vec(
            (prop_oneof![3 => hex(), 1 => text()], proptest::option::of(text()), proptest::option::of(json_value())),
            0..5,
        ),
        junk in any::<Vec<u8>>(),
    ) {
        let _ = crate::http::v1::repositories::parse_image_list(&junk);
        let list: Vec<Value> = entries.iter().map(|(id, sum, tag)| {
            let mut e = json!({"id": id});
            if let Some(s) = sum { e["checksum"] = json!(s); }
            if let Some(t) = tag { e["Tag"] = t.clone(); }
            e
        }).collect();
        let body = serde_json::to_vec(&list).expect("json");
        let tags_ok = entries.iter().all(|(_, _, t)| t.as_ref().is_none_or(|t| t.is_string() || t.is_null()));
        let ids_ok = entries.iter().all(|(id, _, _)| ImageId::parse(id).is_ok());
        match crate::http::v1::repositories::parse_image_list(&body) {
            Ok(got) => {
                prop_assert!(ids_ok && tags_ok);
                prop_assert_eq!(got.len(), entries.len());
                for (g, (id, sum, _)) in got.iter().zip(&entries) {
                    prop_assert_eq!(&g.id, id);
                    prop_assert_eq!(g.checksum.as_ref(), sum.as_ref().filter(|s| !s.is_empty()));
                }
            }
            Err(e) => {
                prop_assert!(!(ids_ok && tags_ok));
                prop_assert_eq!(e.kind, Kind::BadRequest);
            }
        }
    }

    /// The body of a v1 tag PUT (a JSON string naming an image): never panics; the id returned
    /// is the one sent.
    #[test]
    fn fuzz_v1_tag_bodies(id in prop_oneof![hex(), text()], junk in json_bytes()) {
        let _ = crate::http::v1::tags::tag_target(&junk);
        let body = serde_json::to_vec(&id).expect("json");
        match crate::http::v1::tags::tag_target(&body) {
            Ok(got) => prop_assert_eq!(got.as_str(), id.as_str()),
            Err(e) => {
                prop_assert!(ImageId::parse(&id).is_err());
                prop_assert_eq!(e.kind, Kind::NotFound);
            }
        }
    }

    /// `/v1/search?q=&n=&page=` as a client writes it: the query decodes or is refused, and
    /// the page is always 1-100 rows from page 1 on, whatever the numbers (no overflow).
    #[test]
    fn fuzz_search_queries(
        raw in prop_oneof![
            text(),
            ("[a-z%+ ]{0,8}", "-?[0-9]{0,25}", "-?[0-9]{0,25}").prop_map(|(q, n, p)| format!("q={q}&n={n}&page={p}")),
        ],
        n in proptest::option::of(any::<usize>()),
        page in proptest::option::of(any::<usize>()),
        total in prop_oneof![0usize..300, any::<usize>()],
    ) {
        use crate::http::v1::search::{paging, Paging, Query, MAX_PAGE_SIZE};
        let mut asked = vec![(n, page)];
        if let Ok(q) = actix_web::web::Query::<Query>::from_query(&raw) {
            let _ = q.q.trim().to_lowercase();
            asked.push((q.n, q.page));
        }
        for (n, page) in asked {
            let Paging { page_size, page: p, skip } = paging(n, page);
            prop_assert!((1..=MAX_PAGE_SIZE).contains(&page_size));
            prop_assert!(p >= 1);
            prop_assert_eq!(p, page.unwrap_or(1).max(1));
            if let Some(n @ 1..=MAX_PAGE_SIZE) = n {
                prop_assert_eq!(page_size, n);
            }
            prop_assert_eq!(skip, (p - 1).saturating_mul(page_size));
            prop_assert!(total.div_ceil(page_size).max(1) >= 1);
        }
    }

    /// `?n=&last=` of the tag list and the catalog: never panics; a page is the next run of the
    /// sorted list after `last`, at most `n` long, and says when more follow.
    #[test]
    fn fuzz_listing_pages(
        all in proptest::collection::btree_set(prop_oneof![valid_name(), text()], 0..12),
        n in proptest::option::of(prop_oneof![text(), "[0-9]{0,22}", (0usize..15).prop_map(|n| n.to_string())]),
        last in proptest::option::of(prop_oneof![valid_name(), text()]),
    ) {
        let all: Vec<String> = all.into_iter().collect();
        let after: Vec<String> =
            all.iter().filter(|t| last.as_ref().is_none_or(|l| t.as_str() > l.as_str())).cloned().collect();
        match crate::http::v2::discovery::page(all.clone(), n.as_deref(), last.as_deref()) {
            Ok((got, more)) => {
                prop_assert!(after.starts_with(&got));
                match more {
                    Some(k) => prop_assert!(got.len() == k && k < after.len()),
                    None => prop_assert_eq!(&got, &after),
                }
            }
            Err(e) => {
                prop_assert_eq!(e.kind, Kind::BadRequest);
                prop_assert!(n.as_deref().is_some_and(|n| !n.is_empty() && n.parse::<usize>().is_err()));
            }
        }
    }
}
