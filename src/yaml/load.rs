//! One YAML document to JSON, resolving plain scalars as go-yaml v2 does (YAML 1.1), the way
//! `kubectl apply`, Helm and Argo CD turn manifests into the JSON the API server receives.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A document that cannot be read. `line` is 1-based, relative to the text given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A node that JSON, or the tag it carries, cannot hold; becomes a [`LoadError`]'s message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    #[error("a mapping key is itself a mapping or list, which JSON cannot hold")]
    CompositeKey,
    #[error("{0} is not a number JSON can hold: quote it to mean the string")]
    NotAJsonNumber(String),
    #[error("{text:?} is not a valid !!{tag}")]
    TagMismatch { text: String, tag: String },
}

/// What an unrendered chart template fails with: the user ran dbhook on the chart's sources.
pub const TEMPLATE_HINT: &str = "looks like an unrendered template: run helm template first";

/// Reads one YAML document (the text between `---` lines) as kubectl does; an empty document
/// (only comments or nothing) is `null`. Merge keys (`<<: *defaults`) are resolved, explicit
/// keys winning over merged ones; a mapping key that is a number or boolean becomes its
/// string, as sigs.k8s.io/yaml makes it.
pub fn document(text: &str) -> Result<Value, LoadError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    let parsed = parser.load(&mut builder, true);
    let result = match parsed {
        Err(e) => Err(LoadError {
            line: e.marker().line().max(1),
            message: e.info().to_string(),
        }),
        Ok(()) => match builder.error {
            Some(e) => Err(e),
            None if builder.documents > 1 => Err(LoadError {
                line: 1,
                message: "more than one document where one was expected".into(),
            }),
            None => {
                let root = builder.root.unwrap_or(Value::Null);
                match templated_identity(&root, &builder.templated) {
                    Some(line) => Err(LoadError {
                        line,
                        message: TEMPLATE_HINT.into(),
                    }),
                    None => Ok(root),
                }
            }
        },
    };
    result.map_err(|e| match template_line(text) {
        Some(line) => LoadError {
            line,
            message: TEMPLATE_HINT.into(),
        },
        None => e,
    })
}

/// The line of a `{{ … }}` in the fields that name an object (apiVersion, kind, metadata name,
/// generateName, namespace): there it can only be a chart source, not a rendered manifest.
/// Elsewhere a plain `Pod {{ $labels.pod }} is down` (Prometheus rules, ApplicationSet and Argo
/// Workflows parameters) is an ordinary string that kubectl accepts, and so do we.
fn templated_identity(root: &Value, templated: &[(usize, String)]) -> Option<usize> {
    let meta = root.get("metadata");
    let fields = [
        root.get("apiVersion"),
        root.get("kind"),
        meta.and_then(|m| m.get("name")),
        meta.and_then(|m| m.get("generateName")),
        meta.and_then(|m| m.get("namespace")),
    ];
    fields.into_iter().flatten().filter_map(Value::as_str).find_map(|v| {
        templated
            .iter()
            .find(|(_, text)| text == v)
            .map(|(line, _)| (*line).max(1))
    })
}

/// The first line holding `{{ … }}` outside a quoted string or comment, if any: where a chart
/// template would break the YAML.
fn template_line(text: &str) -> Option<usize> {
    text.lines().position(looks_templated).map(|i| i + 1)
}

fn looks_templated(line: &str) -> bool {
    let code = line.split(" #").next().unwrap_or(line);
    if code.trim_start().starts_with('#') {
        return false;
    }
    let Some(open) = code.find("{{") else {
        return false;
    };
    if !code[open..].contains("}}") {
        return false;
    }
    // `key: "{{ x }}"` is a quoted string (Argo Workflows, alert templates): valid as written.
    let before = &code[..open];
    !(before.contains('"') || before.contains('\''))
}

enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
    },
    Map {
        map: Map<String, Value>,
        key: Option<String>,
        /// Values of `<<` keys, applied at the end so that explicit keys win wherever they are.
        merges: Vec<Value>,
        /// The pending key is `<<` (a plain one: a quoted `"<<"` is an ordinary key).
        merge_next: bool,
        anchor: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    root: Option<Value>,
    documents: usize,
    line: usize,
    error: Option<LoadError>,
    /// Plain scalars holding `{{ … }}`, with their lines.
    templated: Vec<(usize, String)>,
}

impl Builder {
    fn fail(&mut self, message: String) {
        if self.error.is_none() {
            self.error = Some(LoadError {
                line: self.line.max(1),
                message,
            });
        }
    }

    /// Places a finished node into its parent (or as the document root).
    fn push(&mut self, value: Value, anchor: usize, is_merge_key: bool) {
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        let Some(top) = self.stack.last_mut() else {
            self.root = Some(value);
            return;
        };
        match top {
            Frame::Seq { items, .. } => items.push(value),
            Frame::Map {
                map,
                key,
                merges,
                merge_next,
                ..
            } => match key.take() {
                None if is_merge_key => {
                    *merge_next = true;
                    *key = Some("<<".into());
                }
                None => match key_string(&value) {
                    Ok(k) => *key = Some(k),
                    Err(e) => self.fail(e.to_string()),
                },
                Some(_) if *merge_next => {
                    *merge_next = false;
                    merges.push(value);
                }
                Some(k) => {
                    if map.contains_key(&k) {
                        let message = format!("duplicate key `{k}` in a mapping");
                        self.fail(message);
                    } else {
                        map.insert(k, value);
                    }
                }
            },
        }
    }

    fn end_map(&mut self) {
        let Some(Frame::Map {
            mut map,
            merges,
            anchor,
            ..
        }) = self.stack.pop()
        else {
            return;
        };
        for merged in merges {
            // `<<: *a` or `<<: [*a, *b]`; earlier sources win over later ones.
            let sources = match merged {
                Value::Array(items) => items,
                other => vec![other],
            };
            for source in sources {
                let Value::Object(source) = source else {
                    self.fail("a merge key (<<) must refer to a mapping or a list of mappings".into());
                    return;
                };
                for (k, v) in source {
                    map.entry(k).or_insert(v);
                }
            }
        }
        self.push(Value::Object(map), anchor, false);
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        self.line = mark.line();
        if self.error.is_some() {
            return;
        }
        match event {
            Event::DocumentStart => self.documents += 1,
            Event::Scalar(text, style, anchor, tag) => {
                let expecting_key = matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
                let is_merge = expecting_key && style == TScalarStyle::Plain && tag.is_none() && text == "<<";
                if style == TScalarStyle::Plain && text.contains("{{") && text.contains("}}") {
                    self.templated.push((self.line, text.clone()));
                }
                match scalar(&text, style, tag.as_ref()) {
                    Ok(v) => self.push(v, anchor, is_merge),
                    Err(e) => self.fail(e.to_string()),
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(v) => self.push(v, 0, false),
                None => self.fail("alias to an unknown anchor".into()),
            },
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                items: Vec::new(),
                anchor,
            }),
            Event::SequenceEnd => {
                if let Some(Frame::Seq { items, anchor }) = self.stack.pop() {
                    self.push(Value::Array(items), anchor, false);
                }
            }
            Event::MappingStart(anchor, _) => {
                if matches!(self.stack.last(), Some(Frame::Map { key: None, .. })) {
                    self.fail(NodeError::CompositeKey.to_string());
                    return;
                }
                self.stack.push(Frame::Map {
                    map: Map::new(),
                    key: None,
                    merges: Vec::new(),
                    merge_next: false,
                    anchor,
                });
            }
            Event::MappingEnd => self.end_map(),
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

/// A key as sigs.k8s.io/yaml writes it into JSON: strings as they are, `true`, `1`, `null` as
/// their text. Sequences and mappings as keys are refused at `MappingStart`/here.
fn key_string(value: &Value) -> Result<String, NodeError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Null => Ok("null".into()),
        _ => Err(NodeError::CompositeKey),
    }
}

/// A scalar with its tag, or resolved by YAML 1.1 rules when plain and untagged.
fn scalar(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Result<Value, NodeError> {
    let core = tag.filter(|t| t.handle == "tag:yaml.org,2002:" || t.handle == "!!");
    match core.map(|t| t.suffix.as_str()) {
        Some("str") | Some("binary") | Some("timestamp") => return Ok(Value::String(text.into())),
        Some(kind @ ("int" | "float" | "bool" | "null")) => {
            let v = resolve(text)?;
            let fits = match kind {
                "int" => v.is_i64() || v.is_u64(),
                "float" => v.is_number(),
                "bool" => v.is_boolean(),
                _ => v.is_null(),
            };
            return if fits {
                Ok(v)
            } else {
                Err(NodeError::TagMismatch {
                    text: text.to_string(),
                    tag: kind.to_string(),
                })
            };
        }
        _ => {}
    }
    if style != TScalarStyle::Plain || tag.is_some() {
        return Ok(Value::String(text.into()));
    }
    resolve(text)
}

/// go-yaml v2's resolver for a plain scalar (resolve.go), with its results as JSON.
pub fn resolve(text: &str) -> Result<Value, NodeError> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Ok(Value::Bool(true));
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Ok(Value::Bool(false));
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF" | ".nan" | ".NaN"
        | ".NAN" => {
            return Err(NodeError::NotAJsonNumber(text.to_string()));
        }
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) {
        return Ok(Value::String(text.into()));
    }
    // Timestamps stay strings: go-yaml v2 keeps them as written when the target is untyped.
    let plain = text.replace('_', "");
    if first != b'.'
        && let Some(n) = parse_go_int(&plain)
    {
        return Ok(Value::Number(n));
    }
    if is_yaml_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
    {
        return Ok(float(f));
    }
    Ok(Value::String(text.into()))
}

/// Go's `strconv.ParseInt(s, 0, 64)`, then `ParseUint`: optional sign, `0x`/`0o`/`0b`
/// prefixes, a leading `0` meaning octal.
fn parse_go_int(s: &str) -> Option<Number> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(b) = lower.strip_prefix("0x") {
        (16, b)
    } else if let Some(b) = lower.strip_prefix("0o") {
        (8, b)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u128::from_str_radix(body, radix).ok()?;
    if negative {
        let v = i128::try_from(magnitude).ok().map(|m| -m)?;
        i64::try_from(v).ok().map(Number::from)
    } else if let Ok(v) = i64::try_from(magnitude) {
        Some(Number::from(v))
    } else {
        u64::try_from(magnitude).ok().map(Number::from)
    }
}

/// go-yaml v2's `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

/// A float as encoding/json writes it after sigs.k8s.io/yaml: integral values without a
/// fraction, which JSON readers take for integers.
fn float(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        // The cast is exact: |f| < 2^53 and f is integral.
        #[allow(clippy::cast_possible_truncation)]
        return Value::Number(Number::from(f as i64));
    }
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_scalars_resolve_as_go_yaml_v2_does() {
        let cases = [
            ("yes", json!(true)),
            ("Y", json!(true)),
            ("on", json!(true)),
            ("OFF", json!(false)),
            ("n", json!(false)),
            ("yEs", json!("yEs")),
            ("~", json!(null)),
            ("0755", json!(493)),
            ("0x1F", json!(31)),
            ("0b101", json!(5)),
            ("-0o17", json!(-15)),
            ("1_000", json!(1000)),
            ("1e3", json!(1000)),
            ("1.5", json!(1.5)),
            ("08", json!(8)),
            ("1:20", json!("1:20")),
            ("2024-01-01", json!("2024-01-01")),
            ("18446744073709551615", json!(18_446_744_073_709_551_615_u64)),
            ("v1", json!("v1")),
            ("-", json!("-")),
            ("1.2.3", json!("1.2.3")),
            (".5", json!(0.5)),
        ];
        for (text, want) in cases {
            assert_eq!(resolve(text).unwrap(), want, "{text}");
        }
        assert!(resolve(".inf").is_err());
    }

    #[test]
    fn quoted_and_tagged_scalars_are_strings() {
        let v = document("a: 'on'\nb: \"0755\"\nc: !!str yes\nd: on\ne: |\n  on\nf: !!int \"12\"\n").unwrap();
        assert_eq!(
            v,
            json!({"a": "on", "b": "0755", "c": "yes", "d": true, "e": "on\n", "f": 12})
        );
    }

    #[test]
    fn keys_become_strings_and_merges_resolve() {
        let v = document("on: 1\n2: x\nbase: &b {x: 1, z: 2}\nm:\n  x: 9\n  <<: *b\n").unwrap();
        assert_eq!(
            v,
            json!({"true": 1, "2": "x", "base": {"x": 1, "z": 2}, "m": {"x": 9, "z": 2}})
        );
        let err = document("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(err.message.contains("duplicate key `a`"), "{err}");
    }

    #[test]
    fn templates_are_named_as_such() {
        for text in [
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n",
            "{{- if .Values.enabled }}\napiVersion: v1\nkind: ConfigMap\n",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x-{{ .Release.Name }}\n",
        ] {
            let err = document(text).unwrap_err();
            assert_eq!(err.message, TEMPLATE_HINT, "{text}");
        }
        let quoted = document("a: \"{{ .Values.x }}\"\n").unwrap();
        assert_eq!(quoted, json!({"a": "{{ .Values.x }}"}));
    }

    #[test]
    fn braces_inside_a_plain_string_are_read_as_kubectl_reads_them() {
        // As in CloudNativePG's own samples/monitoring/prometheusrule.yaml and rendered
        // kube-prometheus rules, ApplicationSets and Argo Workflows: valid YAML, kubectl applies it.
        let rule = "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: cnpg\nspec:\n  groups:\n  - name: r\n    rules:\n    - alert: Long\n      annotations:\n        description: Pod {{ $labels.pod }} is slow.\n";
        let v = document(rule).unwrap();
        assert_eq!(
            v["spec"]["groups"][0]["rules"][0]["annotations"]["description"],
            json!("Pod {{ $labels.pod }} is slow.")
        );
        let appset = "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: apps\nspec:\n  template:\n    spec:\n      source:\n        helm:\n          valueFiles:\n          - $values/{{valuesPath}}\n";
        assert_eq!(
            document(appset).unwrap()["spec"]["template"]["spec"]["source"]["helm"]["valueFiles"][0],
            json!("$values/{{valuesPath}}")
        );
        // In a field naming the object it can only be a chart source, and says so with its line.
        let err = document(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {a: b}\n  namespace: ns-{{ .Release.Namespace }}\n",
        )
        .unwrap_err();
        assert_eq!((err.line, err.message.as_str()), (5, TEMPLATE_HINT));
    }

    #[test]
    fn syntax_errors_carry_the_line() {
        let err = document("a: 1\nb:\n  c: [unclosed\n").unwrap_err();
        assert!((3..=4).contains(&err.line), "{err}");
    }
}
