//! `dbhook mutate`: the injection applied to manifests, as a stdin→stdout filter.
//!
//! Helm post-renderers and kustomize pipelines hand every manifest of a release through this
//! filter, most of them objects dbhook does not change: those are written back byte for byte
//! (comments, quoting, key order and `---` lines kept). A document that gets the injection is
//! written anew, with its leading comments, by [`crate::yaml::emit`], which quotes every string
//! a YAML 1.1 reader (kubectl, Helm, Argo CD) would otherwise take for a boolean or number.

use std::io::Write;

use serde_json::Value;

use super::{DocFormat, MutateArgs, exit, load_policy};
use crate::engine::{self, Change, Scope};
use crate::manifest::{Document, InputError, Source};
use crate::model::Object;
use crate::policy::Policy;
use crate::view::EmptyView;

/// What `mutate` made of its input.
#[derive(Debug, Default)]
pub struct Mutated {
    /// Every object, injection applied, in input order (`--output json`).
    pub values: Vec<Value>,
    /// The input as a YAML stream, untouched documents exactly as read.
    pub yaml: String,
    /// Conflicts and unusable annotations, for stderr.
    pub notes: Vec<String>,
}

/// Applies the injection to one object, as the mutating webhook would on CREATE; `None` when
/// it does not change.
fn patch(doc: &Document, policy: &Policy, notes: &mut Vec<String>) -> Result<Option<Value>, InputError> {
    let obj = Object::from_value(&doc.value).map_err(|e| InputError::Parse {
        file: doc.file.clone(),
        line: doc.line,
        message: e.to_string(),
    })?;
    // The mutation reads neither the view nor the time; the mode does not matter either: the
    // planned patch is applied in audit mode too, as the manifest is the output.
    let d = engine::review_scoped(
        &Change::create(&obj),
        &EmptyView,
        policy,
        chrono::Utc::now(),
        Scope::Mutate,
    );
    let at = format!("{}:{}: {} {}", doc.file, doc.line, obj.kind, obj.qualified_name());
    notes.extend(d.notices.iter().map(|w| format!("{at}: {w}")));
    notes.extend(d.config_errors.iter().map(|e| format!("{at}: [injection-config] {e}")));
    if d.planned_patch.is_empty() {
        return Ok(None);
    }
    let mut value = doc.value.clone();
    json_patch::patch(&mut value, &d.planned_patch).map_err(|e| InputError::Parse {
        file: doc.file.clone(),
        line: doc.line,
        message: format!("cannot apply injection: {e}"),
    })?;
    Ok((value != doc.value).then_some(value))
}

/// Mutates every source; the YAML stream keeps each file's untouched documents as written and
/// separates files with `---`.
pub fn mutate_sources(sources: &[Source], policy: &Policy) -> Result<Mutated, InputError> {
    let mut out = Mutated::default();
    for source in sources {
        let (mut pieces, docs) = crate::manifest::parse_pieces(&source.file, &source.text)?;
        let mut changed = vec![false; pieces.len()];
        for doc in &docs {
            let value = match patch(doc, policy, &mut out.notes)? {
                Some(patched) => {
                    if let Some(slot) = pieces[doc.piece].value.pointer_mut(&doc.pointer) {
                        *slot = patched.clone();
                        changed[doc.piece] = true;
                    }
                    patched
                }
                None => doc.value.clone(),
            };
            out.values.push(value);
        }
        let mut text = String::new();
        for (piece, changed) in pieces.iter_mut().zip(changed) {
            if changed {
                text.push_str(&piece.header);
                text.push_str(&piece.leading_comments);
                text.push_str(&crate::yaml::emit_document(&piece.value));
            } else {
                text.push_str(&source.text[piece.raw.clone()]);
            }
        }
        append_file(&mut out.yaml, &text);
    }
    Ok(out)
}

/// Appends one file's stream, starting a new document where the previous file left off.
fn append_file(stream: &mut String, text: &str) {
    if text.is_empty() {
        return;
    }
    if !stream.is_empty() {
        if !stream.ends_with('\n') {
            stream.push('\n');
        }
        if !text.trim_start_matches('\u{feff}').starts_with("---") {
            stream.push_str("---\n");
        }
    }
    stream.push_str(text);
}

/// Renders documents as a JSON object, or a `List` of several.
pub fn render_json(values: &[Value]) -> Result<String, serde_json::Error> {
    let doc = match values {
        [one] => one.clone(),
        many => serde_json::json!({"apiVersion": "v1", "kind": "List", "items": many}),
    };
    serde_json::to_string_pretty(&doc).map(|s| s + "\n")
}

pub fn run(args: &MutateArgs) -> u8 {
    let policy = match load_policy(args.policy.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("dbhook: {e}");
            return exit::INPUT;
        }
    };
    let result = crate::manifest::load(&args.paths).and_then(|loaded| {
        for skipped in &loaded.skipped {
            eprintln!("dbhook: skipped {skipped}");
        }
        mutate_sources(&loaded.sources, &policy)
    });
    let mutated = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dbhook: {e}");
            return exit::INPUT;
        }
    };
    for n in &mutated.notes {
        eprintln!("dbhook: {n}");
    }
    let rendered = match args.output {
        DocFormat::Yaml => Ok(mutated.yaml),
        DocFormat::Json => render_json(&mutated.values),
    };
    match rendered {
        Ok(text) => {
            let mut stdout = std::io::stdout().lock();
            if stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush()).is_err() {
                return exit::INPUT;
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("dbhook: cannot render output: {e}");
            exit::INPUT
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mutate(text: &str) -> String {
        let sources = [Source {
            file: "in.yaml".into(),
            text: text.into(),
        }];
        mutate_sources(&sources, &Policy::default()).unwrap().yaml
    }

    const UNTOUCHED: &str = "# Source: chart/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}   # trailing\ndata:\n  hot_standby_feedback: 'on'\n  mode: \"0755\"\n";
    const ROLLOUT: &str = "# Source: chart/templates/rollout.yaml\napiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: web\n  labels: {dbhook.io/cluster: pg, tier: 'on'}\nspec:\n  template:\n    spec:\n      containers:\n      - name: web   # the app\n        image: ghcr.io/acme/web:v1\n        args: ['y', '1:20', \"2024-01-01\"]\n";

    #[test]
    fn untouched_documents_are_written_back_byte_for_byte() {
        let text = format!("---\n{UNTOUCHED}---\n# only a comment\n...\n{UNTOUCHED}");
        assert_eq!(mutate(&text), text);
        let crlf = UNTOUCHED.replace('\n', "\r\n");
        assert_eq!(mutate(&crlf), crlf);
        assert_eq!(
            mutate("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}"
        );
    }

    #[test]
    fn patched_documents_keep_their_values_for_yaml_1_1_readers() {
        let text = format!("{UNTOUCHED}---\n{ROLLOUT}");
        let out = mutate(&text);
        let (head, tail) = out.split_at(UNTOUCHED.len() + 4);
        assert_eq!(head, format!("{UNTOUCHED}---\n"));
        assert!(
            tail.starts_with("# Source: chart/templates/rollout.yaml\napiVersion:"),
            "{tail}"
        );
        for quoted in ["tier: \"on\"", "- \"y\"", "- \"1:20\"", "- \"2024-01-01\"", "value"] {
            assert!(tail.contains(quoted), "{quoted} in\n{tail}");
        }
        let read = crate::yaml::load_document(tail).unwrap();
        let mut want = crate::yaml::load_document(ROLLOUT).unwrap();
        want["spec"]["template"]["spec"]["containers"][0]["env"] = serde_json::json!([
            {"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": "pg-app", "key": "uri"}}}
        ]);
        assert_eq!(read, want);
    }

    #[test]
    fn objects_the_webhook_would_not_patch_are_written_back_untouched() {
        // The engine's gate decides for both front doors: an excluded namespace, an object
        // being deleted.
        let excluded = ROLLOUT.replace("  name: web\n", "  name: web\n  namespace: kube-system\n");
        assert_eq!(mutate(&excluded), excluded);
        let deleting = ROLLOUT.replace(
            "  name: web\n",
            "  name: web\n  deletionTimestamp: '2026-01-01T00:00:00Z'\n",
        );
        assert_eq!(mutate(&deleting), deleting);
        assert_ne!(mutate(ROLLOUT), ROLLOUT, "the same Rollout is patched otherwise");
    }

    #[test]
    fn unusable_annotations_are_a_note_and_no_patch() {
        let bad = ROLLOUT.replace("  labels:", "  annotations: {dbhook.io/env-name: db-url}\n  labels:");
        let sources = [Source {
            file: "in.yaml".into(),
            text: bad.clone(),
        }];
        let out = mutate_sources(&sources, &Policy::default()).unwrap();
        assert_eq!(out.yaml, bad);
        assert_eq!(out.notes.len(), 1, "{:?}", out.notes);
        assert!(
            out.notes[0]
                .starts_with("in.yaml:2: Rollout web: [injection-config] annotation dbhook.io/env-name: \"db-url\""),
            "{:?}",
            out.notes
        );
    }

    #[test]
    fn list_items_are_patched_in_place() {
        let list = format!(
            "apiVersion: v1\nkind: List\nitems:\n- {}\n",
            serde_json::to_string(&crate::yaml::load_document(ROLLOUT).unwrap()).unwrap()
        );
        let out = mutate(&list);
        let read = crate::yaml::load_document(&out).unwrap();
        assert_eq!(read["kind"], "List");
        assert_eq!(
            read["items"][0]["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"],
            "DB_URL"
        );
    }
}
