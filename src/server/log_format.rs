//! The JSON log line of `dbhook serve`: the same object tracing-subscriber's JSON format writes
//! with `flatten_event(true)` and no spans — `timestamp`, `level`, the event's fields in order
//! (`message` first), `target` — written straight into the line.
//!
//! tracing-subscriber's formatter collects each field into a `serde_json::Value` before writing
//! it: about 2,000 instructions a field, 28,000 for the per-review line, which was as much CPU
//! as the policy's whole decision on a review. This writes each field as it is visited.
//! `log_format::tests` checks the two give the same JSON for the same events.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// One JSON object per event, one event per line.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        writer.write_str("{\"timestamp\":\"")?;
        writer.write_str(&timestamp(chrono::Utc::now()))?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(meta.level().as_str())?;
        writer.write_char('"')?;
        let mut fields = Fields {
            out: &mut writer,
            log_target: None,
            result: Ok(()),
        };
        event.record(&mut fields);
        let Fields { log_target, result, .. } = fields;
        result?;
        // Events forwarded from the `log` crate name their origin in `log.target`.
        let target = log_target.as_deref().unwrap_or(meta.target());
        writer.write_str(",\"target\":")?;
        string(&mut writer, target)?;
        writer.write_str("}\n")
    }
}

/// `2026-12-01T12:23:28.414985Z`, as tracing-subscriber writes it (chrono's `format` costs
/// several times more for the same text).
fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::{Datelike, Timelike};
    fn digits(out: &mut [u8], mut n: u32) {
        for d in out.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }
    let mut b = *b"0000-00-00T00:00:00.000000Z";
    digits(&mut b[0..4], u32::try_from(t.year()).unwrap_or(0).min(9999));
    digits(&mut b[5..7], t.month());
    digits(&mut b[8..10], t.day());
    digits(&mut b[11..13], t.hour());
    digits(&mut b[14..16], t.minute());
    // A leap second is nanosecond 1e9 and more; tracing-subscriber shows it as :60.
    let (second, nanos) = match t.nanosecond() {
        n if n >= 1_000_000_000 => (t.second() + 1, n - 1_000_000_000),
        n => (t.second(), n),
    };
    digits(&mut b[17..19], second);
    digits(&mut b[20..26], nanos / 1_000);
    String::from_utf8_lossy(&b).into_owned()
}

/// Writes each field as `,"name":value`.
struct Fields<'a, 'w> {
    out: &'a mut Writer<'w>,
    log_target: Option<String>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            self.out.write_char(',')?;
            string(self.out, field.name())?;
            self.out.write_char(':')?;
            value(self.out)
        })();
    }

    /// `log.*` fields describe a `log` record's origin: the target is kept, the rest dropped,
    /// as tracing-subscriber does.
    fn is_log_metadata(&mut self, field: &Field, value: &dyn fmt::Display) -> bool {
        match field.name() {
            "log.target" => {
                self.log_target = Some(value.to_string());
                true
            }
            name => name.starts_with("log."),
        }
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.is_log_metadata(field, &value) {
            self.field(field, |w| string(w, value));
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity; serde_json writes null for them.
        if value.is_finite() {
            let text = ryu_free(value);
            self.field(field, |w| w.write_str(&text));
        } else {
            self.field(field, |w| w.write_str("null"));
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, |w| display_string(w, value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let shown = DebugAsDisplay(value);
        if !self.is_log_metadata(field, &shown) {
            self.field(field, |w| display_string(w, &shown));
        }
    }
}

/// An `f64` as serde_json writes it (shortest round-trip form, `.0` on whole numbers).
fn ryu_free(value: f64) -> String {
    let text = value.to_string();
    if text.contains(['.', 'e', 'E']) {
        text
    } else {
        text + ".0"
    }
}

struct DebugAsDisplay<'a>(&'a dyn fmt::Debug);

impl fmt::Display for DebugAsDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

/// `value` displayed as a JSON string, escaped as it is written.
fn display_string(w: &mut dyn fmt::Write, value: &dyn fmt::Display) -> fmt::Result {
    w.write_char('"')?;
    write!(Escaping(w), "{value}")?;
    w.write_char('"')
}

fn string(w: &mut dyn fmt::Write, value: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaping(w).write_str(value)?;
    w.write_char('"')
}

/// Escapes what JSON requires inside a string: quote, backslash, control characters.
struct Escaping<'a>(&'a mut dyn fmt::Write);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            return self.0.write_str(s);
        }
        let mut plain = 0;
        for (i, b) in s.bytes().enumerate() {
            let escaped = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0..0x20 => "",
                _ => continue,
            };
            self.0.write_str(&s[plain..i])?;
            if escaped.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escaped)?;
            }
            plain = i + 1;
        }
        self.0.write_str(&s[plain..])
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use serde_json::Value;
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    #[derive(Debug)]
    #[allow(dead_code)] // printed with Debug
    struct Odd {
        text: &'static str,
    }

    fn events() {
        let s = String::from("shop \"quoted\" \\ back\nline\ttab\u{1}\u{7f} é 🚀");
        tracing::info!(
            webhook = "mutate",
            uid = %"b8e5f2a4",
            kind = s.as_str(),
            operation = "CREATE",
            dry_run = false,
            allowed = true,
            findings = 3usize,
            patch_ops = 0u64,
            delta = -7i64,
            duration_ms = 3.62458f64,
            whole = 2.0f64,
            tiny = 1.5e-7f64,
            huge = 1e300f64,
            nan = f64::NAN,
            odd = ?Odd { text: "a\"b" },
            "admission review"
        );
        tracing::warn!(status = 400u16, reason = %s, "admission request rejected: {}", 42);
        let error = io::Error::other("disk \"full\"");
        tracing::error!(
            error = &error as &(dyn std::error::Error + 'static),
            "no message fields"
        );
        tracing::debug!("filtered out");
        tracing::info!(target: "custom::target", "{s}");
    }

    fn render<F>(install: F) -> Vec<Value>
    where
        F: FnOnce(Captured) -> tracing::Dispatch,
    {
        let captured = Captured::default();
        let dispatch = install(captured.clone());
        tracing::dispatcher::with_default(&dispatch, events);
        let bytes = captured.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.ends_with('\n'));
        text.lines()
            .map(|line| {
                let mut v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
                let ts = v["timestamp"].as_str().unwrap().to_string();
                assert!(chrono::DateTime::parse_from_rfc3339(&ts).is_ok(), "{ts}");
                assert_eq!(ts.len(), "2026-12-01T12:23:28.414985Z".len(), "{ts}");
                v["timestamp"] = Value::Null;
                v
            })
            .collect()
    }

    #[test]
    fn writes_the_same_json_as_tracing_subscribers_formatter() {
        let ours = render(|w| {
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::INFO)
                .with_writer(w)
                .event_format(JsonLine)
                .into()
        });
        let theirs = render(|w| {
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::INFO)
                .with_writer(w)
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .into()
        });
        assert_eq!(ours.len(), 4);
        assert_eq!(ours, theirs);
        // Same key order too: consumers that read lines as text see the same layout.
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(keys(a), keys(b));
        }
        assert_eq!(ours[0]["kind"], "shop \"quoted\" \\ back\nline\ttab\u{1}\u{7f} é 🚀");
        assert_eq!(ours[0]["duration_ms"], 3.62458);
        assert_eq!(ours[0]["nan"], Value::Null);
        assert_eq!(ours[1]["message"], "admission request rejected: 42");
        assert_eq!(ours[3]["target"], "custom::target");
    }

    #[test]
    fn timestamps_read_as_the_instant_they_name() {
        use chrono::TimeZone;
        let cases = [
            (
                chrono::Utc.with_ymd_and_hms(2026, 12, 1, 12, 23, 28).unwrap(),
                414_985_123,
                "2026-12-01T12:23:28.414985Z",
            ),
            (
                chrono::Utc.with_ymd_and_hms(1999, 1, 9, 0, 0, 0).unwrap(),
                0,
                "1999-01-09T00:00:00.000000Z",
            ),
            (
                chrono::Utc.with_ymd_and_hms(2030, 10, 31, 23, 59, 59).unwrap(),
                999_999_999,
                "2030-10-31T23:59:59.999999Z",
            ),
        ];
        for (t, nanos, want) in cases {
            let t = t + chrono::Duration::nanoseconds(nanos);
            assert_eq!(timestamp(t), want);
            assert_eq!(timestamp(t), t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
        }
    }

    #[test]
    fn floats_read_back_as_the_same_number() {
        for x in [0.0, 1.0, -2.5, 3.62458, 1e-7, 1.5e300, f64::MIN_POSITIVE, 123456789.0] {
            let text = ryu_free(x);
            let back: f64 = serde_json::from_str(&text).unwrap();
            assert_eq!(back, x, "{text}");
        }
    }
}
