//! Skiff: a private Docker registry and its index in one process.
//!
//! `run` builds the same app for the binary and the tests: it opens the index (sled) when this
//! process has the index role, the storage driver when it has the registry role, binds, prints
//! the address it listens on, and serves until a signal arrives.

pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod digest;
pub mod error;
pub mod http;
pub mod index;
pub mod manage;
pub mod metrics;
pub mod names;
pub mod net;
pub mod registry;
pub mod state;
pub mod storage;
pub mod webhooks;

#[cfg(test)]
mod fuzz_tests;

use actix_web::{web, App};
use config::Config;
use state::AppState;
use std::io::Write;
use std::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Index(#[from] index::OpenError),
    #[error(transparent)]
    Storage(#[from] storage::layout::LayoutError),
    #[error("cannot read or create the token signing key {0}: {1}")]
    Key(String, #[source] std::io::Error),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, #[source] std::io::Error),
    #[error("{0}")]
    Delegate(String),
    #[error("server error: {0}")]
    Serve(#[source] std::io::Error),
}

/// Opens what this process's roles need: the index when standalone, storage when a registry,
/// and the client of the external index when delegated.
pub async fn open_state(config: Config) -> Result<AppState, StartError> {
    // The metrics recorder, before anything is counted.
    metrics::handle();
    let index = if config.standalone {
        Some(index::Index::open(&config.index_db_path(), config.index.pbkdf2_rounds)?)
    } else {
        None
    };
    let storage =
        storage::Storage::open_configured(&config.storage, &config.storage_root(), &config.s3_cache_dir()).await?;
    let signer = if config.standalone {
        let path = config.jwt_key_path();
        Some(auth::jwt::Signer::load_or_create(&path).map_err(|e| StartError::Key(path.display().to_string(), e))?)
    } else {
        None
    };
    let jwks_url =
        (!config.standalone).then(|| format!("{}/v2/token/keys", config.index_endpoint.trim_end_matches('/')));
    let mut gate = auth::Gate::new(index.clone())
        .with_tokens(
            signer,
            config.v2_public_key(),
            jwks_url,
            &config.v2.service,
            std::time::Duration::from_secs(config.delegate.timeout_secs),
        )
        .with_limits(&config.limits, config.trust_forwarded_headers);
    if !config.standalone {
        let remote = auth::remote::RemoteIndex::new(&config, gate.stats()).map_err(StartError::Delegate)?;
        gate.set_remote(remote);
    }
    Ok(AppState::new(config, gate, index, storage))
}

pub async fn run(config: Config) -> Result<(), StartError> {
    let listener = TcpListener::bind(config.listen_addr()).map_err(|e| StartError::Bind(config.listen.clone(), e))?;
    net::set_send_timeout(&listener, config.limits.send_timeout())
        .map_err(|e| StartError::Bind(config.listen.clone(), e))?;
    let addr = listener.local_addr().map_err(StartError::Serve)?;
    let state = web::Data::new(open_state(config).await?);
    if let Some(ix) = state.index.as_ref() {
        let ix = ix.clone();
        let purged = ix.run(|ix| ix.purge_expired_tokens()).await.unwrap_or(0);
        log::debug!("purged {purged} expired tokens");
    }
    spawn_upload_sweeper(state.clone());
    http::metrics::spawn_upkeep(state.clone());
    spawn_gc_schedule(state.clone());
    spawn_retention_schedule(state.clone());
    spawn_session_pruner(state.clone());
    spawn_pull_flusher(state.clone());
    // Pending deliveries of the last run are queued before any request can add new ones.
    state.webhooks.start().await;
    // The operator's socket, beside the index this process holds locked (so a socket file
    // found there is a stale one).
    let local = match state.config.standalone {
        true => Some(state.config.local_socket_path()),
        false => None,
    };
    let server = serve(state.clone(), Some(listener), local.as_deref())?;
    // Tests and scripts read this line to learn the port when listening on :0.
    println!("skiff listening on http://{addr}");
    for line in startup_notes(&state, addr).await {
        println!("skiff: {line}");
    }
    let _ = std::io::stdout().flush();
    let result = server.await;
    state.audit.settle().await;
    if let Some(ix) = state.index.as_ref() {
        // The pulls counted since the last flush.
        state.pulls.flush(ix).await;
        let _ = ix.flush().await;
    }
    result.map_err(StartError::Serve)
}

/// The server of a stopped registry's data, on a local socket only, for one CLI command: the
/// CLI's management commands always go through the management API, to the running server
/// when there is one and to this one otherwise. Returns once it serves; the caller stops it.
pub async fn run_offline(config: Config, socket: &std::path::Path) -> Result<actix_server::Server, StartError> {
    let state = web::Data::new(open_state(config).await?);
    serve(state, None, Some(socket))
}

fn serve(
    state: web::Data<AppState>,
    listener: Option<TcpListener>,
    socket: Option<&std::path::Path>,
) -> Result<actix_server::Server, StartError> {
    let local = match socket {
        Some(path) => {
            Some(storage::local::bind_local(path).map_err(|e| StartError::Bind(path.display().to_string(), e))?)
        }
        None => None,
    };
    net::server::start(listener, local, move || {
        App::new()
            .wrap(http::errors::json_errors())
            .wrap(actix_web::middleware::Logger::default())
            .wrap(actix_web::middleware::from_fn(http::metrics::track))
            .configure(|cfg| http::configure(cfg, state.clone()))
    })
    .map_err(StartError::Serve)
}

/// What an operator should know at start-up: who can reach the server, who can sign up, and
/// how to make the first administrator.
async fn startup_notes(state: &AppState, addr: std::net::SocketAddr) -> Vec<String> {
    let mut notes = Vec::new();
    if addr.ip().is_unspecified() {
        notes.push(format!(
            "listening on every interface (port {}): anyone who can reach this host can connect; set `listen` to narrow it",
            addr.port()
        ));
    }
    let Some(ix) = &state.index else {
        return notes;
    };
    notes.push(match state.config.index.registration {
        config::Registration::Open => {
            "registration = \"open\": anyone who can reach the server can create an account".to_string()
        }
        config::Registration::Activation => {
            "registration = \"activation\": new accounts wait for an admin to activate them".to_string()
        }
        config::Registration::Closed => "registration = \"closed\": only an operator creates accounts".to_string(),
    });
    let has_admin = ix
        .run(|ix| ix.users())
        .await
        .map(|users| users.iter().any(|u| u.admin && u.active))
        .unwrap_or(true);
    if !has_admin {
        notes.push(
            "no administrator yet: on this host, run `echo 'PASSWORD' | skiff user add NAME --email EMAIL --admin`"
                .to_string(),
        );
    }
    notes
}

/// Runs a garbage collection every `gc.interval_secs`, when set (skipped while one runs).
fn spawn_gc_schedule(state: web::Data<AppState>) {
    if !state.config.registry {
        return;
    }
    every(state.config.gc.interval_secs, move || {
        let state = state.clone();
        async move {
            if let Err(e) = manage::gc::start(state, &manage::Actor::Schedule, false) {
                log::info!("scheduled gc skipped: {e}");
            }
        }
    });
}

/// Runs retention every `retention.interval_secs`, when set (skipped while one runs).
fn spawn_retention_schedule(state: web::Data<AppState>) {
    if !state.config.registry || state.config.retention.policies.is_empty() {
        return;
    }
    every(state.config.retention.interval_secs, move || {
        let state = state.clone();
        async move {
            if let Err(e) = manage::retention::run(&state, None, &manage::Actor::Schedule, false).await {
                log::warn!("scheduled retention: {e}");
            }
        }
    });
}

/// Removes expired web UI sessions every hour (a session is checked for expiry on each use
/// too; this reclaims the ones nobody uses again).
fn spawn_session_pruner(state: web::Data<AppState>) {
    let Some(index) = state.index.clone() else { return };
    every(3600, move || {
        let index = index.clone();
        async move {
            match index.write(|ix| ix.prune_sessions()).await {
                Ok(0) => {}
                Ok(n) => log::info!("removed {n} expired web UI sessions"),
                Err(e) => log::warn!("pruning sessions: {e}"),
            }
        }
    });
}

/// Runs `job` every `secs` seconds, the first time one period after start; 0 = never.
fn every<F, Fut>(secs: u64, job: F)
where
    F: Fn() -> Fut + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    if secs == 0 {
        return;
    }
    actix_web::rt::spawn(async move {
        let period = std::time::Duration::from_secs(secs);
        let mut tick = actix_web::rt::time::interval_at(actix_web::rt::time::Instant::now() + period, period);
        loop {
            tick.tick().await;
            job().await;
        }
    });
}

/// Adds the pulls counted in memory to the index every few seconds (see `manage::pulls`).
fn spawn_pull_flusher(state: web::Data<AppState>) {
    if state.index.is_none() {
        return;
    }
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(manage::pulls::FLUSH_EVERY);
        loop {
            tick.tick().await;
            if let Some(ix) = state.index.as_ref() {
                state.pulls.flush(ix).await;
            }
        }
    });
}

/// Removes abandoned upload sessions now and then (and once at start-up).
fn spawn_upload_sweeper(state: web::Data<AppState>) {
    if !state.config.registry {
        return;
    }
    let max_idle = state.config.v2.upload_expiry_secs;
    let period = std::time::Duration::from_secs((max_idle / 2).clamp(1, 60));
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(period);
        loop {
            tick.tick().await;
            if let Err(e) = state.uploads.sweep(max_idle).await {
                log::warn!("upload sweep failed: {e}");
            }
        }
    });
}
