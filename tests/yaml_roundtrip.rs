//! `dbhook mutate` as a Helm post-renderer sees it: untouched documents come back byte for
//! byte, and patched ones read back the same with YAML 1.1 rules (kubectl, Helm, Argo CD) and
//! YAML 1.2 rules. The YAML 1.1 reading here is written from the 1.1 type regexes
//! (yaml.org/type), independently of dbhook's own go-yaml-v2 resolver.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use regex::Regex;
use serde_json::{Map, Value, json};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use dbhook::cli::mutate::mutate_sources;
use dbhook::manifest::Source;
use dbhook::policy::Policy;

use crate::cli_support::{ROOT, dbhook, stdout};

/// A plain scalar as YAML 1.1 types it. Values that are not strings are tagged so that a
/// string can never compare equal to them.
fn resolve_1_1(s: &str) -> Value {
    let re = |p: &str| Regex::new(&format!("^(?:{p})$")).unwrap();
    let bool_true = re("y|Y|yes|Yes|YES|true|True|TRUE|on|On|ON");
    let bool_false = re("n|N|no|No|NO|false|False|FALSE|off|Off|OFF");
    let null = re("~|null|Null|NULL|");
    let int = re(
        r"[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+",
    );
    let float = re(
        r"[-+]?(?:[0-9][0-9_]*)?\.[0-9.]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
    );
    let timestamp = re(
        r"[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?",
    );
    let merge = re("<<");
    if bool_true.is_match(s) {
        json!(true)
    } else if bool_false.is_match(s) {
        json!(false)
    } else if null.is_match(s) {
        Value::Null
    } else if int.is_match(s) {
        json!({"!!int": int_value(s)})
    } else if float.is_match(s) {
        json!({"!!float": s.replace('_', "")})
    } else if timestamp.is_match(s) {
        json!({"!!timestamp": s})
    } else if merge.is_match(s) {
        json!({"!!merge": s})
    } else {
        Value::String(s.to_string())
    }
}

/// YAML 1.1 integers, sexagesimal ones included, as a canonical decimal string.
fn int_value(s: &str) -> String {
    let s = s.replace('_', "");
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, s.trim_start_matches('+').to_string()),
    };
    let magnitude: i128 = if let Some(b) = body.strip_prefix("0b") {
        i128::from_str_radix(b, 2).unwrap_or(0)
    } else if let Some(h) = body.strip_prefix("0x") {
        i128::from_str_radix(h, 16).unwrap_or(0)
    } else if body.contains(':') {
        body.split(':')
            .fold(0, |acc, part| acc * 60 + part.parse::<i128>().unwrap_or(0))
    } else if body.len() > 1 && body.starts_with('0') {
        i128::from_str_radix(&body[1..], 8).unwrap_or(0)
    } else {
        body.parse().unwrap_or(0)
    };
    (if neg { -magnitude } else { magnitude }).to_string()
}

/// A collection being read: its value, the pending key of a mapping, its anchor.
type Frame = (Value, Option<String>, usize);

#[derive(Default)]
struct Reader {
    stack: Vec<Frame>,
    anchors: std::collections::HashMap<usize, Value>,
    docs: Vec<Value>,
}

impl Reader {
    fn push(&mut self, v: Value, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, v.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(v),
            Some((Value::Array(items), _, _)) => items.push(v),
            Some((Value::Object(map), key, _)) => match key.take() {
                None => *key = Some(key_text(&v)),
                Some(k) => {
                    map.insert(k, v);
                }
            },
            Some(_) => unreachable!(),
        }
    }
}

fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl MarkedEventReceiver for Reader {
    fn on_event(&mut self, ev: Event, _: Marker) {
        match ev {
            Event::Scalar(s, style, anchor, tag) => {
                let v = if style == TScalarStyle::Plain && tag.is_none() {
                    resolve_1_1(&s)
                } else {
                    Value::String(s)
                };
                self.push(v, anchor);
            }
            Event::Alias(id) => {
                let v = self.anchors.get(&id).cloned().unwrap_or(Value::Null);
                self.push(v, 0);
            }
            Event::SequenceStart(anchor, _) => self.stack.push((json!([]), None, anchor)),
            Event::MappingStart(anchor, _) => self.stack.push((Value::Object(Map::new()), None, anchor)),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((v, _, anchor)) = self.stack.pop() {
                    self.push(v, anchor);
                }
            }
            _ => {}
        }
    }
}

/// Every document of a stream as a YAML 1.1 reader types it.
fn read_1_1(text: &str) -> Vec<Value> {
    let mut reader = Reader::default();
    Parser::new_from_str(text)
        .load(&mut reader, true)
        .unwrap_or_else(|e| panic!("YAML 1.1 reading failed: {e}\n{text}"));
    reader.docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
}

fn mutate(file: &str, text: &str) -> String {
    let sources = [Source {
        file: file.into(),
        text: text.into(),
    }];
    mutate_sources(&sources, &Policy::default()).unwrap().yaml
}

/// Takes out of `after` the env entries that are not in `before`: what the injection added.
fn strip_injected(before: &Value, after: &mut Value) -> usize {
    let mut removed = 0;
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            if let (None, Some(Value::Array(env))) = (b.get("env"), a.get("env")) {
                removed += env.len();
                a.remove("env");
            }
            for (k, v) in a.iter_mut() {
                if let Some(bv) = b.get(k) {
                    removed += strip_injected(bv, v);
                }
            }
            if let (Some(Value::Array(be)), Some(Value::Array(ae))) = (b.get("env"), a.get_mut("env")) {
                while ae.len() > be.len() {
                    ae.pop();
                    removed += 1;
                }
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            for (bv, av) in b.iter().zip(a.iter_mut()) {
                removed += strip_injected(bv, av);
            }
        }
        _ => {}
    }
    removed
}

#[test]
fn every_fixture_round_trips_through_mutate() {
    let mut files = Vec::new();
    yaml_files(&Path::new(ROOT).join("tests/data"), &mut files);
    yaml_files(&Path::new(ROOT).join("examples"), &mut files);
    yaml_files(&Path::new(ROOT).join("src/rules/explain/examples"), &mut files);
    assert!(files.len() >= 10, "{files:?}");
    let mut injected = 0;
    for path in &files {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).unwrap();
        // Unlabelled, nothing is injected and every byte comes back.
        let unlabelled = text.replace("dbhook.io/cluster", "example.com/cluster");
        assert_eq!(mutate(&name, &unlabelled), unlabelled, "{name}");
        // Labelled, a YAML 1.1 reader sees the input plus the injected env, nothing else.
        let out = mutate(&name, &text);
        let before = read_1_1(&text);
        let mut after = read_1_1(&out);
        assert_eq!(before.len(), after.len(), "{name}");
        for (b, a) in before.iter().zip(after.iter_mut()) {
            let added = strip_injected(b, a);
            injected += added;
            assert_eq!(a, b, "{name}: the output differs beyond the injected env\n{out}");
        }
        // And the same with YAML 1.2 rules.
        let docs_12 = |t: &str| -> Vec<Value> {
            serde_yaml_ng::Deserializer::from_str(t)
                .map(|d| serde::Deserialize::deserialize(d).unwrap())
                .filter(|v: &Value| !v.is_null())
                .collect()
        };
        let mut after_12 = docs_12(&out);
        for (b, a) in docs_12(&text).iter().zip(after_12.iter_mut()) {
            strip_injected(b, a);
            if b.to_string().contains("dbhook.io/cluster") {
                assert_eq!(a, b, "{name} (YAML 1.2)");
            }
        }
    }
    assert!(
        injected >= 5,
        "the fixtures hold labelled workloads: {injected} env entries injected"
    );
}

#[test]
fn the_binary_passes_a_helm_stream_through_unchanged_and_quotes_what_it_writes() {
    let untouched = "---\n# Source: shop/templates/pg.yaml\napiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: shop-pg\nspec:\n  instances: 3\n  postgresql:\n    parameters:\n      hot_standby_feedback: 'on'   # a string: YAML 1.1 reads a bare on as true\n      synchronous_commit: \"off\"\n";
    let rollout = "---\n# Source: shop/templates/rollout.yaml\napiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: web\n  labels: {dbhook.io/cluster: shop-pg, feature: 'yes'}\n  annotations: {note: '1:20', mode: '0755', size: '1_000', short: 'n', e: '1e3', d: '2024-01-01', t: '~'}\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: ghcr.io/acme/web:v1\n";
    let input = format!("{untouched}{rollout}");
    let out = dbhook(&["mutate"], Some(&input));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    assert!(text.starts_with(untouched), "{text}");
    let docs = read_1_1(&text);
    assert_eq!(
        docs[0]["spec"]["postgresql"]["parameters"]["hot_standby_feedback"],
        "on"
    );
    let meta = &docs[1]["metadata"];
    assert_eq!(meta["labels"]["feature"], "yes");
    for (k, v) in [
        ("note", "1:20"),
        ("mode", "0755"),
        ("size", "1_000"),
        ("short", "n"),
        ("e", "1e3"),
        ("d", "2024-01-01"),
        ("t", "~"),
    ] {
        assert_eq!(meta["annotations"][k], v, "{k}\n{text}");
    }
    assert_eq!(
        docs[1]["spec"]["template"]["spec"]["containers"][0]["env"][0],
        json!({"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": "shop-pg-app", "key": "uri"}}})
    );
}

fn arbitrary_text() -> impl Strategy<Value = String> {
    prop_oneof![
        // Words and numbers YAML readers like to retype.
        prop::sample::select(vec![
            "on",
            "Off",
            "y",
            "N",
            "yes",
            "NO",
            "true",
            "~",
            "null",
            "",
            "0755",
            "1_000",
            "1e3",
            "1:20",
            "2024-01-01",
            "2024-01-01T10:00:00Z",
            ".inf",
            "-.5",
            "0x1F",
            "0b11",
            "+1",
            "<<",
            "=",
            "- x",
            "? x",
            "a: b",
            "#x",
            "x #y",
            "'",
            "\"",
            "\\",
            "|",
            ">-",
            "*a",
            "&a",
            "!tag",
            "%x",
            "@x",
            "`x",
            "{}",
            "[]",
            " x",
            "x ",
        ])
        .prop_map(str::to_string),
        any::<String>(),
        "[ -~\\t\\n\\r\u{85}\u{a0}\u{2028}\u{feff}é]{0,12}",
    ]
}

fn rollout(env: &str, label: &str, annotation: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "labels": {"dbhook.io/cluster": "shop-pg", "team": label},
            "annotations": {"note": annotation, annotation: "key"}
        },
        "spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "ghcr.io/acme/web:v1", "env": [{"name": "GREETING", "value": env}]}
        ]}}}
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_read_back_equal_with_yaml_1_1_and_1_2_rules(
        env in arbitrary_text(), label in arbitrary_text(), annotation in arbitrary_text()
    ) {
        let input = rollout(&env, &label, &annotation);
        let out = mutate("in.json", &input.to_string());
        let mut expected = input.clone();
        expected["spec"]["template"]["spec"]["containers"][0]["env"].as_array_mut().unwrap().push(
            json!({"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": "shop-pg-app", "key": "uri"}}}),
        );
        let read_11 = read_1_1(&out);
        prop_assert_eq!(read_11.len(), 1);
        prop_assert_eq!(&read_11[0], &expected, "YAML 1.1 reading of\n{}", out);
        let read_12: Value = serde_yaml_ng::from_str(&out).unwrap();
        prop_assert_eq!(&read_12, &expected, "YAML 1.2 reading of\n{}", out);
        // And dbhook reads its own output back as kubectl would.
        let again = dbhook::manifest::parse("out.yaml", &out).unwrap();
        prop_assert_eq!(&again[0].value, &expected);
    }
}
