//! The management commands (`skiff user ...`, `skiff repo ...`, `skiff token ...`): each is one
//! or a few calls of the management API (see `local`), printed for people (tab-separated lines
//! for accounts, tables with human sizes and ages for repositories and tokens) or as JSON.

mod backup;
mod local;
mod tokens;

pub use backup::{backup, restore};
pub use tokens::{run as token, TokenCommand};

use clap::Subcommand;
use serde_json::{json, Value};
use skiff::config::Config;

#[derive(Subcommand)]
pub enum UserCommand {
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
    /// Delete an account (refused while it has repositories, unless --delete-repositories).
    Rm {
        name: String,
        /// Delete its repositories with it (their blobs go at the next gc).
        #[arg(long)]
        delete_repositories: bool,
    },
}

#[derive(Subcommand)]
pub enum RepoCommand {
    /// List repositories with visibility, tags, size, last push, pulls and last pull.
    List {
        /// Only this namespace.
        #[arg(long)]
        namespace: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one repository (JSON).
    Show { name: String },
    /// Delete a repository: its tags, manifests and record (blobs go at the next gc).
    Rm { name: String },
    /// Make a repository private: only its owner, collaborators and admins see it.
    Private { name: String },
    /// Make a repository public.
    Public { name: String },
    /// Set a repository's description.
    Describe { name: String, description: String },
    /// Add or remove a collaborator (who may push).
    #[command(subcommand)]
    Collaborator(CollaboratorCommand),
    /// List a repository's tags (v1 and v2) with digest, size, platforms, push and pull times.
    Tags {
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a tag (both protocols' tags of that name); with --manifest, also the manifest
    /// (v1: the image) it points at and every other tag on it.
    Untag {
        name: String,
        tag: String,
        #[arg(long)]
        manifest: bool,
    },
}

#[derive(Subcommand)]
pub enum CollaboratorCommand {
    Add { name: String, user: String },
    Rm { name: String, user: String },
}

pub fn user(
    config: &Config,
    cmd: UserCommand,
    read_password: impl Fn() -> Result<String, String>,
) -> Result<(), String> {
    let api = local::Api::connect(config)?;
    let one = |u: &Value| {
        println!(
            "{}\t{}\t{}\t{}",
            u["username"].as_str().unwrap_or_default(),
            u["email"].as_str().unwrap_or_default(),
            if u["active"] == true { "active" } else { "inactive" },
            if u["admin"] == true { "admin" } else { "user" }
        )
    };
    match cmd {
        UserCommand::Add {
            name,
            email,
            admin,
            inactive,
        } => {
            let password = read_password()?;
            let body =
                json!({"username": name, "email": email, "password": password, "admin": admin, "active": !inactive});
            one(&api.call("POST", "/api/v1/users", Some(body))?);
        }
        UserCommand::Passwd { name } => {
            let password = read_password()?;
            api.call(
                "PUT",
                &format!("/api/v1/users/{name}/password"),
                Some(json!({"password": password})),
            )?;
            println!("password of {name} changed");
        }
        UserCommand::List => {
            for u in api.call("GET", "/api/v1/users", None)?.as_array().into_iter().flatten() {
                one(u);
            }
        }
        UserCommand::Activate { name, off } => {
            one(&api.call(
                "PUT",
                &format!("/api/v1/users/{name}/active"),
                Some(json!({"active": !off})),
            )?);
        }
        UserCommand::Admin { name, off } => {
            one(&api.call(
                "PUT",
                &format!("/api/v1/users/{name}/admin"),
                Some(json!({"admin": !off})),
            )?);
        }
        UserCommand::Rm {
            name,
            delete_repositories,
        } => {
            let fate = if delete_repositories { "delete" } else { "refuse" };
            let done = api.call("DELETE", &format!("/api/v1/users/{name}?repositories={fate}"), None)?;
            let repos = done["repositories_deleted"].as_array().map_or(0, Vec::len);
            println!("deleted {name} and {repos} repositories");
        }
    }
    Ok(())
}

/// `skiff retention`: one run (or a preview) of the `[[retention.policy]]` tables, listing what
/// it deletes per repository.
pub fn retention(config: &Config, dry_run: bool) -> Result<(), String> {
    let api = local::Api::connect(config)?;
    let report = api.call("POST", "/api/v1/retention", Some(json!({ "dry_run": dry_run })))?;
    let verb = if dry_run { "would delete" } else { "deleted" };
    for r in report["repositories"].as_array().into_iter().flatten() {
        let repo = r["repository"].as_str().unwrap_or_default();
        let policy = r["policy"].as_str().unwrap_or_default();
        for t in r["tags"].as_array().into_iter().flatten() {
            println!(
                "{repo}: {verb} tag {} ({}, {}) [policy {policy}]",
                t["name"].as_str().unwrap_or_default(),
                t["protocol"].as_str().unwrap_or_default(),
                short(t["digest"].as_str().unwrap_or_default())
            );
        }
        for m in r["manifests"].as_array().into_iter().flatten() {
            println!("{repo}: {verb} manifest {}", m.as_str().unwrap_or_default());
        }
    }
    println!(
        "{verb} {} tags and {} manifests in {} repositories{}",
        report["tags_deleted"].as_u64().unwrap_or(0),
        report["manifests_deleted"].as_u64().unwrap_or(0),
        report["repositories"].as_array().map_or(0, Vec::len),
        if dry_run {
            ""
        } else {
            " (their blobs are freed by the next `skiff gc`)"
        }
    );
    Ok(())
}

/// A digest or image id cut to what people compare (`sha256:0123456789ab`).
fn short(d: &str) -> String {
    let (algo, hex) = d.split_once(':').unwrap_or(("", d));
    let hex: String = hex.chars().take(12).collect();
    if algo.is_empty() {
        hex
    } else {
        format!("{algo}:{hex}")
    }
}

fn print_tags(tags: &[Value]) {
    let rows = tags
        .iter()
        .map(|t| {
            let platforms: Vec<&str> = t["platforms"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            vec![
                t["name"].as_str().unwrap_or_default().to_string(),
                t["protocol"].as_str().unwrap_or_default().to_string(),
                short(t["digest"].as_str().unwrap_or_default()),
                human_size(t["size"].as_u64().unwrap_or(0)),
                if platforms.is_empty() {
                    "-".to_string()
                } else {
                    platforms.join(",")
                },
                t["pushed"].as_u64().map_or("unknown".to_string(), age),
                t["pulls"].as_u64().unwrap_or(0).to_string(),
                t["last_pull"].as_u64().map_or("never".to_string(), age),
            ]
        })
        .collect();
    print_table(
        &[
            "TAG",
            "PROTOCOL",
            "DIGEST",
            "SIZE",
            "PLATFORMS",
            "PUSHED",
            "PULLS",
            "LAST PULL",
        ],
        rows,
    );
}

pub fn repo(config: &Config, cmd: RepoCommand) -> Result<(), String> {
    let api = local::Api::connect(config)?;
    let path = |name: &str, rest: &str| format!("/api/v1/repositories/{name}{rest}");
    match cmd {
        RepoCommand::List { namespace, json } => {
            let query = namespace.map(|ns| format!("?namespace={ns}")).unwrap_or_default();
            let list = api.call("GET", &format!("/api/v1/repositories{query}"), None)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?);
            } else {
                print_repos(list.as_array().map(Vec::as_slice).unwrap_or_default());
            }
        }
        RepoCommand::Show { name } => {
            let shown = api.call("GET", &path(&name, ""), None)?;
            println!("{}", serde_json::to_string_pretty(&shown).map_err(|e| e.to_string())?);
        }
        RepoCommand::Rm { name } => {
            api.call("DELETE", &path(&name, ""), None)?;
            println!("deleted {name} (its blobs are freed by the next `skiff gc`)");
        }
        RepoCommand::Private { name } => {
            api.call("PUT", &path(&name, "/-/visibility"), Some(json!({"private": true})))?;
            println!("{name} is private");
        }
        RepoCommand::Public { name } => {
            api.call("PUT", &path(&name, "/-/visibility"), Some(json!({"private": false})))?;
            println!("{name} is public");
        }
        RepoCommand::Describe { name, description } => {
            api.call(
                "PUT",
                &path(&name, "/-/description"),
                Some(json!({"description": description})),
            )?;
            println!("description of {name} set");
        }
        RepoCommand::Collaborator(CollaboratorCommand::Add { name, user }) => {
            api.call("PUT", &path(&name, &format!("/-/collaborators/{user}")), None)?;
            println!("{user} may now push to {name}");
        }
        RepoCommand::Tags { name, json } => {
            // Every page, in tag order.
            let mut all = Vec::new();
            let mut last: Option<String> = None;
            loop {
                let query = match &last {
                    Some(l) => format!("?n=1000&last={l}"),
                    None => "?n=1000".to_string(),
                };
                let page = api.call("GET", &path(&name, &format!("/-/tags{query}")), None)?;
                all.extend(page["tags"].as_array().cloned().unwrap_or_default());
                match page["next"].as_str() {
                    Some(n) => last = Some(n.to_string()),
                    None => break,
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?);
            } else {
                print_tags(&all);
            }
        }
        RepoCommand::Untag { name, tag, manifest } => {
            let query = if manifest { "?manifest=true" } else { "" };
            let done = api.call("DELETE", &path(&name, &format!("/-/tags/{tag}{query}")), None)?;
            for t in done["deleted_tags"].as_array().into_iter().flatten() {
                println!(
                    "deleted tag {} ({})",
                    t["name"].as_str().unwrap_or_default(),
                    t["protocol"].as_str().unwrap_or_default()
                );
            }
            for m in done["deleted_manifests"].as_array().into_iter().flatten() {
                println!("deleted manifest {}", m.as_str().unwrap_or_default());
            }
        }
        RepoCommand::Collaborator(CollaboratorCommand::Rm { name, user }) => {
            api.call("DELETE", &path(&name, &format!("/-/collaborators/{user}")), None)?;
            println!("{user} is no longer a collaborator of {name}");
        }
    }
    Ok(())
}

/// `skiff audit`: the newest entries of the audit log (one page of the API), as a table.
pub fn audit(
    config: &Config,
    user: Option<String>,
    repo: Option<String>,
    action: Option<String>,
    limit: usize,
    json: bool,
) -> Result<(), String> {
    let api = local::Api::connect(config)?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in [("user", user), ("repository", repo), ("action", action)] {
        if let Some(v) = value {
            query.append_pair(key, &v);
        }
    }
    query.append_pair("limit", &limit.to_string());
    let page = api.call("GET", &format!("/api/v1/audit?{}", query.finish()), None)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&page).map_err(|e| e.to_string())?);
        return Ok(());
    }
    let rows = page["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            vec![
                e["time"].as_u64().map_or(String::new(), age),
                e["user"].as_str().unwrap_or_default().to_string(),
                e["action"].as_str().unwrap_or_default().to_string(),
                e["target"].as_str().unwrap_or_default().to_string(),
                e["address"].as_str().unwrap_or("-").to_string(),
            ]
        })
        .collect();
    print_table(&["WHEN", "USER", "ACTION", "TARGET", "FROM"], rows);
    Ok(())
}

/// `skiff gc`: starts a run (or a preview) through the API, shows its progress on a terminal,
/// and prints what it freed.
pub fn gc(config: &Config, dry_run: bool) -> Result<(), String> {
    use std::io::IsTerminal;
    let api = local::Api::connect(config)?;
    let started = api.call("POST", "/api/v1/gc", Some(json!({ "dry_run": dry_run })))?;
    let ours = started["running"]["started"].as_u64();
    let terminal = std::io::stderr().is_terminal();
    let last = loop {
        let status = api.call("GET", "/api/v1/gc", None)?;
        if status["running"].is_null() && status["last"]["started"].as_u64() == ours {
            break status["last"].clone();
        }
        if terminal {
            let p = &status["running"]["progress"];
            eprint!(
                "\r{}",
                progress_bar(
                    p["phase"].as_str().unwrap_or(""),
                    p["done"].as_u64().unwrap_or(0),
                    p["total"].as_u64().unwrap_or(0)
                )
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    if terminal {
        eprint!("\r\x1b[K");
    }
    if let Some(e) = last["error"].as_str() {
        return Err(format!("gc: {e}"));
    }
    let r = &last["report"];
    for m in r["unparsable"].as_array().into_iter().flatten() {
        eprintln!(
            "skiff: gc: manifest {} does not parse: kept every blob it names; check it",
            m.as_str().unwrap_or_default()
        );
    }
    let bytes = r["removed_bytes"].as_u64().unwrap_or(0);
    println!(
        "{} {} blobs ({}, {bytes} bytes), kept {} ({} younger than the grace period, {} referenced while it ran){}",
        if dry_run { "would remove" } else { "removed" },
        r["removed"].as_u64().unwrap_or(0),
        human_size(bytes),
        r["kept"].as_u64().unwrap_or(0),
        r["kept_recent"].as_u64().unwrap_or(0),
        r["kept_referenced_meanwhile"].as_u64().unwrap_or(0),
        match last["uploads_removed"].as_u64().unwrap_or(0) {
            0 => String::new(),
            n => format!("; removed {n} abandoned upload sessions"),
        }
    );
    let by_repository = r["by_repository"].as_array().map(Vec::as_slice).unwrap_or_default();
    if !by_repository.is_empty() {
        let rows = by_repository
            .iter()
            .map(|b| {
                vec![
                    b["repository"].as_str().unwrap_or("(no repository)").to_string(),
                    b["removed"].as_u64().unwrap_or(0).to_string(),
                    human_size(b["removed_bytes"].as_u64().unwrap_or(0)),
                ]
            })
            .collect();
        print_table(&["REPOSITORY", "BLOBS", "SIZE"], rows);
    }
    Ok(())
}

/// `skiff usage`: the usage report, as tables with human sizes or as JSON.
pub fn usage(config: &Config, json: bool) -> Result<(), String> {
    let api = local::Api::connect(config)?;
    let report = api.call("GET", "/api/v1/usage", None)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
        return Ok(());
    }
    let size = |v: &Value| human_size(v.as_u64().unwrap_or(0));
    let s = &report["store"];
    if !s.is_null() {
        println!(
            "store: {} in {} blobs; referenced {} (v1 layers in no repository {}); garbage {} in {} blobs; uploads in progress {} in {} sessions",
            size(&s["total_bytes"]),
            s["blobs"].as_u64().unwrap_or(0),
            size(&s["referenced_bytes"]),
            size(&s["unattributed_bytes"]),
            size(&s["garbage_bytes"]),
            s["garbage_blobs"].as_u64().unwrap_or(0),
            size(&s["upload_bytes"]),
            s["upload_sessions"].as_u64().unwrap_or(0),
        );
        println!();
    }
    let rows = |list: &Value, first: &dyn Fn(&Value) -> Vec<String>| -> Vec<Vec<String>> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|v| {
                let mut row = vec![v["name"].as_str().unwrap_or_default().to_string()];
                row.extend(first(v));
                row.extend([size(&v["bytes"]), size(&v["unique_bytes"]), size(&v["shared_bytes"])]);
                row
            })
            .collect()
    };
    let quota = |v: &Value| {
        vec![
            v["repositories"].as_u64().unwrap_or(0).to_string(),
            match v["quota"].as_u64() {
                Some(limit) => human_size(limit),
                None => "-".to_string(),
            },
        ]
    };
    print_table(
        &["NAMESPACE", "REPOSITORIES", "QUOTA", "SIZE", "UNIQUE", "SHARED"],
        rows(&report["namespaces"], &quota),
    );
    println!();
    let blobs = |v: &Value| vec![v["blobs"].as_u64().unwrap_or(0).to_string()];
    print_table(
        &["REPOSITORY", "BLOBS", "SIZE", "UNIQUE", "SHARED"],
        rows(&report["repositories"], &blobs),
    );
    Ok(())
}

fn progress_bar(phase: &str, done: u64, total: u64) -> String {
    const WIDTH: u64 = 30;
    let filled = (done.min(total) * WIDTH).checked_div(total).unwrap_or(0);
    format!(
        "gc {phase:<8} [{}{}] {done}/{total} blobs",
        "#".repeat(filled as usize),
        " ".repeat((WIDTH - filled) as usize)
    )
}

fn print_repos(repos: &[Value]) {
    let rows = repos
        .iter()
        .map(|r| {
            vec![
                r["name"].as_str().unwrap_or_default().to_string(),
                if r["private"] == true { "private" } else { "public" }.to_string(),
                r["tags"].as_u64().unwrap_or(0).to_string(),
                human_size(r["size"].as_u64().unwrap_or(0)),
                r["last_push"].as_u64().map_or("never".to_string(), age),
                r["pulls"].as_u64().unwrap_or(0).to_string(),
                r["last_pull"].as_u64().map_or("never".to_string(), age),
            ]
        })
        .collect();
    print_table(
        &["NAME", "VISIBILITY", "TAGS", "SIZE", "LAST PUSH", "PULLS", "LAST PULL"],
        rows,
    );
}

/// A header and rows in left-aligned columns, two spaces apart.
fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut widths: Vec<usize> = header.iter().map(String::len).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", line.join("  ").trim_end());
    }
}

pub use skiff::config::human_size;

/// How long ago a time (seconds since the epoch) was, roughly.
fn age(then: u64) -> String {
    let secs = skiff::clock::now_secs().saturating_sub(then);
    match secs {
        0..60 => "just now".to_string(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.50 KiB");
        assert_eq!(human_size(50 << 20), "50.0 MiB");
        assert_eq!(human_size(300 << 30), "300 GiB");
    }
}
