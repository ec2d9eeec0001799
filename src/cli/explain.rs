//! `dbhook explain <rule-id>`: the catalog entry and the explain table of one rule, with what
//! the engine reports on the failing example.

use std::fmt::Write as _;

use super::check::check_documents;
use crate::policy::Policy;
use crate::rules::{catalog, explain};

/// `dbhook explain` was given an id that names no rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rule {0:?} (see `dbhook rules`)")]
pub struct UnknownRule(pub String);

/// The explanation of `id`, or an error naming the unknown rule.
pub fn render(id: &str) -> Result<String, UnknownRule> {
    let (Some(info), Some(e)) = (catalog::find(id), explain::find(id)) else {
        return Err(UnknownRule(id.to_string()));
    };
    let mut out = String::new();
    let _ = writeln!(out, "{} (default action: {})\n", info.id, info.default_action.as_str());
    let _ = writeln!(out, "Checks: {}.", info.summary);
    let _ = writeln!(out, "Why: {}.\n", info.why);
    let _ = writeln!(out, "Parameters (policy: rules.{}):", info.id);
    let params: Vec<(&str, String, &str)> = explain::COMMON_PARAMS
        .iter()
        .map(|p| {
            let default = if p.name == "action" {
                info.default_action.as_str().to_string()
            } else {
                p.default.to_string()
            };
            (p.name, default, p.meaning)
        })
        .chain(e.params.iter().map(|p| (p.name, p.default.to_string(), p.meaning)))
        .collect();
    let name_w = params.iter().map(|p| p.0.len()).max().unwrap_or(0);
    let default_w = params.iter().map(|p| p.1.len()).max().unwrap_or(0);
    for (name, default, meaning) in &params {
        let _ = writeln!(out, "  {name:<name_w$}  {default:<default_w$}  {meaning}");
    }
    let _ = writeln!(out, "\nHow to fix:\n{}\n", wrap(e.fix, 96, "  ", "  "));
    let _ = writeln!(out, "Passing example:\n{}", indent(e.passing));
    let _ = writeln!(out, "Failing example:\n{}", indent(e.failing));
    let _ = writeln!(out, "dbhook check --complete reports on it:");
    for line in findings(id, e.failing) {
        let _ = writeln!(out, "{}", wrap(&line, 96, "  ", "    "));
    }
    let _ = writeln!(out, "\nMore: docs/rules.md#{}", info.id);
    Ok(out)
}

/// The findings of rule `id` on `yaml`, checked as a complete input under the default policy.
fn findings(id: &str, yaml: &str) -> Vec<String> {
    let Ok(docs) = crate::manifest::parse("example.yaml", yaml) else {
        return Vec::new();
    };
    let Ok(checked) = check_documents(&docs, &Policy::default(), true, chrono::Utc::now()) else {
        return Vec::new();
    };
    checked
        .report
        .findings
        .iter()
        .filter(|f| f.rule == id)
        .map(|f| {
            format!(
                "{} [{}] {} {}: {}",
                f.action.as_str(),
                f.rule,
                f.object.kind,
                f.object.name,
                f.message
            )
        })
        .collect()
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// Word-wraps `text` at `width` columns, the first line starting with `first`, the others with
/// `rest`.
fn wrap(text: &str, width: usize, first: &str, rest: &str) -> String {
    let prefix = rest;
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && prefix.len() + line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{}{l}", if i == 0 { first } else { rest }))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `dbhook explain`; returns the exit code.
pub fn run(args: &super::ExplainArgs) -> u8 {
    match render(&args.rule) {
        Ok(text) => {
            print!("{text}");
            super::exit::OK
        }
        Err(e) => super::Failure::from(e).report("dbhook"),
    }
}
