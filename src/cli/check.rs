//! `dbhook check`: the policy over a set of manifests, as a CI gate. The review itself is
//! [`crate::offline`]; this is the command around it: flags, rendering, exit code.

use std::io::Write;

use chrono::Utc;

use super::{CheckArgs, Failure, OutputFormat, exit, formats, load_manifests, load_policy, output};
pub use crate::offline::{Checked, CheckedObject, Note, check_documents};

impl Checked {
    /// The exit code of `dbhook check`: 1 when an object would be denied, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.blocking > 0 { exit::DENY } else { exit::OK }
    }
}

/// Runs `dbhook check`; returns the exit code.
pub fn run(args: &CheckArgs) -> u8 {
    match check(args) {
        Ok(code) => code,
        Err(e) => e.report("dbhook"),
    }
}

fn check(args: &CheckArgs) -> Result<u8, Failure> {
    let mut policy = load_policy(args.policy.as_deref())?;
    if let Some(mode) = args.mode {
        // An explicit --mode is the user's decision for this run: namespace labels do not
        // override it.
        policy.mode = mode;
        policy.allow_namespace_mode = false;
    }
    let mut docs = load_manifests(&args.paths)?;
    if let Some(namespace) = args.namespace.as_deref().filter(|n| !n.is_empty()) {
        crate::manifest::default_namespace(&mut docs, namespace);
    }
    let checked = check_documents(&docs, &policy, args.complete, Utc::now())?;
    let rendered = match args.output_format()? {
        OutputFormat::Text => output::text_with(&checked, policy.mode, output::use_colour(), args.explain),
        OutputFormat::Json => formats::json_with_notes(&checked),
        OutputFormat::Sarif => formats::sarif_with_notes(&checked),
        OutputFormat::Junit => formats::junit(&checked, &policy),
        OutputFormat::Github => formats::github(&checked),
        OutputFormat::Openreports => super::openreports::render(&checked.report),
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(rendered.as_bytes())
        .and_then(|_| stdout.flush())
        .map_err(Failure::Write)?;
    Ok(checked.exit_code())
}
