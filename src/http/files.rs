//! Serving stored files (v1 layers, v2 blobs) with `Range`: one satisfiable range gets 206 and
//! `Content-Range`, an unsatisfiable one 416 with `Content-Range: bytes */size`, a malformed
//! header is ignored (RFC 9110 §14.2). Docker 1.x resumes with `bytes=<received>-<total>`, one
//! past the last byte, so the end is clamped to the size.

use crate::error::{AppError, AppResult};
use crate::storage::reader::FileStream;
use actix_web::body::SizedStream;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use std::path::Path;

/// `(start, length)` of the range asked for, `Err` if it cannot be satisfied, `None` for all.
fn requested_range(req: &HttpRequest, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(raw) = req.headers().get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = raw.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    // Several ranges: serve the first, as actix-files and most servers do.
    let first = spec.split(',').next().unwrap_or("").trim();
    let Some((a, b)) = first.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        // Suffix range: the last `b` bytes.
        let Ok(n) = b.parse::<u64>() else { return Ok(None) };
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size.saturating_sub(1))
    } else {
        let Ok(start) = a.parse::<u64>() else { return Ok(None) };
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            match b.parse::<u64>() {
                Ok(e) if e >= start => e.min(size.saturating_sub(1)),
                _ => return Ok(None),
            }
        };
        (start, end)
    };
    if size == 0 || start >= size {
        return Err(());
    }
    Ok(Some((start, end - start + 1)))
}

/// Streams the file at `path` (of `size` bytes). `headers` adds the caller's own headers.
pub async fn serve(
    req: &HttpRequest,
    path: &Path,
    size: u64,
    content_type: &str,
    headers: impl FnOnce(&mut HttpResponseBuilder),
) -> AppResult<HttpResponse> {
    let range = requested_range(req, size);
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::ACCEPT_RANGES, "bytes"));
    headers(&mut resp);
    let (start, len) = match range {
        Err(()) => {
            return Ok(resp
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
                .finish())
        }
        Ok(None) => (0, size),
        Ok(Some((start, len))) => {
            resp.status(StatusCode::PARTIAL_CONTENT).insert_header((
                header::CONTENT_RANGE,
                format!("bytes {start}-{}/{size}", start + len - 1),
            ));
            (start, len)
        }
    };
    resp.content_type(content_type);
    if req.method() == actix_web::http::Method::HEAD {
        // actix drains a HEAD response's body and discards it: a file stream here would read the
        // whole file for nothing (clients HEAD every layer before pushing it).
        let nothing = futures::stream::empty::<Result<actix_web::web::Bytes, std::io::Error>>();
        return Ok(resp.body(SizedStream::new(len, nothing)));
    }
    let p = path.to_path_buf();
    let file = tokio::task::spawn_blocking(move || std::fs::File::open(p))
        .await
        .map_err(AppError::internal)?
        .map_err(|e| {
            log::error!("stored file {} unreadable: {e}", path.display());
            AppError::internal("stored file unreadable")
        })?;
    Ok(resp.body(SizedStream::new(len, FileStream::new(file, start, len))))
}
