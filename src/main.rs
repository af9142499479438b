//! The `skiff` command: `serve` runs the server; `user ...` manages accounts offline (sled allows
//! one process per database, so these work on a stopped server's data); `config` shows or checks
//! the configuration.

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
    /// Manage user accounts (the server must be stopped: sled holds one process per database).
    #[command(subcommand)]
    User(UserCommand),
    /// Delete blobs nothing refers to any more (run it with the server stopped).
    Gc {
        /// Only report what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show the effective configuration or check it.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account; the password is read from standard input (never from arguments).
    Add {
        name: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        admin: bool,
        /// Create it inactive (an admin activates it later).
        #[arg(long)]
        inactive: bool,
    },
    /// Set a new password, read from standard input.
    Passwd { name: String },
    /// List accounts.
    List,
    /// Activate an account (or deactivate it with --off).
    Activate {
        name: String,
        #[arg(long)]
        off: bool,
    },
    /// Make an account admin (or revoke it with --off).
    Admin {
        name: String,
        #[arg(long)]
        off: bool,
    },
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
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config),
        Command::User(cmd) => user(config, cmd),
        Command::Gc { dry_run } => gc(config, dry_run),
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
    // Holding the index lock guarantees a standalone server is not running meanwhile.
    let _lock = if config.standalone {
        Some(Index::open(&config.index_db_path(), config.index.pbkdf2_rounds).map_err(|e| e.to_string())?)
    } else {
        eprintln!("skiff: standalone = false: make sure this registry is stopped while gc runs");
        None
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let report = rt.block_on(async {
        let storage = skiff::storage::Storage::existing_fs(&config.storage_root())
            .await
            .map_err(|e| e.to_string())?;
        skiff::registry::gc::collect(&storage, dry_run)
            .await
            .map_err(|e| format!("gc failed: {e}"))
    })?;
    for m in &report.unparsable {
        eprintln!("skiff: gc: manifest {m} does not parse: kept every blob it names; check it");
    }
    println!(
        "{} {} blobs ({} bytes), kept {}",
        if dry_run { "would remove" } else { "removed" },
        report.removed,
        report.removed_bytes,
        report.kept
    );
    Ok(())
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

fn user(config: Config, cmd: UserCommand) -> Result<(), String> {
    let index = Index::open(&config.index_db_path(), config.index.pbkdf2_rounds).map_err(|e| e.to_string())?;
    let show = |u: skiff::index::User| {
        println!(
            "{}\t{}\t{}\t{}",
            u.username,
            u.email,
            if u.active { "active" } else { "inactive" },
            if u.admin { "admin" } else { "user" }
        )
    };
    let result = match cmd {
        UserCommand::Add {
            name,
            email,
            admin,
            inactive,
        } => {
            let pw = read_password()?;
            index.create_user(&name, &pw, &email, !inactive, admin).map(show)
        }
        UserCommand::Passwd { name } => {
            let pw = read_password()?;
            index.set_password(&name, &pw).map(show)
        }
        UserCommand::List => index.users().map(|us| us.into_iter().for_each(show)),
        UserCommand::Activate { name, off } => index.set_active(&name, !off).map(show),
        UserCommand::Admin { name, off } => index.set_admin(&name, !off).map(show),
    };
    result.map_err(|e| e.message)?;
    // Durable before we say it is done.
    index_flush(&index)
}

fn index_flush(index: &Index) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(index.flush()).map_err(|e| e.message)
}
