//! Serving stored blobs (v1 layers, v2 blobs) with `Range`, parsed and answered with actix-web's
//! own `Range` / `ContentRange` types: one satisfiable range gets 206 and `Content-Range`; a
//! `bytes` range that is unsatisfiable or invalid (`bytes=500-0`) gets 416 with
//! `Content-Range: bytes */size`, as RFC 9110 §14.2 says a server should (and the OCI
//! conformance suite checks); another range unit is ignored. Docker 1.x resumes with
//! `bytes=<received>-<total>`, one past the last byte; the end is clamped to the size, as the
//! RFC says.

use crate::digest::Digest;
use crate::error::AppResult;
use crate::net::conn::{Handoff, HandoffSlot};
use crate::storage::Storage;
use actix_web::body::SizedStream;
use actix_web::http::header::{self, ContentRange, ContentRangeSpec, Range};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};

/// What the request's `Range` asks for: the whole blob, one satisfiable range, or nothing
/// that can be served.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wanted {
    All,
    Part { start: u64, end: u64 },
    Unsatisfiable,
}

/// What a `Range` header value (`None`: no header, or one that is not visible ASCII) asks of
/// a blob of `size` bytes. Pure, so the property tests can drive it with any text.
pub(crate) fn wanted(range: Option<&str>, size: u64) -> Wanted {
    let Some(raw) = range else {
        return Wanted::All;
    };
    // Range units compare case-insensitively (RFC 9110 §14.1); actix's parser wants `bytes`.
    let raw = raw.trim();
    let normalized = match raw.get(..6) {
        Some(unit) if unit.eq_ignore_ascii_case("bytes=") => format!("bytes={}", &raw[6..]),
        _ => raw.to_string(),
    };
    // Several ranges: serve the first, as actix-files and most servers do.
    match normalized.parse::<Range>() {
        Ok(Range::Bytes(specs)) => match specs.first().map(|s| s.to_satisfiable_range(size)) {
            Some(Some((start, end))) => Wanted::Part { start, end },
            _ => Wanted::Unsatisfiable,
        },
        Ok(Range::Unregistered(..)) => Wanted::All,
        // actix drops invalid specs; a `bytes` range left with none was invalid throughout.
        Err(_) if normalized.starts_with("bytes=") => Wanted::Unsatisfiable,
        Err(_) => Wanted::All,
    }
}

/// Streams blob `digest` (of `size` bytes). `headers` adds the caller's own headers.
pub async fn serve(
    req: &HttpRequest,
    storage: &Storage,
    digest: &Digest,
    size: u64,
    content_type: &str,
    headers: impl FnOnce(&mut HttpResponseBuilder),
) -> AppResult<HttpResponse> {
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::ACCEPT_RANGES, "bytes"));
    headers(&mut resp);
    let (start, len) = match wanted(crate::http::header_str(req, header::RANGE.as_str()), size) {
        Wanted::Unsatisfiable => {
            return Ok(resp
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .insert_header(ContentRange(ContentRangeSpec::Bytes {
                    range: None,
                    instance_length: Some(size),
                }))
                .finish())
        }
        Wanted::All => (0, size),
        Wanted::Part { start, end } => {
            resp.status(StatusCode::PARTIAL_CONTENT)
                .insert_header(ContentRange(ContentRangeSpec::Bytes {
                    range: Some((start, end)),
                    instance_length: Some(size),
                }));
            (start, end - start + 1)
        }
    };
    resp.content_type(content_type);
    if req.method() == Method::HEAD {
        // actix drains a HEAD response's body and discards it: a blob stream here would read the
        // whole blob for nothing (clients HEAD every layer before pushing it).
        let nothing = futures::stream::empty::<Result<actix_web::web::Bytes, std::io::Error>>();
        return Ok(resp.body(SizedStream::new(len, nothing)));
    }
    // On a connection that can send files itself, and a driver that keeps the blob in a file:
    // sent by the connection itself, with no buffer in this process (see `net::conn`).
    if let Some(slot) = req.conn_data::<HandoffSlot>().filter(|_| len > 0) {
        if let Some(send) = storage.sendable_blob(digest, start, len).await? {
            return Ok(resp.no_chunking(len).body(Handoff::new(slot.clone(), send)));
        }
    }
    let body = storage.serve_blob(digest, start, len, size).await?;
    Ok(resp.body(SizedStream::new(len, body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(range: &str) -> Wanted {
        wanted(Some(range), 100)
    }

    #[test]
    fn ranges() {
        assert_eq!(wanted(None, 100), Wanted::All);
        assert_eq!(with("bytes=0-9"), Wanted::Part { start: 0, end: 9 });
        assert_eq!(with("bytes=90-"), Wanted::Part { start: 90, end: 99 });
        assert_eq!(with("bytes=-10"), Wanted::Part { start: 90, end: 99 });
        // Docker 1.x: one past the last byte.
        assert_eq!(with("bytes=50-100"), Wanted::Part { start: 50, end: 99 });
        assert_eq!(with("bytes=100-"), Wanted::Unsatisfiable);
        assert_eq!(with("bytes=-0"), Wanted::Unsatisfiable);
        assert_eq!(with("bytes=5-1"), Wanted::Unsatisfiable, "invalid: 416");
        assert_eq!(with("bytes=500-0"), Wanted::Unsatisfiable, "invalid: 416");
        assert_eq!(with("bytes=x"), Wanted::Unsatisfiable, "invalid: 416");
        assert_eq!(with("pages=1-2"), Wanted::All, "other units: ignored");
        assert_eq!(with("bytes=0-1,5-6"), Wanted::Part { start: 0, end: 1 });
        // Units compare case-insensitively (RFC 9110 §14.1): `Bytes=` is a byte range too.
        assert_eq!(with("Bytes=0-9"), Wanted::Part { start: 0, end: 9 });
        assert_eq!(with("BYTES=500-0"), Wanted::Unsatisfiable);
        assert_eq!(with("bytes=99999999999999999999999-"), Wanted::Unsatisfiable);
        assert_eq!(
            wanted(Some("bytes=0-"), 0),
            Wanted::Unsatisfiable,
            "an empty blob has no byte 0"
        );
    }
}
