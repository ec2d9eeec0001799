//! The built `dbhook` binary as a user runs it: one hermetic way to start it ([`command`]), one
//! runner to completion ([`run`], with [`dbhook`] and [`dbhook_in`] over it), and `dbhook serve`
//! in the background ([`Serve`]).
//!
//! Hermetic: a child sees none of the developer's environment. A `~/.kube/config`, `KUBECONFIG`,
//! an in-cluster `KUBERNETES_SERVICE_HOST` or an exported `DBHOOK_OUTPUT` would otherwise decide
//! what a test observes; only the variables in [`KEPT`] pass, and `HOME` is an empty directory.

use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use super::wait::eventually;

/// The repository root: the CLI runs there, so paths like `examples/shop.yaml` resolve.
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The binary under test. Cargo names it to integration tests only; `examples/churn_apiserver`
/// shares this module tree and never runs it.
pub const BIN: &str = match option_env!("CARGO_BIN_EXE_dbhook") {
    Some(path) => path,
    None => "dbhook",
};

/// What a child keeps of the test's environment: finding programs, the log filter a developer
/// debugging a test asked for, and coverage collection.
pub const KEPT: &[&str] = &["PATH", "RUST_LOG", "RUST_BACKTRACE", "LLVM_PROFILE_FILE"];

fn kept(key: &OsStr) -> bool {
    let key = key.to_string_lossy();
    KEPT.contains(&key.as_ref()) || key.starts_with("CARGO_LLVM_COV")
}

/// An empty directory for `HOME`, so that no `~/.kube/config` is ever found.
pub fn empty_home() -> &'static Path {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let tmp = option_env!("CARGO_TARGET_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
        let home = tmp.join("dbhook-empty-home");
        std::fs::create_dir_all(&home).unwrap();
        home
    })
}

/// `dbhook` in the repository root, stdin closed, with a cleared environment: only [`KEPT`]
/// variables, and `HOME` set to [`empty_home`]. Tests add what they mean to test.
pub fn command() -> Command {
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .envs(std::env::vars_os().filter(|(key, _)| kept(key)))
        .env("HOME", empty_home())
        .current_dir(ROOT)
        .stdin(Stdio::null());
    command
}

/// Runs `command` to its exit with `stdin` (empty when `None`) and captures its output.
pub fn run(mut command: Command, stdin: Option<&str>) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dbhook runs");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    // The child may exit before reading (e.g. a usage error): a broken pipe is fine.
    let _ = pipe.write_all(stdin.unwrap_or("").as_bytes());
    drop(pipe);
    child.wait_with_output().expect("dbhook exits")
}

/// `dbhook <args>` in the repository root with `stdin`: only `args` decide.
pub fn dbhook(args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = command();
    command.args(args);
    run(command, stdin)
}

/// `dbhook <args>` in `dir` with the variables `envs` set.
pub fn dbhook_in(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = command();
    command.args(args).envs(envs.iter().copied()).current_dir(dir);
    run(command, None)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

type Lines = Arc<Mutex<Vec<String>>>;

fn collect(pipe: impl Read + Send + 'static) -> (Lines, std::thread::JoinHandle<()>) {
    let lines: Lines = Arc::default();
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    (lines, reader)
}

/// `dbhook serve` running in the background; killed if the test ends without stopping it, and
/// its output printed if the test failed.
pub struct Serve {
    pub child: Child,
    stdout: Lines,
    stderr: Lines,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Serve {
    /// Spawns `command` (from [`command`], with `serve` and its flags) with its output
    /// collected line by line.
    pub fn spawn(mut command: Command) -> Serve {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dbhook serve starts");
        let (stdout, out_reader) = collect(child.stdout.take().unwrap());
        let (stderr, err_reader) = collect(child.stderr.take().unwrap());
        Serve {
            child,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
        }
    }

    /// `dbhook serve <args>` in `dir` with `envs` and info logs.
    pub fn start(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Serve {
        let mut command = command();
        command
            .arg("serve")
            .args(args)
            .envs(envs.iter().copied())
            .env("RUST_LOG", "info")
            .current_dir(dir);
        Serve::spawn(command)
    }

    /// [`Serve::start`] on loopback ephemeral ports with JSON logs, plus `args`.
    pub fn loopback(dir: &Path, args: &[&str]) -> Serve {
        let mut all = vec![
            "--addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ];
        all.extend_from_slice(args);
        Serve::start(dir, &all, &[])
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Waits for the first line of stdout (`on_stdout`) or stderr that `pick` accepts; fails
    /// at once if the process exits first.
    pub async fn wait_for<T>(&mut self, on_stdout: bool, what: &str, pick: impl Fn(&str) -> Option<T>) -> T {
        let lines = if on_stdout {
            self.stdout.clone()
        } else {
            self.stderr.clone()
        };
        let child = &mut self.child;
        let found = eventually(what, || {
            let found = lines.lock().unwrap().iter().find_map(|l| pick(l));
            let exited = found.is_none() && matches!(child.try_wait(), Ok(Some(_)));
            std::future::ready(match (found, exited) {
                (Some(found), _) => Some(Some(found)),
                (None, true) => Some(None),
                (None, false) => None,
            })
        })
        .await;
        if let Some(found) = found {
            return found;
        }
        // Exited: once the pipes are drained, the line may still be among the last ones.
        let status = self.exit().await;
        let lines = if on_stdout { &self.stdout } else { &self.stderr };
        let last = lines.lock().unwrap().iter().find_map(|l| pick(l));
        match last {
            Some(found) => found,
            None => {
                panic!(
                    "dbhook serve exited ({status}) before {what}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
        }
    }

    /// The bound webhook and admin addresses, from the startup log event.
    pub async fn addrs(&mut self) -> (SocketAddr, SocketAddr) {
        self.wait_for(false, "the startup log event", |line| {
            let event: Value = serde_json::from_str(line).ok()?;
            let field = |k: &str| {
                event
                    .get(k)
                    .or_else(|| event.get("fields").and_then(|f| f.get(k)))
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<SocketAddr>().ok())
            };
            Some((field("addr")?, field("admin_addr")?))
        })
        .await
    }

    /// Sends SIGTERM, as kubelet does, and waits for the exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(kill.success());
        self.exit().await
    }

    /// Waits for the exit (after [`Serve::terminate`], or a startup error); then every line the
    /// process wrote has been collected.
    pub async fn exit(&mut self) -> ExitStatus {
        let child = &mut self.child;
        let status = eventually("dbhook serve exits", || std::future::ready(child.try_wait().unwrap())).await;
        // The readers end once they have read everything the process wrote.
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        status
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "dbhook serve's output\nstdout:\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            );
        }
    }
}
