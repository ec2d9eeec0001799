//! Dependencies point outside in (docs/architecture.md): a lower layer never names a higher
//! one. One crate cannot enforce that with crate boundaries, so this test reads the sources.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// `(file relative to src/, line number, line)` for every line naming one of `paths`.
fn naming(files: &[PathBuf], paths: &[String]) -> Vec<String> {
    let root = src();
    let mut hits = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).expect("a source file is UTF-8");
        for (i, line) in text.lines().enumerate() {
            if paths.iter().any(|p| line.contains(p.as_str())) {
                let shown = file.strip_prefix(&root).unwrap_or(file).display();
                hits.push(format!("src/{shown}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    hits
}

#[test]
fn nothing_below_the_cli_imports_it() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let this = Path::new(file!()).file_name();
    let below: Vec<PathBuf> = files
        .into_iter()
        .filter(|f| {
            let rel = f.strip_prefix(src()).unwrap_or(f);
            !rel.starts_with("cli") && rel != Path::new("main.rs") && f.file_name() != this
        })
        .collect();
    let cli = ["crate", "::cli"].concat();
    let hits = naming(&below, &[cli, ["use ", "clap"].concat()]);
    assert!(hits.is_empty(), "the CLI is the outermost layer:\n{}", hits.join("\n"));
}

#[test]
fn the_view_knows_only_the_model() {
    let files = [src().join("view.rs")];
    let higher: Vec<String> = [
        "admission",
        "cli",
        "cluster",
        "engine",
        "mutate",
        "offline",
        "policy",
        "report",
        "rules",
        "server",
    ]
    .iter()
    .map(|m| format!("crate::{m}"))
    .collect();
    let hits = naming(&files, &higher);
    assert!(hits.is_empty(), "view.rs names a higher layer:\n{}", hits.join("\n"));
}
