//! Reading manifest files for the CLI: files, directories, stdin, multi-document YAML, JSON and
//! `kind: List`, each object with the file and line its document starts at.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One object from the input, with where it came from.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: String,
    /// 1-based line of the document's first content line.
    pub line: usize,
    pub value: Value,
    /// Index of the YAML document holding the object among its file's [`Piece`]s.
    pub piece: usize,
    /// JSON pointer of the object inside that document: empty, or `/items/3` for a `List` item.
    pub pointer: String,
}

/// One document of a file exactly as written, so that `mutate` can write untouched documents
/// back byte for byte. The pieces of a file, concatenated, are the file.
#[derive(Debug, Clone)]
pub struct Piece {
    /// The bytes of the file this document spans, its `---` line included.
    pub raw: std::ops::Range<usize>,
    /// What to write before the document when it is written anew: its `---` line, or nothing.
    pub header: String,
    /// The document as read (`null` when it holds only comments).
    pub value: Value,
    /// Comment and blank lines before the document's content, kept when it is written anew
    /// (Helm's `# Source: chart/templates/x.yaml`).
    pub leading_comments: String,
}

/// A file (or stdin) as read.
#[derive(Debug, Clone)]
pub struct Source {
    pub file: String,
    pub text: String,
}

/// Input that cannot be read; exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{file}:{line}: {message}")]
    Parse { file: String, line: usize, message: String },
    /// Valid YAML/JSON that is not a Kubernetes object (no `apiVersion`/`kind`, not a mapping).
    #[error("{file}:{line}: {message}")]
    NotObject { file: String, line: usize, message: String },
    #[error("{0}: no *.yaml, *.yml or *.json files found")]
    Empty(String),
}

/// The display name for stdin.
pub const STDIN: &str = "-";

/// What [`load`] read: the objects, and the files of walked directories it passed over.
#[derive(Debug, Default)]
pub struct Loaded {
    pub docs: Vec<Document>,
    /// The files the documents came from, in order, with their text.
    pub sources: Vec<Source>,
    /// `<file>: <why>` for each file skipped.
    pub skipped: Vec<String>,
}

/// Reads every path (`-` is stdin); directories are walked recursively in name order. A file
/// found in a directory that holds no Kubernetes object at all (a Helm `Chart.yaml` or
/// `values.yaml`, a tool's config) is skipped and listed in [`Loaded::skipped`]; named files
/// and stdin must hold objects.
pub fn load(paths: &[PathBuf]) -> Result<Loaded, InputError> {
    let mut loaded = Loaded::default();
    let default = [PathBuf::from(STDIN)];
    let paths = if paths.is_empty() { &default[..] } else { paths };
    for path in paths {
        if path.as_os_str() == STDIN {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| InputError::Io {
                    path: "<stdin>".into(),
                    source,
                })?;
            loaded.docs.extend(parse("<stdin>", &text)?);
            loaded.skipped.extend(reviews_note("<stdin>", &text));
            loaded.sources.push(Source {
                file: "<stdin>".into(),
                text,
            });
            continue;
        }
        let walked = fs::metadata(path).is_ok_and(|m| m.is_dir());
        let files = collect(path)?;
        if files.is_empty() {
            return Err(InputError::Empty(path.display().to_string()));
        }
        for file in files {
            let name = file.display().to_string();
            let text = fs::read_to_string(&file).map_err(|source| InputError::Io {
                path: name.clone(),
                source,
            })?;
            match parse(&name, &text) {
                Ok(docs) => {
                    loaded.docs.extend(docs);
                    if !walked {
                        loaded.skipped.extend(reviews_note(&name, &text));
                    }
                    loaded.sources.push(Source { file: name, text });
                }
                Err(InputError::NotObject { message, .. }) if walked && holds_no_object(&text) => {
                    loaded.skipped.push(format!("{name}: {message}"));
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(loaded)
}

/// A file the user named (or stdin) that holds AdmissionReviews gets a note: they are API
/// messages and are not checked, which would otherwise look like a clean result. In a walked
/// directory they sit beside the manifests (examples/) and pass quietly.
fn reviews_note(name: &str, text: &str) -> Option<String> {
    let is_review = |v: &Value| {
        v.get("kind").and_then(Value::as_str) == Some("AdmissionReview")
            && v.get("apiVersion")
                .and_then(Value::as_str)
                .is_some_and(|a| a.starts_with("admission.k8s.io/"))
    };
    let trimmed = text.trim_start_matches('\u{feff}');
    let count = match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Array(items)) => items.iter().filter(|v| is_review(v)).count(),
        Ok(v) => usize::from(is_review(&v)),
        Err(_) => split_documents(trimmed)
            .iter()
            .filter_map(|p| crate::yaml::load_document(&p.body).ok())
            .filter(is_review)
            .count(),
    };
    (count > 0).then(|| {
        let what = if count == 1 {
            "an AdmissionReview".to_string()
        } else {
            format!("{count} AdmissionReviews")
        };
        format!(
            "{name}: {what} (a request to the webhook, not a manifest), not checked: POST it to \
             `dbhook serve`, or check the object it carries: `jq .request.object {name} | dbhook check -`"
        )
    })
}

/// True when no document of `text` is a mapping with a `kind`: the file is not a manifest.
fn holds_no_object(text: &str) -> bool {
    let is_object = |v: &Value| v.get("kind").and_then(Value::as_str).is_some_and(|k| !k.is_empty());
    let trimmed = text.trim_start_matches('\u{feff}');
    if let Ok(v) = serde_json::from_str::<Value>(trimmed) {
        return match &v {
            Value::Array(items) => !items.iter().any(is_object),
            v => !is_object(v),
        };
    }
    split_documents(trimmed)
        .iter()
        .filter_map(|p| crate::yaml::load_document(&p.body).ok())
        .all(|v| !is_object(&v))
}

fn collect(path: &Path) -> Result<Vec<PathBuf>, InputError> {
    let io = |source| InputError::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = fs::metadata(path).map_err(io)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut entries: Vec<PathBuf> = fs::read_dir(path)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut files = Vec::new();
    for entry in entries {
        let hidden = entry
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if entry.is_dir() {
            files.extend(collect(&entry)?);
        } else if entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            files.push(entry);
        }
    }
    Ok(files)
}

/// Splits `text` into objects. JSON is read as JSON (exact error lines); anything else as
/// multi-document YAML split at `---` lines, as kubectl does.
pub fn parse(file: &str, text: &str) -> Result<Vec<Document>, InputError> {
    parse_pieces(file, text).map(|(_, docs)| docs)
}

/// [`parse`], also returning the documents of the file as written.
pub fn parse_pieces(file: &str, text: &str) -> Result<(Vec<Piece>, Vec<Document>), InputError> {
    let bom = text.len() - text.trim_start_matches('\u{feff}').len();
    let trimmed = &text[bom..];
    if trimmed.trim_start().starts_with(['{', '[']) && serde_json::from_str::<Value>(trimmed).is_ok() {
        let value: Value = serde_json::from_str(trimmed).map_err(|e| InputError::Parse {
            file: file.into(),
            line: e.line(),
            message: e.to_string(),
        })?;
        let line = first_content_line(trimmed, 1);
        let mut docs = Vec::new();
        match &value {
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    expand(file, line, (0, format!("/{i}")), v, &mut docs)?;
                }
            }
            v => expand(file, line, (0, String::new()), v, &mut docs)?,
        }
        let piece = Piece {
            raw: 0..text.len(),
            header: String::new(),
            value,
            leading_comments: String::new(),
        };
        return Ok((vec![piece], docs));
    }
    let mut pieces = Vec::new();
    let mut docs = Vec::new();
    for (index, split) in split_documents(text).into_iter().enumerate() {
        let body = split.body.trim_start_matches('\u{feff}');
        let value = crate::yaml::load_document(body).map_err(|e| InputError::Parse {
            file: file.into(),
            line: split.start + e.line.max(1) - 1,
            message: e.message,
        })?;
        if !value.is_null() {
            let line = first_content_line(body, split.start);
            expand(file, line, (index, String::new()), &value, &mut docs)?;
        }
        let leading_comments = body
            .lines()
            .take_while(|l| {
                let t = l.trim();
                t.is_empty() || t.starts_with('#')
            })
            .map(|l| format!("{l}\n"))
            .collect();
        pieces.push(Piece {
            raw: split.raw,
            header: split.header,
            value,
            leading_comments,
        });
    }
    Ok((pieces, docs))
}

/// A document as split from its file: where it lies, and its content with line ends made `\n`.
struct Split {
    raw: std::ops::Range<usize>,
    header: String,
    /// 1-based line of the first line of `body`.
    start: usize,
    body: String,
}

/// The documents of a YAML stream, split at `---` (and `...`) lines as kubectl splits them.
/// Every byte of `text` belongs to exactly one piece, in order.
fn split_documents(text: &str) -> Vec<Split> {
    let mut docs = Vec::new();
    let mut current = Split {
        raw: 0..0,
        header: String::new(),
        start: 1,
        body: String::new(),
    };
    let mut offset = 0;
    for (i, raw_line) in text.split_inclusive('\n').enumerate() {
        let line = raw_line.trim_end_matches('\n').trim_end_matches('\r');
        let is_separator = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_separator || line == "..." {
            current.raw.end = offset;
            let mut next = Split {
                raw: offset..offset,
                header: raw_line.to_string(),
                start: i + 2,
                body: String::new(),
            };
            // Content after `--- ` on the same line belongs to the new document.
            if let Some(rest) = line
                .strip_prefix("---")
                .map(str::trim)
                .filter(|r| !r.is_empty() && !r.starts_with('#'))
            {
                next.start = i + 1;
                next.header = "---\n".into();
                next.body.push_str(rest);
                next.body.push('\n');
            }
            docs.push(std::mem::replace(&mut current, next));
        } else {
            current.body.push_str(line);
            current.body.push('\n');
        }
        offset += raw_line.len();
    }
    current.raw.end = text.len();
    docs.push(current);
    docs
}

fn first_content_line(chunk: &str, start: usize) -> usize {
    chunk
        .lines()
        .position(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        })
        .map_or(start, |i| start + i)
}

/// Checks one document is an object and flattens `kind: List` / `*List` items; `at` is the
/// piece and JSON pointer of `value` in its file.
fn expand(
    file: &str,
    line: usize,
    at: (usize, String),
    value: &Value,
    out: &mut Vec<Document>,
) -> Result<(), InputError> {
    let err = |message: String| InputError::NotObject {
        file: file.into(),
        line,
        message,
    };
    if !value.is_object() {
        return Err(err("document is not a Kubernetes object (expected a mapping)".into()));
    }
    let api_version = value.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version.is_empty() || kind.is_empty() {
        return Err(err(
            "document has no apiVersion and kind: every manifest object needs both".into(),
        ));
    }
    // AdmissionReviews (examples/review-*.json, captured requests) are API messages, not
    // manifests: a directory holding both is checked for its manifests only.
    if kind == "AdmissionReview" && api_version.starts_with("admission.k8s.io/") {
        return Ok(());
    }
    if kind == "List" || (kind.ends_with("List") && value.get("items").is_some_and(Value::is_array)) {
        if let Some(Value::Array(items)) = value.get("items") {
            for (i, item) in items.iter().enumerate() {
                expand(file, line, (at.0, format!("{}/items/{i}", at.1)), item, out)?;
            }
        }
        return Ok(());
    }
    out.push(Document {
        file: file.into(),
        line,
        value: value.clone(),
        piece: at.0,
        pointer: at.1,
    });
    Ok(())
}

/// Sets `metadata.namespace` on objects that carry none, as `kubectl apply -n` does; objects of
/// cluster-scoped kinds stay without one.
pub fn default_namespace(docs: &mut [Document], namespace: &str) {
    const CLUSTER_SCOPED: &[&str] = &[
        "Namespace",
        "Node",
        "PersistentVolume",
        "StorageClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "PriorityClass",
        "IngressClass",
        "RuntimeClass",
        "APIService",
        "CSIDriver",
        "ClusterIssuer",
        "ClusterImageCatalog",
    ];
    for doc in docs {
        let kind = doc.value.get("kind").and_then(Value::as_str).unwrap_or("");
        if CLUSTER_SCOPED.contains(&kind) {
            continue;
        }
        let Some(object) = doc.value.as_object_mut() else {
            continue;
        };
        let metadata = object
            .entry("metadata")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Some(metadata) = metadata.as_object_mut() {
            let has = metadata
                .get("namespace")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            if !has {
                metadata.insert("namespace".into(), Value::String(namespace.into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_admission_review_file_gets_a_note_and_a_walked_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let review = dir.path().join("review.json");
        fs::write(
            &review,
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x"}}"#,
        )
        .unwrap();
        fs::write(
            dir.path().join("cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
        )
        .unwrap();
        let named = load(std::slice::from_ref(&review)).unwrap();
        assert!(named.docs.is_empty());
        assert_eq!(named.skipped.len(), 1, "{:?}", named.skipped);
        assert!(
            named.skipped[0].starts_with(&format!(
                "{}: an AdmissionReview (a request to the webhook, not a manifest), not checked",
                review.display()
            )),
            "{}",
            named.skipped[0]
        );
        let walked = load(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(walked.docs.len(), 1);
        assert!(walked.skipped.is_empty(), "{:?}", walked.skipped);
        // YAML, several documents, next to a manifest in the same file.
        let mixed = dir.path().join("mixed.yaml");
        fs::write(
            &mixed,
            "apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\n---\napiVersion: admission.k8s.io/v1\nkind: AdmissionReview\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
        )
        .unwrap();
        let named = load(&[mixed]).unwrap();
        assert_eq!(named.docs.len(), 1);
        assert!(
            named.skipped[0].contains(": 2 AdmissionReviews (a request"),
            "{:?}",
            named.skipped
        );
    }

    #[test]
    fn documents_carry_the_line_their_object_starts_on() {
        let text = "# leading comment\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n# Source: x\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: d}}\n";
        let docs = parse("f.yaml", text).unwrap();
        let got: Vec<(usize, &str)> = docs
            .iter()
            .map(|d| (d.line, d.value["metadata"]["name"].as_str().unwrap()))
            .collect();
        assert_eq!(got, vec![(2, "a"), (7, "b"), (12, "c"), (12, "d")]);
    }

    #[test]
    fn yaml_errors_name_the_file_and_absolute_line() {
        let text =
            "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n";
        match parse("bad.yaml", text) {
            Err(InputError::Parse { file, line, .. }) => {
                assert_eq!(file, "bad.yaml");
                assert!((7..=8).contains(&line), "line {line}");
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn merge_keys_are_resolved_like_kubectl_does() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers:\n      - &base\n        name: web\n        image: ghcr.io/acme/web:1\n        env: [{name: DB_URL, value: 'postgres://u:p@db/app'}]\n      - <<: *base\n        name: sidecar\n";
        let docs = parse("f.yaml", text).unwrap();
        let containers = &docs[0].value["spec"]["template"]["spec"]["containers"];
        assert_eq!(
            containers[1]["name"], "sidecar",
            "the explicit key wins over the merged one"
        );
        assert_eq!(containers[1]["image"], "ghcr.io/acme/web:1");
        assert_eq!(containers[1]["env"], containers[0]["env"]);
        assert!(containers[1].get("<<").is_none());
        let err = parse("f.yaml", "apiVersion: v1\nkind: ConfigMap\n<<: 5\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("f.yaml:"), "{err}");
    }

    #[test]
    fn walked_directories_skip_files_that_hold_no_object() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write("chart/Chart.yaml", "apiVersion: v2\nname: shop\nversion: 1.0.0\n");
        write("chart/values.yaml", "image: {tag: v1}\n");
        write("kustomization.yaml", "resources: [app.yaml]\n");
        write("app.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n");
        let loaded = load(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(loaded.docs.len(), 1);
        assert_eq!(loaded.skipped.len(), 3, "{:?}", loaded.skipped);
        assert!(loaded.skipped[0].contains("Chart.yaml: document has no apiVersion and kind"));

        // A manifest with one broken document is still an error, and so is a named file.
        write(
            "broken.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n---\nname: oops\n",
        );
        let err = load(&[dir.path().to_path_buf()]).unwrap_err().to_string();
        assert!(err.contains("broken.yaml:5:"), "{err}");
        let named = dir.path().join("chart/values.yaml");
        assert!(load(&[named]).is_err());
    }

    #[test]
    fn a_document_without_kind_is_an_input_error() {
        let err = parse("x.yaml", "apiVersion: v1\nmetadata: {name: a}\n").unwrap_err();
        assert!(err.to_string().starts_with("x.yaml:1:"), "{err}");
    }

    #[test]
    fn admission_reviews_are_not_manifests() {
        let text = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x"}}"#;
        assert!(parse("review.json", text).unwrap().is_empty());
    }

    #[test]
    fn json_lists_and_arrays_are_expanded() {
        let text = r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}}]}"#;
        let docs = parse("x.json", text).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].value["kind"], "Namespace");
    }
}
