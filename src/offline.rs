//! The offline front door: manifest documents decoded into objects, placed in their
//! namespaces, and each reviewed by the engine against the others (a [`ManifestView`]).
//! `dbhook check` renders the result; tests and `dbhook explain`'s examples use it directly.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::engine;
use crate::manifest::{Document, InputError};
use crate::model::Object;
use crate::policy::{Mode, Policy};
use crate::report::{ObjectRef, Report};
use crate::view::ManifestView;

/// A note that is not a rule finding (mutation conflicts, ignored exemptions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// An object the injection would change (`summary.patched` counts them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patched {
    pub file: String,
    pub line: usize,
    pub object: ObjectRef,
    pub env_name: String,
    /// Containers that would get the env var, in patch order.
    pub containers: Vec<String>,
}

/// An object that was checked, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedObject {
    pub file: String,
    pub line: usize,
    pub object: ObjectRef,
    /// In a namespace the policy excludes: no rule judged it.
    pub excluded: bool,
}

/// The result of checking a set of documents.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    pub report: Report,
    /// Every object checked, in input order.
    pub objects: Vec<CheckedObject>,
    pub notes: Vec<Note>,
    pub patched: Vec<Patched>,
    /// Deny findings on objects reviewed in enforce mode: what fails the gate. Deny findings in
    /// a namespace labelled `dbhook.io/mode: audit` are reported but do not count here.
    pub blocking: usize,
}

/// Decodes documents into objects; a handled kind that does not decode is an input error.
pub fn decode(docs: &[Document]) -> Result<Vec<Arc<Object>>, InputError> {
    docs.iter()
        .map(|d| {
            Object::from_value(&d.value)
                .map(Arc::new)
                .map_err(|e| InputError::Parse {
                    file: d.file.clone(),
                    line: d.line,
                    message: e.to_string(),
                })
        })
        .collect()
}

/// Reviews every document against the others (the offline view, docs/rules.md).
pub fn check_documents(
    docs: &[Document],
    policy: &Policy,
    complete: bool,
    now: DateTime<Utc>,
) -> Result<Checked, InputError> {
    let objects = decode(docs)?;
    let placed = place(docs, &objects);
    let view = ManifestView::new(placed.clone(), complete);
    let mut checked = Checked {
        notes: duplicates(docs, &placed),
        ..Checked::default()
    };
    // Rules see each object in the namespace it is placed in; the report names the object as
    // the file has it.
    for ((doc, obj), placed) in docs.iter().zip(&objects).zip(&placed) {
        let decision = engine::review(&engine::Change::create(placed), &view, policy, now);
        checked.report.add(obj, &decision, Some((&doc.file, doc.line)));
        checked.objects.push(CheckedObject {
            file: doc.file.clone(),
            line: doc.line,
            object: ObjectRef::of(obj),
            excluded: policy.is_excluded(placed.namespace()),
        });
        if decision.mode == Mode::Enforce {
            checked.blocking += decision.denies();
        }
        if !decision.planned_patch.is_empty() {
            checked.patched.push(Patched {
                file: doc.file.clone(),
                line: doc.line,
                object: ObjectRef::of(obj),
                env_name: decision.env_name.clone(),
                containers: decision.injected.clone(),
            });
        }
        // Warnings for findings are already in the report; keep only the other notes.
        let notes = decision.notices.iter().map(|w| Note {
            file: doc.file.clone(),
            line: doc.line,
            message: w.clone(),
        });
        checked.notes.extend(notes);
        checked.notes.extend(decision.exempted.iter().map(|f| Note {
            file: doc.file.clone(),
            line: doc.line,
            message: format!(
                "[{}] exempted by {}{}: {}",
                f.rule,
                crate::model::keys::EXEMPT,
                exemption_terms(f.exemption.as_ref()),
                f.message
            ),
        }));
    }
    Ok(checked)
}

/// ` (until <date>, reason: <text>)` where the annotations give them.
fn exemption_terms(e: Option<&crate::exemption::Exemption>) -> String {
    let terms: Vec<String> = e
        .into_iter()
        .flat_map(|e| {
            [
                e.until.as_ref().map(|u| format!("until {u}")),
                e.reason.as_ref().map(|r| format!("reason: {r}")),
            ]
        })
        .flatten()
        .collect();
    if terms.is_empty() {
        String::new()
    } else {
        format!(" ({})", terms.join(", "))
    }
}

/// The objects in the namespace they will be applied to, as far as the input says: rendered
/// charts often leave `metadata.namespace` out (`helm template -n shop` sets it only where a
/// template writes `{{ .Release.Namespace }}`), and `kubectl apply -n` or Argo CD fills it in.
/// An object without a namespace is placed in the one namespace the rest of its file names;
/// when its file names none or several, it stays without one and pairs only with objects
/// without one. Files are never mixed: two applications in one run do not see each other.
pub fn place(docs: &[Document], objects: &[Arc<Object>]) -> Vec<Arc<Object>> {
    let mut file_namespace: std::collections::HashMap<&str, Option<&str>> = std::collections::HashMap::new();
    for (doc, obj) in docs.iter().zip(objects) {
        let ns = obj.namespace();
        if ns.is_empty() {
            continue;
        }
        file_namespace
            .entry(doc.file.as_str())
            .and_modify(|seen| {
                if *seen != Some(ns) {
                    *seen = None;
                }
            })
            .or_insert(Some(ns));
    }
    docs.iter()
        .zip(objects)
        .map(|(doc, obj)| match file_namespace.get(doc.file.as_str()) {
            Some(Some(ns)) if obj.namespace().is_empty() && !matches!(obj.spec, crate::model::Spec::Namespace) => {
                let mut placed = (**obj).clone();
                placed.meta.namespace = Some(ns.to_string());
                Arc::new(placed)
            }
            _ => obj.clone(),
        })
        .collect()
}

/// Notes for objects defined twice: the input is checked as one set of objects, so two
/// environments rendered into one namespace would be paired with each other.
fn duplicates(docs: &[Document], objects: &[Arc<Object>]) -> Vec<Note> {
    let mut first: std::collections::HashMap<(&str, &str, &str, &str), &Document> = std::collections::HashMap::new();
    let mut notes = Vec::new();
    for (doc, obj) in docs.iter().zip(objects) {
        if obj.name().is_empty() {
            continue;
        }
        let group = obj.api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let key = (group, obj.kind.as_str(), obj.namespace(), obj.name());
        match first.get(&key) {
            None => {
                first.insert(key, doc);
            }
            Some(earlier) => notes.push(Note {
                file: doc.file.clone(),
                line: doc.line,
                message: format!(
                    "{} {} is also defined at {}:{}; the input is checked as one set of objects, so check each \
                     environment on its own",
                    obj.kind,
                    obj.qualified_name(),
                    earlier.file,
                    earlier.line
                ),
            }),
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest;

    const PLAINTEXT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: team}\nspec:\n  template:\n    spec:\n      containers: [{name: web, image: 'x:1', env: [{name: DB_URL, value: 'postgresql://u:p@h/db'}]}]\n";

    fn run(text: &str, policy: &Policy) -> Checked {
        let docs = manifest::parse("in.yaml", text).unwrap();
        check_documents(&docs, policy, false, Utc::now()).unwrap()
    }

    #[test]
    fn deny_findings_block_only_where_the_mode_is_enforce() {
        let enforce = run(PLAINTEXT, &Policy::default());
        assert_eq!(
            (enforce.report.summary.deny, enforce.blocking, enforce.exit_code()),
            (1, 1, 1)
        );
        let labelled = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: team, labels: {{dbhook.io/mode: audit}}}}\n---\n{PLAINTEXT}"
        );
        let audit_ns = run(&labelled, &Policy::default());
        assert_eq!(audit_ns.report.summary.deny, 1, "still reported");
        assert_eq!(
            (audit_ns.blocking, audit_ns.exit_code()),
            (0, 0),
            "an audited namespace does not fail the gate"
        );
        let audit = run(PLAINTEXT, &Policy::from_yaml("mode: audit").unwrap());
        assert_eq!((audit.report.summary.deny, audit.exit_code()), (1, 0));
    }

    #[test]
    fn objects_that_would_be_patched_are_listed() {
        let text = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: m, namespace: shop, labels: {dbhook.io/cluster: pg}}\nspec:\n  template:\n    spec:\n      initContainers: [{name: wait, image: 'x:1'}]\n      containers: [{name: m, image: 'x:1'}]\n";
        for policy in [Policy::default(), Policy::from_yaml("mode: audit").unwrap()] {
            let c = run(text, &policy);
            assert_eq!(c.report.summary.patched, 1);
            assert_eq!(c.patched.len(), 1);
            let p = &c.patched[0];
            assert_eq!((p.file.as_str(), p.line, p.object.name.as_str()), ("in.yaml", 1, "m"));
            assert_eq!(p.containers, vec!["wait", "m"]);
            assert_eq!(p.env_name, "DB_URL");
            assert!(c.notes.is_empty(), "{:?}", c.notes);
        }
    }

    const JOB: &str = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: web-migrate\n  labels: {dbhook.io/cluster: pg, dbhook.io/role: migration}\n  annotations: {argocd.argoproj.io/sync-options: Replace=true}\nspec:\n  template:\n    spec:\n      containers: [{name: m, image: 'ghcr.io/acme/web:v1'}]\n";
    const APP: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: NS\n  labels: {dbhook.io/cluster: pg}\nspec:\n  template:\n    spec:\n      containers: [{name: web, image: 'ghcr.io/acme/web:v2'}]\n";

    fn rules(c: &Checked) -> Vec<(&str, &str)> {
        c.report
            .findings
            .iter()
            .map(|f| (f.rule, f.object.name.as_str()))
            .collect()
    }

    #[test]
    fn objects_without_namespace_join_the_one_namespace_their_file_names() {
        let one = format!("{JOB}---\n{}", APP.replace("NS", "shop"));
        let c = run(&one, &Policy::default());
        assert_eq!(
            rules(&c),
            vec![
                ("migration-image-lockstep", "web-migrate"),
                ("migration-image-lockstep", "web")
            ]
        );
        assert_eq!(c.report.findings[0].object.namespace, "", "reported as the file has it");
        assert!(
            c.report.findings[1].message.contains("migration Job shop/web-migrate"),
            "{}",
            c.report.findings[1].message
        );
        // Two namespaces in the file: the namespace-less Job belongs to neither.
        let two = format!("{one}---\n{}", APP.replace("NS", "staging"));
        let c = run(&two, &Policy::default());
        assert!(rules(&c).is_empty(), "{:?}", rules(&c));
        // Another file's namespace is never borrowed: two applications in one run stay apart.
        let docs = [
            manifest::parse("shop.yaml", JOB).unwrap(),
            manifest::parse("billing.yaml", &APP.replace("NS", "billing")).unwrap(),
        ]
        .concat();
        let c = check_documents(&docs, &Policy::default(), false, Utc::now()).unwrap();
        assert!(rules(&c).is_empty(), "{:?}", rules(&c));
        // Without any namespace, objects of one or several files pair with each other.
        let docs = [
            manifest::parse("job.yaml", JOB).unwrap(),
            manifest::parse("app.yaml", &APP.replace("  namespace: NS\n", "")).unwrap(),
        ]
        .concat();
        let c = check_documents(&docs, &Policy::default(), false, Utc::now()).unwrap();
        assert_eq!(rules(&c).len(), 2, "{:?}", rules(&c));
    }

    #[test]
    fn objects_defined_twice_get_a_note() {
        let app = APP.replace("NS", "shop");
        let docs = [
            manifest::parse("envs/staging.yaml", &app).unwrap(),
            manifest::parse("envs/prod.yaml", &app).unwrap(),
        ]
        .concat();
        let c = check_documents(&docs, &Policy::default(), false, Utc::now()).unwrap();
        assert_eq!(c.notes.len(), 1, "{:?}", c.notes);
        assert_eq!((c.notes[0].file.as_str(), c.notes[0].line), ("envs/prod.yaml", 1));
        assert_eq!(
            c.notes[0].message,
            "Deployment shop/web is also defined at envs/staging.yaml:1; the input is checked as one set of objects, so check each environment on its own"
        );
    }

    #[test]
    fn honoured_exemptions_leave_a_note_and_ignored_ones_say_so() {
        let exempt = PLAINTEXT.replace(
            "namespace: team}",
            "namespace: team, annotations: {dbhook.io/exempt: db-url-plaintext}}",
        );
        let strict = run(&exempt, &Policy::default());
        assert_eq!(strict.exit_code(), 1);
        assert_eq!(strict.notes.len(), 1);
        assert!(
            strict.notes[0]
                .message
                .starts_with("exemption from [db-url-plaintext] ignored"),
            "{:?}",
            strict.notes
        );
        let lenient = run(
            &exempt,
            &Policy::from_yaml("rules: {db-url-plaintext: {allowExemption: true}}").unwrap(),
        );
        assert_eq!((lenient.exit_code(), lenient.report.summary.deny), (0, 0));
        assert_eq!(lenient.notes.len(), 1);
        assert!(
            lenient.notes[0]
                .message
                .starts_with("[db-url-plaintext] exempted by dbhook.io/exempt: container web env DB_URL"),
            "{:?}",
            lenient.notes
        );
    }
}
