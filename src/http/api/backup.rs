//! `GET /api/v1/backup`: a backup of the index, admins only. The body is the manifest as one
//! JSON line, then each tree file's bytes in the manifest's order (`bytes` long each); the
//! Content-Length is exact. `skiff backup DIR` reads it into a directory.

use super::ApiCaller;
use crate::error::{AppError, AppResult};
use crate::manage::backup;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use std::io::Read;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/backup", web::get().to(take));
}

const CHUNK: usize = 256 << 10;

async fn take(state: web::Data<AppState>, ApiCaller(actor): ApiCaller) -> AppResult<HttpResponse> {
    let taken = backup::take(&state, &actor).await?;
    let mut head = serde_json::to_vec(&taken.manifest)?;
    head.push(b'\n');
    let length = head.len() as u64 + taken.manifest.files.iter().map(|f| f.bytes).sum::<u64>();
    let first = futures::stream::once(async move { Ok::<_, AppError>(Bytes::from(head)) });
    // The files, read a chunk at a time on the blocking pool.
    let rest = futures::stream::try_unfold(Some(taken.files), |files| async move {
        let Some(mut files) = files else { return Ok(None) };
        let (chunk, files) = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0; CHUNK];
            let n = files.read(&mut buf)?;
            buf.truncate(n);
            Ok::<_, std::io::Error>((buf, files))
        })
        .await
        .map_err(AppError::internal)??;
        Ok(match chunk.is_empty() {
            true => None,
            false => Some((Bytes::from(chunk), Some(files))),
        })
    });
    use futures::StreamExt;
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header(("Cache-Control", "no-store"))
        .no_chunking(length)
        .streaming(first.chain(rest)))
}
