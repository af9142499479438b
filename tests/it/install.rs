//! Installing Skiff as a service: `scripts/install` puts a working binary under a prefix (and
//! is safe to run again), the sample configuration it installs is valid and closed by default,
//! and the systemd unit starts that binary with that configuration on that data directory.

use crate::common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn install(args: &[&str]) -> String {
    let (ok, out, err) = run(Command::new(repo().join("scripts/install")).args(args));
    assert!(ok, "scripts/install {args:?}: {out}{err}");
    out
}

/// Every key path (`index.registration`, ...) of a TOML document.
fn keys(doc: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
    for (k, v) in doc {
        let path = format!("{prefix}{k}");
        match v {
            toml::Value::Table(t) => keys(t, &format!("{path}."), out),
            _ => {
                out.insert(path);
            }
        }
    }
}

fn table(path: &Path) -> toml::Table {
    std::fs::read_to_string(path).expect("read").parse().expect("TOML")
}

/// The unit's `Key=value` lines of its [Service] section.
fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
        .to_string()
}

#[test]
fn the_sample_configuration_is_valid_closed_and_lists_every_key() {
    let sample = repo().join("scripts/dist/registry.toml");
    let (ok, out, err) = run(Command::new(skiff_bin())
        .arg("--config")
        .arg(&sample)
        .args(["config", "check"]));
    assert!(ok && out.contains("valid"), "{out}{err}");
    let (ok, shown, err) = run(Command::new(skiff_bin())
        .arg("--config")
        .arg(&sample)
        .args(["config", "show"])
        .env_remove("SKIFF_LISTEN"));
    assert!(ok, "{err}");
    let effective: toml::Table = shown.parse().expect("config show is TOML");
    assert_eq!(effective["data_dir"].as_str(), Some("/var/lib/skiff"));
    assert_eq!(effective["listen"].as_str(), Some("127.0.0.1:5000"));
    assert_eq!(effective["index"]["registration"].as_str(), Some("closed"));

    // The same keys as the repository's own registry.toml, which lists every key.
    let (mut in_sample, mut in_reference) = (BTreeSet::new(), BTreeSet::new());
    keys(&table(&sample), "", &mut in_sample);
    keys(&table(&repo().join("registry.toml")), "", &mut in_reference);
    assert_eq!(
        in_sample, in_reference,
        "scripts/dist/registry.toml and registry.toml list different keys"
    );
}

#[test]
fn install_puts_a_working_skiff_under_the_prefix_and_can_run_again() {
    let tmp = tempfile::tempdir().expect("tmp");
    let prefix = tmp.path().join("prefix");
    let p = prefix.to_str().expect("utf-8");
    for _ in 0..2 {
        install(&["--prefix", p, "--binary", skiff_bin(), "--no-system"]);
    }
    let bin = prefix.join("bin/skiff");
    let (ok, out, err) = run(Command::new(&bin).arg("--version"));
    assert!(ok && out.starts_with("skiff "), "{out}{err}");
    let (ok, out, err) = run(Command::new(&bin).arg("--help"));
    assert!(ok && out.contains("backup") && out.contains("serve"), "{out}{err}");
    assert_eq!(
        std::fs::read(prefix.join("share/skiff/registry.toml")).expect("sample"),
        std::fs::read(repo().join("scripts/dist/registry.toml")).expect("dist")
    );

    // The service's files, staged under a root: the unit runs this prefix's binary with the
    // configuration where it was put; an edited configuration survives a second run.
    let stage = tmp.path().join("stage");
    let s = stage.to_str().expect("utf-8");
    install(&["--prefix", p, "--binary", skiff_bin(), "--system", "--root", s]);
    let config = stage.join("etc/skiff/registry.toml");
    let mut edited = std::fs::read_to_string(&config).expect("config");
    edited.push_str("\n# edited\n");
    std::fs::write(&config, &edited).expect("edit");
    let out = install(&["--prefix", p, "--binary", skiff_bin(), "--system", "--root", s]);
    assert!(out.contains("kept the existing"), "{out}");
    assert_eq!(std::fs::read_to_string(&config).expect("config"), edited);
    assert!(stage.join("var/lib/skiff").is_dir());

    let unit = std::fs::read_to_string(stage.join("etc/systemd/system/skiff.service")).expect("unit");
    let exec = unit_value(&unit, "ExecStart");
    assert_eq!(
        exec,
        format!("{} --config /etc/skiff/registry.toml serve", bin.display())
    );
    let sample = table(&repo().join("scripts/dist/registry.toml"));
    assert_eq!(
        unit_value(&unit, "ReadWritePaths"),
        sample["data_dir"].as_str().expect("data_dir"),
        "the service may write its data directory"
    );
    assert_eq!(unit_value(&unit, "WorkingDirectory"), "/var/lib/skiff");
    for line in [
        "User=skiff",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "Restart=on-failure",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} in the unit");
    }
    assert!(unit_value(&unit, "LimitNOFILE").parse::<u64>().expect("number") >= 4096);

    // The unit as systemd reads it, where systemd's tools are installed: no unknown key, and an
    // ExecStart that is executable (the installed binary).
    if Command::new("systemd-analyze").arg("--version").output().is_ok() {
        let (ok, out, err) = run(Command::new("systemd-analyze")
            .arg("verify")
            .arg(prefix.join("share/skiff/skiff.service")));
        assert!(ok, "systemd-analyze verify: {out}{err}");
        for bad in ["Unknown", "ignoring", "not executable", "Failed"] {
            assert!(!err.contains(bad) && !out.contains(bad), "systemd-analyze: {out}{err}");
        }
    }
}

#[test]
fn install_refuses_a_binary_that_is_not_there() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (ok, _, err) = run(Command::new(repo().join("scripts/install")).args([
        "--prefix",
        tmp.path().to_str().expect("utf-8"),
        "--binary",
        "/nonexistent/skiff",
    ]));
    assert!(!ok && err.contains("not an executable"), "{err}");
    assert!(!tmp.path().join("bin/skiff").exists());
}
