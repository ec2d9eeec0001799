//! `/metrics` is OpenMetrics 1.0 and says so: the body is parsed here as strictly as Prometheus'
//! OpenMetrics parser reads it (families declared once and never interleaved, counter samples
//! `_total`, histogram buckets cumulative up to `+Inf`, `# EOF` last), because a content type
//! that names the wrong format makes Prometheus parse the body as that format and lose the
//! metric types.

use crate::server_support as support;

use std::collections::{BTreeMap, BTreeSet};

use support::*;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl Type {
    fn parse(s: &str) -> Option<Type> {
        Some(match s {
            "counter" => Type::Counter,
            "gauge" => Type::Gauge,
            "histogram" => Type::Histogram,
            "gaugehistogram" => Type::GaugeHistogram,
            "summary" => Type::Summary,
            "info" => Type::Info,
            "stateset" => Type::StateSet,
            "unknown" => Type::Unknown,
            _ => return None,
        })
    }

    /// The sample-name suffixes a family of this type may use.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            Type::Counter => &["_total", "_created"],
            Type::Gauge | Type::StateSet | Type::Unknown => &[""],
            Type::Histogram => &["_bucket", "_count", "_sum", "_created"],
            Type::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
            Type::Summary => &["", "_count", "_sum", "_created"],
            Type::Info => &["_info"],
        }
    }
}

#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

#[derive(Debug)]
struct Family {
    name: String,
    kind: Type,
    help: Option<String>,
    samples: Vec<Sample>,
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if s.is_empty() || s.contains(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c))) => {
            Err(format!("{s:?} is not a number"))
        }
        _ => s.parse().map_err(|_| format!("{s:?} is not a number")),
    }
}

/// `{a="x",b="y"}` at the start of `s`: the labels and the rest after `}`.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s.strip_prefix('{').ok_or("labels must start with {")?;
    if let Some(after) = rest.strip_prefix('}') {
        return Ok((labels, after));
    }
    loop {
        let eq = rest.find('=').ok_or("a label without =")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..].strip_prefix('"').ok_or("label values must be quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?} in a label value")),
                },
                Some((_, '\n')) => return Err("raw newline in a label value".into()),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        rest = rest.strip_prefix(',').ok_or("labels must be separated by ,")?;
        if rest.starts_with('}') {
            return Err("a trailing comma in the labels".into());
        }
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("a sample without a value")?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let (labels, rest) = if line[name_end..].starts_with('{') {
        parse_labels(&line[name_end..])?
    } else {
        (BTreeMap::new(), &line[name_end..])
    };
    let rest = rest.strip_prefix(' ').ok_or("one space before the value")?;
    if rest.contains(" # ") {
        return Err("exemplars are not expected here".into());
    }
    let mut parts = rest.split(' ');
    let value = parse_value(parts.next().unwrap_or(""))?;
    if let Some(ts) = parts.next() {
        parse_value(ts).map_err(|e| format!("timestamp: {e}"))?;
    }
    if parts.next().is_some() {
        return Err("trailing text after the timestamp".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Parses an OpenMetrics text exposition, refusing what Prometheus' OpenMetrics parser
/// refuses (and a little more: every family must declare its type).
fn parse(text: &str) -> Result<Vec<Family>, String> {
    let body = text
        .strip_suffix("# EOF\n")
        .ok_or("the exposition must end with \"# EOF\\n\"")?;
    let mut families: Vec<Family> = Vec::new();
    let mut seen = BTreeSet::new();
    for (n, line) in body.lines().enumerate() {
        let err = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.is_empty() || line.ends_with('\r') || line.ends_with(' ') {
            return Err(err("empty line, CR or trailing space".into()));
        }
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (keyword, name, rest) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next());
            if !is_metric_name(name) {
                return Err(err(format!("bad family name {name:?}")));
            }
            if families.last().is_none_or(|f| f.name != name) {
                if !seen.insert(name.to_string()) {
                    return Err(err(format!("family {name} declared twice or interleaved")));
                }
                families.push(Family {
                    name: name.to_string(),
                    kind: Type::Unknown,
                    help: None,
                    samples: Vec::new(),
                });
            }
            let family = families.last_mut().expect("pushed above");
            if !family.samples.is_empty() {
                return Err(err("metadata after the family's samples".into()));
            }
            match (keyword, rest) {
                ("HELP", Some(help)) if family.help.is_none() => family.help = Some(help.to_string()),
                ("TYPE", Some(t)) if family.kind == Type::Unknown => {
                    family.kind = Type::parse(t).ok_or_else(|| err(format!("unknown type {t}")))?;
                }
                ("UNIT", Some(unit)) if name.ends_with(&format!("_{unit}")) => {}
                _ => return Err(err("bad or repeated metadata".into())),
            }
            continue;
        }
        if line.starts_with('#') {
            return Err(err("a comment that is not HELP, TYPE, UNIT or EOF".into()));
        }
        let sample = parse_sample(line).map_err(err)?;
        let family = families
            .last_mut()
            .ok_or_else(|| err("a sample before any # TYPE".into()))?;
        let suffix = sample.name.strip_prefix(family.name.as_str());
        if family.kind == Type::Unknown || !suffix.is_some_and(|s| family.kind.suffixes().contains(&s)) {
            return Err(err(format!(
                "sample {} does not belong to the {:?} family {}",
                sample.name, family.kind, family.name
            )));
        }
        if matches!(family.kind, Type::Counter) && (sample.value.is_nan() || sample.value < 0.0) {
            return Err(err("a negative or NaN counter".into()));
        }
        if family
            .samples
            .iter()
            .any(|s| s.name == sample.name && s.labels == sample.labels)
        {
            return Err(err("a duplicate series".into()));
        }
        family.samples.push(sample);
    }
    for family in &families {
        if family.kind == Type::Histogram {
            check_histogram(family)?;
        }
    }
    Ok(families)
}

/// Per label set: contiguous samples, buckets in ascending `le` order ending at `+Inf`,
/// cumulative counts, `_count` equal to the `+Inf` bucket, and a `_sum`.
fn check_histogram(family: &Family) -> Result<(), String> {
    let mut order: Vec<BTreeMap<String, String>> = Vec::new();
    for s in &family.samples {
        let mut key = s.labels.clone();
        key.remove("le");
        if order.last() != Some(&key) {
            if order.contains(&key) {
                return Err(format!("{}: the samples of {key:?} are not contiguous", family.name));
            }
            order.push(key);
        }
    }
    for key in &order {
        let of = |suffix: &str| -> Vec<&Sample> {
            let name = format!("{}{suffix}", family.name);
            family
                .samples
                .iter()
                .filter(|s| {
                    let mut l = s.labels.clone();
                    l.remove("le");
                    s.name == name && l == *key
                })
                .collect()
        };
        let mut last = (f64::NEG_INFINITY, 0.0);
        for bucket in of("_bucket") {
            let le = bucket
                .labels
                .get("le")
                .ok_or_else(|| format!("{}: a bucket without le", family.name))
                .and_then(|le| parse_value(le))?;
            if le <= last.0 || bucket.value < last.1 || le.is_nan() || bucket.value.is_nan() {
                return Err(format!(
                    "{}: buckets not ascending and cumulative at le={le}",
                    family.name
                ));
            }
            last = (le, bucket.value);
        }
        if last.0 != f64::INFINITY {
            return Err(format!("{}: no +Inf bucket for {key:?}", family.name));
        }
        let count = of("_count");
        if count.len() != 1 || count[0].value != last.1 {
            return Err(format!("{}: _count is not the +Inf bucket for {key:?}", family.name));
        }
        if of("_sum").len() != 1 {
            return Err(format!("{}: no _sum for {key:?}", family.name));
        }
    }
    Ok(())
}

fn family<'a>(families: &'a [Family], name: &str) -> &'a Family {
    families
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

#[tokio::test]
async fn metrics_are_served_as_openmetrics_and_parse_as_openmetrics() {
    let (content_type, text) = metrics_after_patches_and_a_denial(2).await;
    assert_eq!(content_type, OPENMETRICS);
    let families = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));

    for (name, kind) in [
        ("dbhook_admission_requests", Type::Counter),
        ("dbhook_admission_duration_seconds", Type::Histogram),
        ("dbhook_findings", Type::Counter),
        ("dbhook_patches", Type::Counter),
        ("dbhook_tls_reloads", Type::Counter),
        ("dbhook_tls_cert_expiry_timestamp_seconds", Type::Gauge),
        ("dbhook_policy_reloads", Type::Counter),
    ] {
        let f = family(&families, name);
        assert_eq!(f.kind, kind, "{name}");
        assert!(f.help.as_deref().is_some_and(|h| !h.is_empty()), "{name} has help");
    }
    let patched: f64 = family(&families, "dbhook_admission_requests")
        .samples
        .iter()
        .filter(|s| s.labels.get("webhook").map(String::as_str) == Some("mutate"))
        .filter(|s| s.labels.get("result").map(String::as_str) == Some("patched"))
        .map(|s| s.value)
        .sum();
    assert_eq!(patched, 2.0, "two patched reviews:\n{text}");
    let durations = family(&families, "dbhook_admission_duration_seconds");
    let count = durations
        .samples
        .iter()
        .find(|s| s.name.ends_with("_count") && s.labels["webhook"] == "mutate")
        .expect("a _count for the mutate webhook");
    assert_eq!(count.value, 2.0);
}

#[test]
fn every_family_of_the_registry_parses_with_label_values_escaped() {
    use dbhook::metrics::{ResourceLabels, RuleActionLabels, WebhookLabels};
    let metrics = dbhook::metrics::Metrics::new();
    let awkward = "a \"quoted\" back\\slash\nnewline";
    metrics
        .view_synced
        .get_or_create(&ResourceLabels { resource: awkward })
        .set(1);
    metrics
        .report_findings
        .get_or_create(&RuleActionLabels {
            rule: "backup-configured",
            action: "deny",
        })
        .set(3);
    metrics
        .admission_duration
        .get_or_create(&WebhookLabels { webhook: "validate" })
        .observe(0.003);
    metrics
        .admission_duration
        .get_or_create(&WebhookLabels { webhook: "mutate" })
        .observe(5.0);
    metrics.tls_cert_expiry.set(1_900_000_000);
    let text = metrics.render();
    let families = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let synced = family(&families, "dbhook_view_synced");
    assert_eq!(synced.kind, Type::Gauge);
    assert_eq!(synced.samples[0].labels["resource"], awkward);
    assert_eq!(family(&families, "dbhook_report_findings").samples[0].value, 3.0);
    assert_eq!(
        family(&families, "dbhook_tls_cert_expiry_timestamp_seconds").samples[0].value,
        1.9e9
    );
}

/// The parser above is only worth something if it refuses what Prometheus refuses.
#[test]
fn the_openmetrics_parser_refuses_what_prometheus_refuses() {
    let good = "# HELP x_requests Requests.\n# TYPE x_requests counter\nx_requests_total{a=\"1\"} 2\n# EOF\n";
    assert!(parse(good).is_ok());
    let bad = [
        // The 0.0.4 text format: no # EOF.
        ("no EOF", good.replace("# EOF\n", "")),
        ("text after EOF", format!("{good}x 1\n")),
        ("counter without _total", good.replace("x_requests_total", "x_requests")),
        ("negative counter", good.replace("} 2", "} -2")),
        ("sample without TYPE", "x 1\n# EOF\n".into()),
        ("bad escape", good.replace("\"1\"", "\"\\t\"")),
        ("trailing comma", good.replace("a=\"1\"}", "a=\"1\",}")),
        (
            "duplicate series",
            good.replace("# EOF", "x_requests_total{a=\"1\"} 3\n# EOF"),
        ),
        (
            "interleaved family",
            "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\na 2\n# EOF\n".into(),
        ),
        ("not a number", good.replace("} 2", "} two")),
        (
            "histogram without +Inf",
            "# TYPE h histogram\nh_sum 1\nh_count 1\nh_bucket{le=\"1\"} 1\n# EOF\n".into(),
        ),
        (
            "histogram not cumulative",
            "# TYPE h histogram\nh_sum 1\nh_count 1\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n# EOF\n".into(),
        ),
        (
            "histogram count differs from +Inf",
            "# TYPE h histogram\nh_sum 1\nh_count 2\nh_bucket{le=\"+Inf\"} 1\n# EOF\n".into(),
        ),
    ];
    for (what, text) in bad {
        assert!(parse(&text).is_err(), "accepted {what}:\n{text}");
    }
}
