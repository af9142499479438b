//! Backups of the live index (`GET /api/v1/backup`, `skiff backup DIR`): the trees are read at
//! one point in time into a nameless scratch file beside the index (changes wait only for that
//! local copy, not for the client), which is then sent. Admins only.

use super::Actor;
use crate::error::{AppError, AppResult};
use crate::index::backup::Manifest;
use crate::state::AppState;
use crate::storage::local::Scratch;
use std::io::Write;

/// The manifest and the tree files, one after the other, ready to be read from the start.
pub struct Taken {
    pub manifest: Manifest,
    pub files: Scratch,
}

pub async fn take(state: &AppState, actor: &Actor) -> AppResult<Taken> {
    actor.require_admin()?;
    let index = super::repos::index(state)?.clone();
    let dir = state.config.data_dir.clone();
    let started = std::time::Instant::now();
    let taken = index
        .run(move |ix| {
            let mut files = Scratch::new_in(&dir)?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, &mut files);
            let manifest = ix.export(&mut out)?;
            out.flush()?;
            drop(out);
            files.rewind()?;
            Ok(Taken { manifest, files })
        })
        .await
        .map_err(|e| AppError::internal(format!("backup failed: {e}")))?;
    let m = &taken.manifest;
    log::info!(
        "index backup taken by {} in {} ms: {} trees, {} entries, {} bytes",
        actor.name(),
        started.elapsed().as_millis(),
        m.files.len(),
        m.files.iter().map(|f| f.entries).sum::<u64>(),
        m.files.iter().map(|f| f.bytes).sum::<u64>()
    );
    Ok(taken)
}
