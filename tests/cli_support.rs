//! Running the `dbhook` binary as a user would, for the `cli_*` tests.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

/// The repository root: the CLI runs there, so paths like `examples/shop.yaml` resolve.
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs `dbhook <args>` in the repository root with `stdin` (empty when `None`). The `DBHOOK_*`
/// variables a developer may have exported are removed so that only `args` decide.
pub fn dbhook(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dbhook"))
        .args(args)
        .current_dir(ROOT)
        .env_remove("DBHOOK_OUTPUT")
        .env_remove("DBHOOK_POLICY")
        .env_remove("DBHOOK_MODE")
        .env_remove("DBHOOK_COMPLETE")
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

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
