//! Test harness: real `skiff` processes on 127.0.0.1:0, real HTTP, and Docker 1.x-shaped
//! fixtures (chains of images with gzip-compressed tar layers).

#![allow(dead_code)]

pub mod fixtures;
pub mod v1client;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use fixtures::*;
pub use v1client::*;

pub const TEST_ROUNDS: u32 = 20_000;

/// A running server. Killed (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub addr: String,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

fn merge(base: &mut toml::Table, extra: toml::Table) {
    for (k, v) in extra {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(e)) => merge(b, e),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

pub fn skiff_bin() -> &'static str {
    env!("CARGO_BIN_EXE_skiff")
}

impl Server {
    /// A fresh server in a new temp dir; `extra` is TOML merged over the test defaults.
    pub fn start(extra: &str) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = Server::start_in(&dir, extra);
        s._tmp = Some(tmp);
        s
    }

    /// A server on an existing data dir (restarts keep their data).
    pub fn start_in(dir: &Path, extra: &str) -> Server {
        Server::try_start_in(dir, extra).unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
        let mut base: toml::Table = format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[index]\npbkdf2_rounds = {TEST_ROUNDS}\n",
            dir.join("data").display().to_string()
        )
        .parse()
        .expect("base config");
        merge(&mut base, extra.parse::<toml::Table>().expect("extra config is TOML"));
        let path = dir.join("registry.toml");
        std::fs::write(&path, toml::to_string(&base).expect("toml")).expect("write config");
        path
    }

    pub fn try_start_in(dir: &Path, extra: &str) -> Result<Server, String> {
        let config = Server::write_config(dir, extra);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .map_err(|e| e.to_string())?;
        let mut child = Command::new(skiff_bin())
            .args(["--config", config.to_str().unwrap_or_default(), "serve"])
            .env("SKIFF_LOG", "info,skiff=debug")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("skiff listening on ") {
                    let _ = tx.send(url.to_string());
                    break;
                }
            }
            for _ in lines {} // keep draining so the child never blocks on a full pipe
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(url) => {
                let addr = url.trim_start_matches("http://").to_string();
                Ok(Server {
                    child,
                    url,
                    addr,
                    dir: dir.to_path_buf(),
                    _tmp: None,
                })
            }
            Err(_) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                Err(format!("no listening line; log:\n{log}"))
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no graceful shutdown, no flush.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Resident set size in KiB (VmRSS) and its peak (VmHWM).
    pub fn rss_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Registers a user over HTTP (open registration).
    pub async fn register(&self, user: &str, password: &str) {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/users/", self.url))
            .json(&serde_json::json!({"username": user, "password": password, "email": format!("{user}@example.com")}))
            .send()
            .await
            .expect("register");
        assert_eq!(resp.status(), 201, "register {user}");
    }

    /// The operator makes `root` (password `rootpass1`) an admin through the running server's
    /// socket; returns its Basic header.
    pub fn make_root(&self) -> String {
        let (ok, _, err) = cli(
            &self.dir,
            &["user", "add", "root", "--email", "root@example.com", "--admin"],
            "rootpass1\n",
        );
        assert!(ok, "{err}");
        basic("root", "rootpass1")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `skiff` CLI with a config in `dir`, feeding `stdin`. Returns (success, stdout, stderr).
pub fn cli(dir: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let config = dir.join("registry.toml");
    if !config.exists() {
        Server::write_config(dir, "");
    }
    let mut child = Command::new(skiff_bin())
        .arg("--config")
        .arg(&config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cli");
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin.as_bytes());
    }
    let out = child.wait_with_output().expect("cli output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Sends one request byte for byte (no URL normalisation, unlike reqwest) and returns the status.
pub fn raw_status(addr: &str, method: &str, path: &str, auth: &str, body: &str) -> u16 {
    use std::io::{Read, Write};
    let mut sock = std::net::TcpStream::connect(addr).expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(req.as_bytes()).expect("write");
    let mut resp = String::new();
    let _ = sock.read_to_string(&mut resp);
    resp.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Like [`cli`] without stdin, with the exit code (`None` if killed by a signal).
pub fn cli_code(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let config = dir.join("registry.toml");
    if !config.exists() {
        Server::write_config(dir, "");
    }
    let out = Command::new(skiff_bin())
        .arg("--config")
        .arg(&config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run cli");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One JSON request to the server (the management API's shape): status and the JSON answer
/// (a string of the body when it is not JSON).
pub async fn call(
    s: &Server,
    method: reqwest::Method,
    path: &str,
    auth: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut rb = client().request(method, format!("{}{path}", s.url));
    if let Some(a) = auth {
        rb = rb.header("Authorization", a);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// The files being written under a registry root's `_tmp` (each process writes in a directory
/// of its own there), with their sizes.
pub fn temp_files(registry_root: &Path) -> Vec<(PathBuf, u64)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64)>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            match entry.metadata() {
                Ok(m) if m.is_dir() => walk(&path, out),
                Ok(m) => out.push((path, m.len())),
                Err(_) => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(&registry_root.join("_tmp"), &mut out);
    out
}

/// The TOML blocks of the README section whose title starts with `title`, each checked to be a
/// valid registry.toml with `skiff config check` in `dir`.
pub fn readme_examples_validate(dir: &Path, title: &str) -> usize {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with(title))
        .unwrap_or_else(|| panic!("README has a {title} section"));
    let blocks: Vec<&str> = section
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    for block in &blocks {
        std::fs::write(dir.join("registry.toml"), block).expect("write");
        let (ok, _, err) = cli(dir, &["config", "check"], "");
        assert!(ok, "README example does not validate: {err}\n{block}");
    }
    blocks.len()
}
