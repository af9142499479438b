//! The `skiff` command: `serve` runs the server; `user ...`, `repo ...` and `token ...` manage
//! accounts, repositories and access tokens through the management API (the running server's,
//! over its local socket, or one started for the command on a stopped server's data); `gc`
//! removes unreferenced blobs, `retention` deletes the tags the retention policies do not
//! keep, and `check` verifies the store (`--repair` quarantines corrupt blobs); `backup` and
//! `restore` save and bring back the index; `config` shows or checks the configuration.

mod cli;

use clap::{Parser, Subcommand};
use skiff::config::Config;
use skiff::index::Index;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "skiff",
    version,
    about = "A private Docker registry and its index in one binary"
)]
struct Cli {
    /// Config file (default: ./registry.toml if present, else built-in defaults).
    #[arg(long, global = true, env = "SKIFF_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default command).
    Serve,
    /// Manage user accounts, on the running server (through its local socket) or, when none
    /// runs, on its data.
    #[command(subcommand)]
    User(cli::UserCommand),
    /// Manage repositories: list, delete, visibility, description, collaborators.
    #[command(subcommand)]
    Repo(cli::RepoCommand),
    /// Manage access tokens and robot accounts: create (the secret is shown once), list, rm.
    #[command(subcommand)]
    Token(cli::TokenCommand),
    /// Show the audit log, newest first: who pushed, deleted or changed what, when, from where.
    Audit {
        /// Only entries by this account or about it.
        #[arg(long)]
        user: Option<String>,
        /// Only entries about this repository.
        #[arg(long)]
        repo: Option<String>,
        /// Only this action (`tag.push`) or family (`user`).
        #[arg(long)]
        action: Option<String>,
        /// At most this many entries.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete blobs nothing refers to any more, beside a running server (through its local
    /// socket) or on a stopped one's data.
    Gc {
        /// Only report what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show storage usage: the store, each namespace (with its quota) and repository, unique
    /// versus shared bytes.
    Usage {
        /// Print JSON (the API's answer).
        #[arg(long)]
        json: bool,
    },
    /// Delete the tags the `[[retention.policy]]` tables of registry.toml do not keep (and the
    /// manifests left untagged), on the running server or a stopped one's data.
    Retention {
        /// Only list what a run would delete.
        #[arg(long)]
        dry_run: bool,
    },
    /// Verify every stored blob against its digest and every tag, link and manifest reference.
    ///
    /// Prints one line per problem (kind, storage key, what is wrong) and a summary. Exit
    /// status: 0 nothing wrong, 1 problems found, 2 the check could not run. Checking only
    /// reads, so it may run beside a live server; --repair needs the server stopped.
    Check {
        /// Move corrupt blobs (content not matching their digest) to the quarantine
        /// (`_quarantine/` in storage) instead of serving them: the registry then answers 404 for
        /// them and a client can push them again; nothing is deleted. Dangling tags, links and
        /// manifests are only reported: deciding what they should point at is the owner's call.
        #[arg(long)]
        repair: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Back up the index (accounts, repositories, tokens) at one point in time into a new
    /// directory, beside a running server (through its local socket) or on a stopped one's data.
    /// The registry's files are backed up separately (see the README).
    Backup {
        /// Where to write it: must not exist, or be empty.
        dir: PathBuf,
    },
    /// Replace the index with a backup; the server must be stopped. Every file is verified
    /// first; the index before is kept beside it as `v1.before-restore-<time>`.
    Restore { dir: PathBuf },
    /// Show the effective configuration or check it.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (defaults + file + SKIFF_* variables) as TOML.
    Show,
    /// Validate the configuration and exit.
    Check,
}

fn config_path(cli: &Cli) -> Option<PathBuf> {
    if let Some(p) = &cli.config {
        return Some(p.clone());
    }
    let local = PathBuf::from("registry.toml");
    local.exists().then_some(local)
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::new().filter_or("SKIFF_LOG", "info")).init();
    let cli = Cli::parse();
    let config = match Config::load(config_path(&cli).as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skiff: {e}");
            return ExitCode::from(2);
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Check { repair, json } = command {
        return check(config, repair, json);
    }
    let result = match command {
        Command::Serve => serve(config),
        Command::User(cmd) => cli::user(&config, cmd, read_password),
        Command::Repo(cmd) => cli::repo(&config, cmd),
        Command::Token(cmd) => cli::token(&config, cmd),
        Command::Audit {
            user,
            repo,
            action,
            limit,
            json,
        } => cli::audit(&config, user, repo, action, limit, json),
        Command::Gc { dry_run } => gc(config, dry_run),
        Command::Backup { dir } => cli::backup(&config, &dir),
        Command::Restore { dir } => cli::restore(&config, &dir),
        Command::Usage { json } => cli::usage(&config, json),
        Command::Retention { dry_run } => cli::retention(&config, dry_run),
        Command::Check { .. } => Ok(()),
        Command::Config(ConfigCommand::Show) => {
            print!("{}", config.to_toml());
            Ok(())
        }
        Command::Config(ConfigCommand::Check) => {
            println!("configuration is valid");
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skiff: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> Result<(), String> {
    actix_web::rt::System::new()
        .block_on(skiff::run(config))
        .map_err(|e| e.to_string())
}

fn gc(config: Config, dry_run: bool) -> Result<(), String> {
    if config.standalone {
        // Through the management API: the running server's, or one started on its data.
        return cli::gc(&config, dry_run);
    }
    // A registry-only process has no API of its own: its storage is collected here, with the
    // same rules (a server running on it meanwhile keeps its grace period, not its pins).
    eprintln!("skiff: standalone = false: make sure this registry is stopped while gc runs");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let report = rt.block_on(async {
        let storage = skiff::storage::Storage::existing_configured(&config.storage, &config.storage_root())
            .await
            .map_err(|e| e.to_string())?;
        let opts = skiff::registry::gc::Options {
            dry_run,
            grace_secs: config.gc.grace_secs,
        };
        skiff::registry::gc::collect(&storage, opts, |_| {})
            .await
            .map_err(|e| format!("gc failed: {e}"))
    })?;
    println!(
        "{} {} blobs ({} bytes), kept {}",
        if dry_run { "would remove" } else { "removed" },
        report.removed,
        report.removed_bytes,
        report.kept
    );
    Ok(())
}

/// `skiff check`: 0 clean, 1 problems, 2 could not run.
fn check(config: Config, repair: bool, json: bool) -> ExitCode {
    match run_check(config, repair, json) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("skiff: check: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the check and prints the report; true when nothing is wrong.
fn run_check(config: Config, repair: bool, json: bool) -> Result<bool, String> {
    use skiff::registry::check;
    let root = config.storage_root();
    if !config.storage.is_s3() && !root.is_dir() {
        return Err(format!("no registry storage at {}", root.display()));
    }
    // A standalone server holds the index lock: with it free, nothing writes meanwhile (and
    // --repair keeps it for the whole run, as gc does); with it held, checking is read-only.
    let (live, _lock) = if config.standalone {
        match Index::try_lock(&config.index_db_path()).map_err(|e| e.to_string())? {
            Some(lock) => (false, repair.then_some(lock)),
            None => (true, None),
        }
    } else {
        if repair {
            eprintln!("skiff: standalone = false: make sure this registry is stopped while check --repair runs");
        }
        (!repair, None)
    };
    if live && repair {
        return Err(
            "--repair needs the server stopped (it holds the index lock); `skiff check` without --repair works beside it"
                .into(),
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let terminal = std::io::stderr().is_terminal() && !json;
    let mut last = std::time::Instant::now();
    let mut shown = false;
    let mut progress = |p: check::Progress| {
        // A progress line for long runs, at most a few times a second, only on a terminal.
        if terminal && last.elapsed() >= std::time::Duration::from_millis(250) {
            last = std::time::Instant::now();
            shown = true;
            eprint!(
                "\rchecking blobs: {}/{} ({} of {} MiB)   ",
                p.blobs_done,
                p.blobs,
                p.bytes_done >> 20,
                p.bytes >> 20
            );
        }
    };
    let (report, location) = rt.block_on(async {
        let storage = skiff::storage::Storage::existing_configured(&config.storage, &root)
            .await
            .map_err(|e| e.to_string())?;
        let opts = check::Options { repair, live };
        let report = check::run(&storage, &opts, &mut progress)
            .await
            .map_err(|e| format!("stopped: {e}"))?;
        Ok::<_, String>((report, storage.location()))
    })?;
    if shown {
        eprint!("\r\x1b[K");
    }
    let clean = report.problems.is_empty();
    if json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
        return Ok(clean);
    }
    for p in &report.problems {
        println!("{} {}: {}", p.kind.name(), p.key, p.what);
    }
    for n in &report.notes {
        println!("note: {} {}: {}", n.kind.name(), n.key, n.what);
    }
    for q in &report.quarantined {
        println!("quarantined {}: {} -> {location}/{}", q.digest, q.from, q.to);
    }
    let c = &report.counts;
    println!(
        "checked {} blobs ({} bytes), {} v1 images ({} in progress), {} v1 tags, {} v1 memberships, {} manifests, {} v2 tags, {} blob links{}: {}",
        c.blobs,
        c.blob_bytes,
        c.v1_images,
        c.v1_in_progress,
        c.v1_tags,
        c.v1_members,
        c.manifests,
        c.v2_tags,
        c.blob_links,
        if live { " (server running: read-only)" } else { "" },
        match report.problems.len() {
            0 => "no problems".to_string(),
            1 => "1 problem".to_string(),
            n => format!("{n} problems"),
        }
    );
    Ok(clean)
}

fn read_password() -> Result<String, String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password: ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read password: {e}"))?;
    let pw = line.trim_end_matches(['\n', '\r']).to_string();
    if pw.is_empty() {
        return Err("no password on standard input (e.g. `echo 'secret' | skiff user add ...`)".into());
    }
    Ok(pw)
}
