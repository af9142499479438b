//! The layering the README's Architecture section promises, checked on the source itself:
//! only storage knows files and paths, and no layer imports from one above it.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(path relative to src/, text)` of every source file.
fn files() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    sources(&src, &mut paths);
    paths
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&src)
                .expect("under src")
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(&p).expect("read"))
        })
        .collect()
}

#[test]
fn only_storage_knows_files_and_paths() {
    // The binary's side (main.rs and its CLI modules) may name files too.
    let allowed =
        |f: &str| f.starts_with("storage/") || f.starts_with("cli/") || f.starts_with("config/") || f == "main.rs";
    let mut found = Vec::new();
    for (file, text) in files().iter().filter(|(f, _)| !allowed(f)) {
        for word in ["PathBuf", "std::fs", "tokio::fs"] {
            if text.contains(word) {
                found.push(format!("{file}: {word}"));
            }
        }
    }
    assert!(found.is_empty(), "files and paths outside storage: {found:?}");
}

#[test]
fn no_layer_imports_from_one_above_it() {
    // Each module, and the modules above it that it must not name.
    let rules: &[(&str, &[&str])] = &[
        ("storage/", &["registry", "index", "auth", "http", "state"]),
        ("digest.rs", &["registry", "index", "auth", "http", "state", "storage"]),
        ("names.rs", &["registry", "index", "auth", "http", "state", "storage"]),
        ("clock.rs", &["registry", "index", "auth", "http", "state", "storage"]),
        ("registry/", &["index", "auth", "http", "state"]),
        ("index/", &["auth", "http", "state"]),
        ("auth/", &["http", "state"]),
    ];
    let mut found = Vec::new();
    for (file, text) in files() {
        for (prefix, above) in rules {
            if !file.starts_with(prefix) {
                continue;
            }
            for module in *above {
                if text.contains(&format!("crate::{module}::")) || text.contains(&format!("crate::{module};")) {
                    found.push(format!("{file} imports crate::{module}"));
                }
            }
        }
    }
    assert!(found.is_empty(), "upward imports: {found:?}");
}
