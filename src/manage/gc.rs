//! Garbage collection as a service of the running server: one run at a time, in the
//! background, its progress and last result kept for the API, the CLI and the UI. A run also
//! removes abandoned upload sessions (idle past `v2.upload_expiry_secs`) and their bytes.

use super::Actor;
use crate::error::{AppError, AppResult};
use crate::registry::gc::{self, GcError, Options, Progress, Report};
use crate::state::AppState;
use actix_web::web;
use serde::Serialize;
use std::sync::Mutex;

#[derive(Default)]
pub struct GcService {
    status: Mutex<Status>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub running: Option<Running>,
    pub last: Option<Finished>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Running {
    pub dry_run: bool,
    pub started: u64,
    pub by: String,
    pub progress: Progress,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finished {
    pub started: u64,
    pub finished: u64,
    pub by: String,
    /// `None` when the run failed (`error` says why).
    pub report: Option<Report>,
    /// Abandoned upload sessions removed (real runs only).
    pub uploads_removed: usize,
    pub error: Option<String>,
}

impl GcService {
    pub fn status(&self) -> Status {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn update(&self, f: impl FnOnce(&mut Status)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }
}

/// What the last run (or preview) freed, or would free, of one repository.
#[derive(Debug, Clone, Serialize)]
pub struct RepositoryView {
    pub dry_run: bool,
    pub started: u64,
    pub finished: u64,
    #[serde(flatten)]
    pub freed: gc::RepositoryFreed,
}

/// The last run's bucket of repository `name`: for administrators, and for whoever manages
/// the repository (only administrators start runs). 404 before any run.
pub async fn for_repository(state: &AppState, actor: &Actor, name: &str) -> AppResult<RepositoryView> {
    let repo = crate::names::RepoName::parse(name)?;
    if !actor.is_admin() {
        super::repos::managed(state, actor, name).await?;
    }
    let last = state.gc.status().last;
    let Some((last, report)) = last.as_ref().and_then(|l| Some((l, l.report.as_ref()?))) else {
        return Err(AppError::not_found(
            "No garbage collection has finished yet: an administrator starts a preview with POST /api/v1/gc {\"dry_run\": true}",
        ));
    };
    Ok(RepositoryView {
        dry_run: report.dry_run,
        started: last.started,
        finished: last.finished,
        freed: report.for_repository(repo.as_str()),
    })
}

pub fn status(state: &AppState, actor: &Actor) -> AppResult<Status> {
    actor.require_admin()?;
    Ok(state.gc.status())
}

/// Starts a run in the background; 409 while one runs.
pub fn start(state: web::Data<AppState>, actor: &Actor, dry_run: bool) -> AppResult<Status> {
    actor.require_admin()?;
    if !state.config.registry {
        return Err(AppError::not_found(
            "This server has no registry storage (registry = false)",
        ));
    }
    let started = crate::clock::now_secs();
    let by = actor.name().to_string();
    let mut busy = false;
    state.gc.update(|s| match s.running {
        Some(_) => busy = true,
        None => {
            s.running = Some(Running {
                dry_run,
                started,
                by: by.clone(),
                progress: Progress::default(),
            })
        }
    });
    if busy {
        return Err(AppError::conflict(
            "A garbage collection is running: see GET /api/v1/gc",
        ));
    }
    let task = state.clone();
    let spawned = std::thread::Builder::new().name("skiff-gc".into()).spawn(move || {
        let finished = in_background(&task, dry_run, started, by);
        task.gc.update(|s| {
            s.running = None;
            s.last = Some(finished);
        });
    });
    if let Err(e) = spawned {
        state.gc.update(|s| s.running = None);
        return Err(AppError::internal(format!("cannot start the collection: {e}")));
    }
    Ok(state.gc.status())
}

/// Runs a collection on this thread, below the threads that serve requests: on a busy machine
/// it takes the CPU pushes and pulls leave (on 2 cores a run at the same priority took a
/// quarter of a concurrent push's throughput). The runtime's blocking threads, which do the
/// storage calls, are spawned from this one and inherit its priority.
fn in_background(state: &AppState, dry_run: bool, started: u64, by: String) -> Finished {
    lower_this_threads_priority();
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(run(state, dry_run, started, by)),
        Err(e) => Finished {
            started,
            finished: crate::clock::now_secs(),
            by,
            report: None,
            uploads_removed: 0,
            error: Some(format!("cannot start the collection: {e}")),
        },
    }
}

/// nice 10 for the calling thread only (Linux keeps a nice value per thread).
fn lower_this_threads_priority() {
    // SAFETY: plain system calls on the calling thread's own id; no memory is passed.
    let done = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10)
    };
    if done != 0 {
        log::debug!("gc: could not lower its priority: {}", std::io::Error::last_os_error());
    }
}

async fn run(state: &AppState, dry_run: bool, started: u64, by: String) -> Finished {
    let clock = std::time::Instant::now();
    let uploads_removed = match dry_run {
        true => Ok(0),
        false => state.uploads.sweep(state.config.v2.upload_expiry_secs).await,
    };
    let opts = Options {
        dry_run,
        grace_secs: state.config.gc.grace_secs,
    };
    let result = gc::collect(&state.storage, opts, |p| {
        state.gc.update(|s| {
            if let Some(r) = s.running.as_mut() {
                r.progress = p;
            }
        })
    })
    .await;
    let error = match (&result, &uploads_removed) {
        (Err(GcError::Busy), _) => Some("another collection was running".to_string()),
        (Err(GcError::Io(e)), _) => Some(format!("stopped: {e}")),
        (_, Err(e)) => Some(format!("upload sessions: {e}")),
        _ => None,
    };
    if let Some(e) = &error {
        log::error!("gc: {e}");
    }
    let report = result.ok();
    if !dry_run {
        // Stale links went with their blobs: namespace usage is counted afresh.
        state.quotas.forget().await;
    }
    if let Some(r) = &report {
        log::info!(
            "gc by {by}: {} {} blobs ({} bytes), kept {}",
            if dry_run { "would remove" } else { "removed" },
            r.removed,
            r.removed_bytes,
            r.kept
        );
    }
    // A preview frees nothing: it counts as a run, with no bytes freed.
    let freed = report.as_ref().map(|r| if dry_run { 0 } else { r.removed_bytes });
    crate::metrics::gc_finished(clock.elapsed().as_secs_f64(), freed);
    if !dry_run {
        crate::http::metrics::refresh_storage(&state.storage).await;
        let detail = serde_json::json!({
            "removed": report.as_ref().map(|r| r.removed),
            "removed_bytes": freed,
            "uploads_removed": uploads_removed.as_ref().ok(),
            "error": error,
        });
        let target = crate::audit::Target::named("storage").detail(detail);
        crate::audit::by_server(state, &by, crate::audit::Action::GcRun, target);
    }
    Finished {
        started,
        finished: crate::clock::now_secs(),
        by,
        report,
        uploads_removed: uploads_removed.unwrap_or(0),
        error,
    }
}
