//! Renderings of a check for CI systems besides code scanning: JUnit XML (GitLab, Jenkins),
//! GitHub Actions workflow commands, and the notes (objects defined twice, exemptions) that
//! JSON and SARIF carry next to the findings.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::check::{Checked, CheckedObject, Note};
use super::output::{artifact_uri, json, sarif};
use crate::policy::{Action, Policy};
use crate::report::{ObjectRef, ReportFinding};
use crate::rules::CATALOG;

/// The name `manifest::load` gives standard input.
const STDIN_NAME: &str = "<stdin>";

fn describe(o: &ObjectRef) -> String {
    if o.namespace.is_empty() {
        format!("{} {}", o.kind, o.name)
    } else {
        format!("{} {}/{}", o.kind, o.namespace, o.name)
    }
}

fn note_json(n: &Note) -> Value {
    json!({"file": n.file, "line": n.line, "message": n.message})
}

/// `check --output json`: the report, and `notes` when there are any.
pub fn json_with_notes(checked: &Checked) -> String {
    let text = json(&checked.report);
    if checked.notes.is_empty() {
        return text;
    }
    let Ok(Value::Object(mut doc)) = serde_json::from_str::<Value>(&text) else {
        return text;
    };
    doc.insert("notes".into(), checked.notes.iter().map(note_json).collect());
    serde_json::to_string_pretty(&Value::Object(doc)).unwrap_or(text) + "\n"
}

/// `check --output sarif`: notes become the run's tool notifications, each at its file and line.
pub fn sarif_with_notes(checked: &Checked) -> String {
    let text = sarif(&checked.report);
    if checked.notes.is_empty() {
        return text;
    }
    let Ok(mut doc) = serde_json::from_str::<Value>(&text) else {
        return text;
    };
    let notifications: Vec<Value> = checked
        .notes
        .iter()
        .map(|n| {
            json!({
                "level": "note",
                "message": {"text": n.message},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": artifact_uri(&n.file)},
                    "region": {"startLine": n.line.max(1)}
                }}]
            })
        })
        .collect();
    if let Some(run) = doc.pointer_mut("/runs/0").and_then(Value::as_object_mut) {
        run.insert(
            "invocations".into(),
            json!([{"executionSuccessful": true, "toolExecutionNotifications": notifications}]),
        );
    }
    serde_json::to_string_pretty(&doc).unwrap_or(text) + "\n"
}

/// The kinds a rule judges, by the family its id names: `backup-*` and the per-Cluster
/// schedule rules judge CNPG Clusters (retention, compression and S3 settings also
/// ObjectStores), the per-ScheduledBackup ones ScheduledBackups, the rest workloads.
fn judges(rule: &str, kind: &str) -> bool {
    const WORKLOADS: &[&str] = &["Rollout", "Deployment", "StatefulSet", "Job", "CronJob"];
    match rule {
        "scheduled-backup-schedule" | "scheduled-backup-target" => kind == "ScheduledBackup",
        "backup-retention" | "backup-compression" | "backup-s3-compat-checksums" => {
            matches!(kind, "Cluster" | "ObjectStore")
        }
        r if r.starts_with("backup-") || r.starts_with("scheduled-backup-") => kind == "Cluster",
        _ => WORKLOADS.contains(&kind),
    }
}

/// Escapes text for XML attribute values and content; characters XML 1.0 cannot hold at all
/// (most C0 controls) become U+FFFD.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one `<testsuite>` per file, one `<testcase>` per object and enabled rule that
/// judges its kind (named `Kind ns/name`, class the rule id), a `<failure>` for each deny
/// finding, warn findings as the case's `<system-out>`. Notes go to the suite's
/// `<system-out>`.
pub fn junit(checked: &Checked, policy: &Policy) -> String {
    let mut findings: BTreeMap<(&str, usize, &str), Vec<&ReportFinding>> = BTreeMap::new();
    for f in &checked.report.findings {
        let file = f.file.as_deref().unwrap_or(STDIN_NAME);
        findings.entry((file, f.line.unwrap_or(0), f.rule)).or_default().push(f);
    }
    // (file) -> cases, each (name, class, deny messages, warn messages)
    type Case<'a> = (String, &'a str, Vec<String>, Vec<String>);
    let mut suites: BTreeMap<&str, Vec<Case>> = BTreeMap::new();
    for CheckedObject {
        file,
        line,
        object,
        excluded,
    } in &checked.objects
    {
        let cases = suites.entry(file.as_str()).or_default();
        for rule in CATALOG {
            let key = (file.as_str(), *line, rule.id);
            let found = findings.get(&key);
            let enabled = !*excluded && policy.action(rule.id) != Action::Off && judges(rule.id, &object.kind);
            if !enabled && found.is_none() {
                continue;
            }
            let mine: Vec<&&ReportFinding> = found.into_iter().flatten().filter(|f| f.object == *object).collect();
            if !enabled && mine.is_empty() {
                continue;
            }
            let message = |f: &&&ReportFinding| f.message.clone();
            let deny = mine.iter().filter(|f| f.action == Action::Deny).map(message).collect();
            let warn = mine.iter().filter(|f| f.action != Action::Deny).map(message).collect();
            cases.push((describe(object), rule.id, deny, warn));
        }
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let tests: usize = suites.values().map(Vec::len).sum();
    let failures: usize = suites
        .values()
        .flatten()
        .filter(|(_, _, deny, _)| !deny.is_empty())
        .count();
    let _ = writeln!(
        out,
        "<testsuites name=\"dbhook\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">"
    );
    let mut notes: BTreeMap<&str, Vec<&Note>> = BTreeMap::new();
    for n in &checked.notes {
        notes.entry(n.file.as_str()).or_default().push(n);
    }
    for (file, cases) in &suites {
        let failed = cases.iter().filter(|(_, _, deny, _)| !deny.is_empty()).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{0}\" file=\"{0}\" tests=\"{1}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\">",
            xml(file),
            cases.len()
        );
        for (name, class, deny, warn) in cases {
            let _ = write!(out, "    <testcase name=\"{}\" classname=\"{}\"", xml(name), xml(class));
            if deny.is_empty() && warn.is_empty() {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
            for m in deny {
                let _ = writeln!(
                    out,
                    "      <failure type=\"deny\" message=\"{0}\">[{1}] {2}: {0}</failure>",
                    xml(m),
                    xml(class),
                    xml(name)
                );
            }
            if !warn.is_empty() {
                let text: Vec<String> = warn.iter().map(|m| format!("warn: [{class}] {m}")).collect();
                let _ = writeln!(out, "      <system-out>{}</system-out>", xml(&text.join("\n")));
            }
            out.push_str("    </testcase>\n");
        }
        if let Some(notes) = notes.get(file) {
            let text: Vec<String> = notes
                .iter()
                .map(|n| format!("{}:{}: note: {}", n.file, n.line, n.message))
                .collect();
            let _ = writeln!(out, "    <system-out>{}</system-out>", xml(&text.join("\n")));
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Workflow-command data: `%`, CR and LF percent-encoded (GitHub's `escapeData`).
fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Workflow-command property values: also `:` and `,` (GitHub's `escapeProperty`).
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The `file=…,line=…,` properties of an annotation; standard input has no file to point at.
fn location(file: &str, line: usize) -> String {
    if file == STDIN_NAME || file == crate::manifest::STDIN {
        return String::new();
    }
    let path = file.trim_start_matches("./");
    format!("file={},line={},", escape_property(path), line.max(1))
}

/// GitHub Actions workflow commands: `::error` for deny findings, `::warning` for warn
/// findings, `::notice` for notes, each on the file and line of its object; then the summary.
pub fn github(checked: &Checked) -> String {
    let mut out = String::new();
    for f in &checked.report.findings {
        let command = if f.action == Action::Deny { "error" } else { "warning" };
        let _ = writeln!(
            out,
            "::{command} {}title={}::{}",
            location(f.file.as_deref().unwrap_or(STDIN_NAME), f.line.unwrap_or(1)),
            escape_property(f.rule),
            escape_data(&format!("{}: {}", describe(&f.object), f.message))
        );
    }
    for n in &checked.notes {
        let _ = writeln!(
            out,
            "::notice {}title=dbhook::{}",
            location(&n.file, n.line),
            escape_data(&n.message)
        );
    }
    let s = &checked.report.summary;
    let _ = writeln!(
        out,
        "dbhook: {} objects checked: {} deny, {} warn, {} would be patched",
        s.objects, s.deny, s.warn, s.patched
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::check::check_documents;
    use crate::manifest;

    fn checked(file: &str, yaml: &str) -> Checked {
        let docs = manifest::parse(file, yaml).unwrap();
        check_documents(&docs, &Policy::default(), false, chrono::Utc::now()).unwrap()
    }

    const PLAINTEXT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: team, labels: {dbhook.io/cluster: pg}}\nspec:\n  template:\n    spec:\n      containers: [{name: web, image: 'x:latest', env: [{name: OLD_URL, value: 'postgresql://u:p@h/db'}]}]\n";

    #[test]
    fn github_commands_escape_data_and_properties() {
        assert_eq!(escape_data("50% a\r\nb: c, d"), "50%25 a%0D%0Ab: c, d");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
        let out = github(&checked("deploy/a,b:c.yaml", PLAINTEXT));
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines.iter().any(|l| l
                .starts_with("::error file=deploy/a%2Cb%3Ac.yaml,line=1,title=db-url-plaintext::Deployment team/d: ")),
            "{out}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("::warning file=deploy/a%2Cb%3Ac.yaml,line=1,title=image-tag-pinned::")),
            "{out}"
        );
        for l in &lines {
            assert!(!l.contains('\r'));
        }
    }

    #[test]
    fn junit_has_a_case_per_object_and_rule_and_a_failure_per_denial() {
        let yaml = format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n---\n{PLAINTEXT}");
        let out = junit(&checked("deploy/app.yaml", &yaml), &Policy::default());
        let doc = roxmltree::Document::parse(&out).unwrap();
        let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
        let workload_rules = CATALOG.iter().filter(|r| judges(r.id, "Deployment")).count();
        assert_eq!(cases.len(), workload_rules, "a ConfigMap is judged by no rule\n{out}");
        let failed: Vec<_> = cases
            .iter()
            .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
            .map(|c| c.attribute("classname").unwrap())
            .collect();
        assert_eq!(failed, vec!["db-url-plaintext"]);
        let root = doc.root_element();
        assert_eq!(root.attribute("failures"), Some("1"));
        assert_eq!(root.attribute("tests"), Some(workload_rules.to_string().as_str()));
    }
}
