//! `dbhook mutate`: the injection applied to manifests, as a stdin→stdout filter.

use std::io::Write;

use kube::core::admission::Operation;
use serde_json::Value;

use super::{DocFormat, MutateArgs, exit, load_manifests, load_policy};
use crate::manifest::{Document, InputError};
use crate::model::Object;
use crate::mutate;
use crate::policy::Policy;

/// Applies the injection to each document; returns the documents and notes for stderr.
pub fn mutate_documents(docs: Vec<Document>, policy: &Policy) -> Result<(Vec<Value>, Vec<String>), InputError> {
    let mut out = Vec::with_capacity(docs.len());
    let mut notes = Vec::new();
    for doc in docs {
        let obj = Object::from_value(&doc.value).map_err(|e| InputError::Parse {
            file: doc.file.clone(),
            line: doc.line,
            message: e.to_string(),
        })?;
        let mut value = doc.value;
        if !policy.is_excluded(obj.namespace()) {
            let m = mutate::plan(&obj, &Operation::Create, policy);
            let at = format!("{}:{}: {} {}", doc.file, doc.line, obj.kind, obj.qualified_name());
            notes.extend(m.warnings.iter().map(|w| format!("{at}: {w}")));
            notes.extend(m.config_errors.iter().map(|e| format!("{at}: [injection-config] {e}")));
            json_patch::patch(&mut value, &m.patch).map_err(|e| InputError::Parse {
                file: doc.file.clone(),
                line: doc.line,
                message: format!("cannot apply injection: {e}"),
            })?;
        }
        out.push(value);
    }
    Ok((out, notes))
}

/// Renders documents as a multi-document YAML stream or a JSON List.
pub fn render(values: &[Value], format: DocFormat) -> Result<String, String> {
    match format {
        DocFormat::Json => {
            let doc = match values {
                [one] => one.clone(),
                many => serde_json::json!({"apiVersion": "v1", "kind": "List", "items": many}),
            };
            serde_json::to_string_pretty(&doc)
                .map(|s| s + "\n")
                .map_err(|e| e.to_string())
        }
        DocFormat::Yaml => {
            let mut s = String::new();
            for v in values {
                s.push_str("---\n");
                s.push_str(&serde_yaml_ng::to_string(v).map_err(|e| e.to_string())?);
            }
            Ok(s)
        }
    }
}

pub fn run(args: &MutateArgs) -> u8 {
    let policy = match load_policy(args.policy.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("dbhook: {e}");
            return exit::INPUT;
        }
    };
    let result = load_manifests(&args.paths).and_then(|docs| mutate_documents(docs, &policy));
    let (values, notes) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dbhook: {e}");
            return exit::INPUT;
        }
    };
    for n in &notes {
        eprintln!("dbhook: {n}");
    }
    match render(&values, args.output) {
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
