//! Renderings of a check: text for people, JSON for automation, SARIF for code scanning.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;

use serde_json::{Value, json};

use super::check::Checked;
use crate::manifest::STDIN;
use crate::policy::{Action, Mode};
use crate::report::{ObjectRef, Report, ReportFinding};
use crate::rules::CATALOG;

/// The name `manifest::load` gives standard input.
const STDIN_NAME: &str = "<stdin>";

/// Colour only when stdout is a terminal and NO_COLOR is unset.
pub fn use_colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn paint(s: &str, code: &str, colour: bool) -> String {
    if colour {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// `Kind ns/name`, or `Kind name` for objects without a namespace.
fn describe(o: &ObjectRef) -> String {
    if o.namespace.is_empty() {
        format!("{} {}", o.kind, o.name)
    } else {
        format!("{} {}/{}", o.kind, o.namespace, o.name)
    }
}

/// One block per file (by name, as directories are walked), one line per finding, patch and note, sorted by the
/// line the object starts on; then a summary line.
///
/// ```text
/// deploy/shop.yaml
///     72  deny   [migration-image-lockstep] Rollout shop/web: image … differs …
///     72  patch  Rollout shop/web: would inject DB_URL into containers web
/// 5 objects checked: 1 deny, 0 warn, 2 would be patched; failed
/// ```
pub fn text(checked: &Checked, mode: Mode, colour: bool) -> String {
    text_with(checked, mode, colour, false)
}

/// [`text`], with the evidence under each finding when `explain` is set (`check --explain`):
///
/// ```text
///     72  deny   [migration-image-lockstep] Rollout shop/web: image … differs …
///               expected  ghcr.io/acme/web:sha-1111111
///               observed  ghcr.io/acme/web:sha-2222222
///               consulted batch/v1 Job shop/web-migrate
/// ```
pub fn text_with(checked: &Checked, mode: Mode, colour: bool, explain: bool) -> String {
    let report = &checked.report;
    // (line, rank, text): findings first (deny, then warn), then patches, then notes.
    let mut by_file: BTreeMap<&str, Vec<(usize, u8, String)>> = BTreeMap::new();
    for f in &report.findings {
        let file = f.file.as_deref().unwrap_or(STDIN_NAME);
        let (label, rank) = match f.action {
            Action::Deny => (paint("deny ", "1;31", colour), 0),
            _ => (paint("warn ", "33", colour), 1),
        };
        let line = f.line.unwrap_or(0);
        let mut text = format!(
            "  {line:>4}  {label}  [{}] {}: {}",
            f.rule,
            describe(&f.object),
            f.message
        );
        if explain {
            super::evidence_text::append(&mut text, f, colour);
        }
        by_file.entry(file).or_default().push((line, rank, text));
    }
    for p in &checked.patched {
        let text = format!(
            "  {:>4}  {}  {}: would inject {} into containers {}",
            p.line,
            paint("patch", "32", colour),
            describe(&p.object),
            p.env_name,
            p.containers.join(", ")
        );
        by_file.entry(&p.file).or_default().push((p.line, 2, text));
    }
    for n in &checked.notes {
        let text = format!("  {:>4}  {}  {}", n.line, paint("note ", "36", colour), n.message);
        by_file.entry(&n.file).or_default().push((n.line, 3, text));
    }
    let mut out = String::new();
    for (file, mut lines) in by_file {
        lines.sort_by_key(|(line, rank, _)| (*line, *rank));
        out.push_str(&paint(file, "1", colour));
        out.push('\n');
        for (_, _, l) in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
    let s = &report.summary;
    let verdict = if checked.blocking > 0 {
        paint("failed", "1;31", colour)
    } else if s.deny > 0 {
        let why = match mode {
            Mode::Audit => "audit mode",
            Mode::Enforce => "in audited namespaces",
        };
        paint(
            &format!("passed ({why}: deny findings are reported, not enforced)"),
            "1;32",
            colour,
        )
    } else {
        paint("passed", "1;32", colour)
    };
    let _ = writeln!(
        out,
        "{} {} checked: {} deny, {} warn, {} would be patched; {verdict}",
        s.objects,
        if s.objects == 1 { "object" } else { "objects" },
        s.deny,
        s.warn,
        s.patched
    );
    out
}

/// `check --output json` (README.md, "CLI").
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_default() + "\n"
}

fn level(action: Action) -> &'static str {
    match action {
        Action::Deny => "error",
        Action::Warn => "warning",
        Action::Off => "none",
    }
}

/// A file name as a SARIF `uri-reference`: forward slashes, no leading `./`, characters outside
/// the URI grammar percent-encoded. Standard input becomes `stdin`.
pub fn artifact_uri(file: &str) -> String {
    if file == STDIN_NAME || file == STDIN {
        return "stdin".to_string();
    }
    let path = file.replace('\\', "/");
    let path = path.trim_start_matches("./");
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b);
        if keep {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A stable identity for a finding across runs, independent of line numbers, so code scanning
/// keeps tracking an alert when the file around it changes (FNV-1a, 64 bit).
fn fingerprint(f: &ReportFinding) -> String {
    let o = &f.object;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [f.rule, &o.api_version, &o.kind, &o.namespace, &o.name, &f.message] {
        for b in part.bytes().chain([0u8]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// SARIF 2.1.0 for GitHub code scanning: one rule per rule id (its summary and why), one result
/// per finding with the file and the line its object starts on.
pub fn sarif(report: &Report) -> String {
    let rules: Vec<Value> = CATALOG
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": {"text": r.summary},
                "fullDescription": {"text": format!("{}. Without it: {}.", r.summary, r.why)},
                "defaultConfiguration": {"level": level(r.default_action)},
                "help": {
                    "text": format!("{}.\nWhy: {}.\nDefault action: {}. See docs/rules.md#{}.", r.summary, r.why, r.default_action.as_str(), r.id),
                    "markdown": format!("**{}**\n\nWhy: {}.\n\nDefault action: `{}`. See [docs/rules.md](docs/rules.md#{}).", r.summary, r.why, r.default_action.as_str(), r.id)
                },
                "properties": {"tags": ["kubernetes", "cloudnative-pg"]}
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let index = CATALOG.iter().position(|r| r.id == f.rule).unwrap_or(0);
            let o = &f.object;
            let name = if o.namespace.is_empty() {
                o.name.clone()
            } else {
                format!("{}/{}", o.namespace, o.name)
            };
            json!({
                "ruleId": f.rule,
                "ruleIndex": index,
                "level": level(f.action),
                "message": {"text": format!("{}: {}", describe(o), f.message)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": artifact_uri(f.file.as_deref().unwrap_or(STDIN_NAME))},
                        "region": {"startLine": f.line.unwrap_or(1).max(1)}
                    },
                    "logicalLocations": [{
                        "name": name,
                        "kind": "resource",
                        "fullyQualifiedName": format!("{}/{}/{name}", o.api_version, o.kind)
                    }]
                }],
                "partialFingerprints": {"dbhookFinding/v1": fingerprint(f)},
                "properties": {"evidence": f.evidence}
            })
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "dbhook",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/dbhook/dbhook",
                "rules": rules
            }},
            "columnKind": "unicodeCodePoints",
            "results": results
        }]
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::check::check_documents;
    use crate::manifest;
    use crate::policy::Policy;

    fn checked(yaml: &str, policy: &Policy) -> Checked {
        let docs = manifest::parse("deploy/app.yaml", yaml).unwrap();
        check_documents(&docs, policy, false, chrono::Utc::now()).unwrap()
    }

    const PLAINTEXT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: team, labels: {dbhook.io/cluster: pg}}\nspec:\n  template:\n    spec:\n      containers: [{name: web, image: 'x:1', env: [{name: OLD_URL, value: 'postgresql://u:p@h/db'}]}]\n";

    #[test]
    fn text_is_coloured_only_when_asked() {
        let c = checked(PLAINTEXT, &Policy::default());
        let plain = text(&c, Mode::Enforce, false);
        assert!(!plain.contains('\x1b'), "{plain}");
        let coloured = text(&c, Mode::Enforce, true);
        assert!(coloured.contains("\x1b[1;31mdeny \x1b[0m"), "{coloured}");
        assert!(coloured.contains("\x1b[32mpatch\x1b[0m"), "{coloured}");
        assert_eq!(strip_ansi(&coloured), plain);
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for d in chars.by_ref() {
                    if d == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn the_verdict_follows_what_blocks() {
        let last = |c: &Checked, mode| text(c, mode, false).lines().last().unwrap().to_string();
        let enforce = checked(PLAINTEXT, &Policy::default());
        assert_eq!(
            last(&enforce, Mode::Enforce),
            "1 object checked: 1 deny, 0 warn, 1 would be patched; failed"
        );
        let audit = checked(PLAINTEXT, &Policy::from_yaml("mode: audit").unwrap());
        assert!(last(&audit, Mode::Audit).ends_with("; passed (audit mode: deny findings are reported, not enforced)"));
        let ns = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: team, labels: {{dbhook.io/mode: audit}}}}\n---\n{PLAINTEXT}"
        );
        let audited = checked(&ns, &Policy::default());
        assert_eq!(
            last(&audited, Mode::Enforce),
            "2 objects checked: 1 deny, 0 warn, 1 would be patched; passed (in audited namespaces: deny findings are reported, not enforced)"
        );
        let clean = checked(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
            &Policy::default(),
        );
        assert_eq!(
            text(&clean, Mode::Enforce, false),
            "1 object checked: 0 deny, 0 warn, 0 would be patched; passed\n"
        );
    }

    #[test]
    fn lines_are_grouped_by_file_and_ordered_by_line() {
        let yaml = format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n---\n{PLAINTEXT}");
        let out = text(&checked(&yaml, &Policy::default()), Mode::Enforce, false);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "deploy/app.yaml");
        assert!(
            lines[1].starts_with("     5  deny   [db-url-plaintext] Deployment team/d: container web env OLD_URL"),
            "{out}"
        );
        assert_eq!(
            lines[2],
            "     5  patch  Deployment team/d: would inject DB_URL into containers web"
        );
    }

    #[test]
    fn artifact_uris_are_uri_references() {
        let cases = [
            ("deploy/shop.yaml", "deploy/shop.yaml"),
            ("./deploy/shop.yaml", "deploy/shop.yaml"),
            ("deploy\\win\\a.yaml", "deploy/win/a.yaml"),
            ("my charts/out put.yaml", "my%20charts/out%20put.yaml"),
            ("/abs/path.yaml", "/abs/path.yaml"),
            ("<stdin>", "stdin"),
            ("-", "stdin"),
            ("ünï.yaml", "%C3%BCn%C3%AF.yaml"),
        ];
        for (file, want) in cases {
            assert_eq!(artifact_uri(file), want, "{file}");
        }
    }
}
