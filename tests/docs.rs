//! The README's rules table is the registry's: regenerate with `dbhook rules -o markdown`.

use dbhook::cli::{RulesArgs, RulesFormat, print_rules};

#[test]
fn readme_rules_table_matches_the_registry() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = print_rules(&RulesArgs {
        output: RulesFormat::Markdown,
    });
    assert!(
        readme.contains(table.trim_end()),
        "README.md's rules table is out of date: replace it with `dbhook rules -o markdown`"
    );
}

/// What the README says about the repository matches the repository: the Rust version is
/// Cargo.toml's `rust-version`, and the test command it names (near the top and under
/// Development) is an executable script that CI runs. The quickstart's commands themselves are
/// run by `readme_quickstart_and_marked_snippets_run_as_documented`.
#[test]
fn readme_names_the_rust_version_and_the_test_command_the_repository_uses() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let head: String = readme.lines().take(60).collect::<Vec<_>>().join("\n");
    let rust_version = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("rust-version = ")
                .map(|v| v.trim_matches('"').to_string())
        })
        .expect("Cargo.toml sets rust-version");
    assert!(
        head.contains(&format!("Rust {rust_version} or newer")),
        "the quickstart names Cargo.toml's rust-version {rust_version}"
    );
    assert!(
        head.contains("Run the whole test suite: `scripts/test`"),
        "the README's first 60 lines name the test command"
    );
    // The Development section keeps the two commands, the test command second.
    let development = &readme[readme.find("## Development").expect("a Development section")..];
    let block = development.split("```").nth(1).expect("a code block under Development");
    let commands: Vec<&str> = block
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .collect();
    assert_eq!(commands, ["cargo run -- serve --dev", "scripts/test"], "{block}");
    // The named script exists and can be run as written…
    {
        use std::os::unix::fs::PermissionsExt as _;
        let script = std::fs::metadata(root.join("scripts/test")).expect("scripts/test exists");
        assert!(
            script.is_file() && script.permissions().mode() & 0o111 != 0,
            "scripts/test is executable"
        );
    }
    // …and CI runs it (a command line, not a comment).
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(
        ci.lines().map(|l| l.split('#').next().unwrap_or("").trim()).any(|l| l
            .split_whitespace()
            .any(|w| w == "scripts/test" || w.ends_with("/scripts/test"))),
        ".ci/run runs the README's test command:\n{ci}"
    );
}

/// A fenced code block: its info string (`sh test`), its text, and the line it starts on.
#[derive(Debug)]
struct Block {
    info: String,
    text: String,
    line: usize,
}

/// The fenced blocks of a Markdown document, also those indented inside list items.
fn fenced_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String, usize, String)> = None;
    for (n, line) in markdown.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some((indent, info.trim().to_string(), n + 1, String::new()));
                }
            }
            Some((fence_indent, info, start, text)) => {
                if trimmed == "```" {
                    blocks.push(Block {
                        info: std::mem::take(info),
                        text: std::mem::take(text),
                        line: *start,
                    });
                    open = None;
                } else {
                    let cut = indent.min(*fence_indent);
                    text.push_str(&line[cut..]);
                    text.push('\n');
                }
            }
        }
    }
    blocks
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The scratch directory the snippets run in, as a fresh clone would have it: the files the
/// snippets read, and no `certs/dev/` yet.
fn scratch_clone() -> tempfile::TempDir {
    fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["examples", "charts"] {
        copy_dir(&root.join(sub), &dir.path().join(sub));
    }
    dir
}

/// The background server of a `sh test-background` block; killed when dropped.
struct Background {
    child: std::process::Child,
    stdout: std::path::PathBuf,
    stderr: std::path::PathBuf,
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the blocks of one document fenced `sh test` (in order, in one scratch clone, with the
/// built `dbhook` first on PATH) and checks each `text output` block against what the block
/// before it printed. A `sh test-background` block starts a server that the blocks after it
/// talk to. The documented ports 8443 and 8080 become free ports, so the test runs beside
/// anything else on the machine.
fn run_doc_snippets(doc: &str) -> usize {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(doc);
    let markdown = std::fs::read_to_string(&path).unwrap();
    let clone = scratch_clone();
    let home = tempfile::tempdir().unwrap();
    let (addr_port, admin_port) = (free_port(), free_port());
    let ports = |text: &str| {
        text.replace("localhost:8443", &format!("localhost:{addr_port}"))
            .replace("localhost:8080", &format!("localhost:{admin_port}"))
    };
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_dbhook"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path_var = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let shell = |script: &str| {
        let mut command = Command::new("bash");
        command
            .args(["-eo", "pipefail", "-c", script])
            .current_dir(clone.path())
            .env("PATH", &path_var)
            .env("HOME", home.path())
            .env("DBHOOK_ADDR", format!("127.0.0.1:{addr_port}"))
            .env("DBHOOK_ADMIN_ADDR", format!("127.0.0.1:{admin_port}"))
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .stdin(Stdio::null());
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("DBHOOK_") && key != "DBHOOK_ADDR" && key != "DBHOOK_ADMIN_ADDR" {
                command.env_remove(key);
            }
        }
        command
    };

    let mut background: Vec<Background> = Vec::new();
    let mut last_stdout: Option<(usize, String)> = None;
    let mut ran = 0;
    for block in fenced_blocks(&markdown) {
        let at = format!("{doc}:{}", block.line);
        match block.info.as_str() {
            "sh test" => {
                let out = shell(&ports(&block.text)).output().unwrap();
                let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
                assert!(
                    out.status.success(),
                    "{at}: the snippet failed ({})\n{}\nstdout:\n{stdout}\nstderr:\n{}",
                    out.status,
                    block.text,
                    String::from_utf8_lossy(&out.stderr)
                );
                last_stdout = Some((block.line, stdout));
                ran += 1;
            }
            "sh test-background" => {
                let command = block.text.trim();
                assert!(!command.contains('\n'), "{at}: a background block holds one command");
                let stdout = clone.path().join(format!("background-{}.out", block.line));
                let stderr = clone.path().join(format!("background-{}.err", block.line));
                let child = shell(&format!("exec {}", ports(command)))
                    .stdout(std::fs::File::create(&stdout).unwrap())
                    .stderr(std::fs::File::create(&stderr).unwrap())
                    .spawn()
                    .unwrap();
                let mut server = Background { child, stdout, stderr };
                // Ready when the admin port says so (the server's own readiness).
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    if let Ok(Some(status)) = server.child.try_wait() {
                        panic!(
                            "{at}: `{command}` exited ({status})\n{}",
                            std::fs::read_to_string(&server.stderr).unwrap_or_default()
                        );
                    }
                    if readyz(admin_port) {
                        break;
                    }
                    assert!(Instant::now() < deadline, "{at}: `{command}` never became ready");
                    std::thread::sleep(Duration::from_millis(100));
                }
                // The banner is printed right after the listeners are bound.
                while std::fs::metadata(&server.stdout).map_or(0, |m| m.len()) == 0 {
                    assert!(Instant::now() < deadline, "{at}: `{command}` printed nothing");
                    std::thread::sleep(Duration::from_millis(50));
                }
                last_stdout = Some((block.line, std::fs::read_to_string(&server.stdout).unwrap()));
                background.push(server);
                ran += 1;
            }
            "text output" => {
                let (from, stdout) = last_stdout
                    .take()
                    .unwrap_or_else(|| panic!("{at}: an output block with no `sh test` block before it"));
                let printed: Vec<&str> = stdout.lines().map(str::trim).collect();
                let mut rest = printed.iter();
                for want in ports(&block.text).lines().map(str::trim).filter(|l| !l.is_empty()) {
                    assert!(
                        rest.any(|got| *got == want),
                        "{at}: the block at line {from} did not print {want:?} (in this order); it printed:\n{stdout}"
                    );
                }
            }
            _ => {}
        }
    }
    drop(background);
    ran
}

/// `GET /readyz` answers 200.
fn readyz(port: u16) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    if stream
        .write_all(b"GET /readyz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

/// The README's quickstart, as a fresh clone runs it: the server in the background, the curl
/// line against it with its decoded patch, and `dbhook check` with its report — so the first
/// thing a reader runs cannot go stale. (`cargo install` is the one step replaced: the test
/// puts the binary it just built first on PATH.)
#[test]
fn readme_quickstart_and_marked_snippets_run_as_documented() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let quickstart: Vec<Block> = fenced_blocks(&readme)
        .into_iter()
        .filter(|b| b.info.starts_with("sh test") || b.info == "text output")
        .take(5)
        .collect();
    let marked: Vec<(&str, &str)> = quickstart.iter().map(|b| (b.info.as_str(), b.text.trim())).collect();
    assert!(
        marked.starts_with(&[("sh test-background", "dbhook serve --dev")])
            && marked
                .iter()
                .any(|(info, text)| *info == "sh test" && text.starts_with("curl "))
            && marked
                .iter()
                .any(|(info, text)| *info == "sh test" && *text == "dbhook check --complete examples/"),
        "the quickstart's server, curl and check blocks are marked for this test: {marked:?}"
    );
    assert!(run_doc_snippets("README.md") >= 3);
}

#[test]
fn operator_guide_snippets_without_a_cluster_run_as_documented() {
    assert!(run_doc_snippets("docs/operator-guide.md") >= 1);
}

/// The README's policy example is a valid policy, also after a trip through Helm values, where
/// YAML 1.1 reads a bare `off` as `false`.
#[test]
fn readme_policy_example_parses_as_written_and_as_helm_reads_it() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let policy_section = &readme[readme.find("## Policy").expect("a Policy section")..];
    let example = fenced_blocks(policy_section)
        .into_iter()
        .find(|b| b.info == "yaml")
        .expect("a yaml block under Policy")
        .text;
    assert!(example.contains("\"off\""), "the example quotes \"off\":\n{example}");
    let as_written = dbhook::policy::Policy::from_yaml(&example).unwrap();
    let through_helm = dbhook::policy::Policy::from_yaml(&example.replace("\"off\"", "false")).unwrap();
    assert_eq!(as_written.action("cluster-exists"), dbhook::policy::Action::Off);
    assert_eq!(through_helm.action("cluster-exists"), dbhook::policy::Action::Off);
}
