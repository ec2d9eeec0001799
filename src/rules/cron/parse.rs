//! Parsing of CNPG ScheduledBackup schedules: robfig/cron v1.2.0, seconds first.
//!
//! CloudNativePG parses `spec.schedule` with `cron.Parse` of robfig/cron **v1.2.0** (its go.mod
//! pins `github.com/robfig/cron v1.2.0`, not `/v3`): `second minute hour day-of-month month
//! [day-of-week]` plus descriptors. This module mirrors that grammar so the webhook judges a
//! schedule the way the operator will run it. What v1.2.0 does that later versions changed:
//! no `CRON_TZ=`/`TZ=` prefixes (a prefix is read as a field and fails); descriptors are
//! matched exactly, so `@daily ` or ` @daily` fail; `*/n` still counts as `*` for the
//! day-of-month/day-of-week AND-or-OR rule.
//!
//! Deliberate differences from robfig (all stricter, all about input nobody means):
//! empty list elements (`1,,2`), `*-5`, signed numbers (`+5`) and `@every` under one second
//! (robfig raises it to one second: a backup every second) are rejected instead of being
//! silently reinterpreted.

/// A parsed CNPG ScheduledBackup schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub(super) kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    Fields(Fields),
    /// `@every`: a fixed delay in whole seconds, always at least one.
    Every {
        seconds: i64,
    },
}

/// One bit per allowed value, as in robfig's `SpecSchedule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fields {
    pub(super) second: u64,
    pub(super) minute: u64,
    pub(super) hour: u64,
    pub(super) dom: u64,
    pub(super) month: u64,
    pub(super) dow: u64,
    /// robfig switches day matching from OR to AND when either day field was written
    /// as an unstepped `*`/`?`, so that has to be remembered next to the bits.
    pub(super) dom_star: bool,
    pub(super) dow_star: bool,
}

/// Why a schedule was rejected; `Display` gives a message fit for an admission response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Exactly five fields: carries the six-field suggestion, e.g. for "0 2 * * *" -> "0 0 2 * * *".
    #[error(
        "schedule has 5 fields, but CloudNativePG expects 6 with seconds first, so it would \
         not run when standard cron would (e.g. \"0 2 * * *\" runs hourly, not daily); \
         use \"{suggestion}\""
    )]
    FiveFields { suggestion: String },
    /// Anything else unparsable: a message naming the bad field and value.
    #[error("{0}")]
    Invalid(String),
}

/// Why one list element of a field was refused; shown after the field's name and text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ItemError {
    #[error("empty list element")]
    Empty,
    #[error("too many slashes in {0:?}")]
    Slashes(String),
    #[error("range {0:?} is missing a value")]
    MissingValue(String),
    #[error("too many hyphens in {0:?}")]
    Hyphens(String),
    #[error("range {range:?} is inverted: start {start} is after end {end}")]
    Inverted { range: String, start: u32, end: u32 },
    #[error("{text:?} is not a number{names_hint}")]
    NotANumber { text: String, names_hint: &'static str },
    #[error("value {text} out of range {min}-{max}{note}")]
    OutOfRange {
        text: String,
        min: u32,
        max: u32,
        note: &'static str,
    },
    #[error("missing step after '/'")]
    MissingStep,
    #[error("step {0:?} is not a number")]
    StepNotANumber(String),
    #[error("step must be a positive number, not 0")]
    ZeroStep,
    #[error("step {0} is too large")]
    StepTooLarge(String),
}

/// Why an `@every` duration is not a Go duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum DurationError {
    #[error("invalid duration")]
    Invalid,
    #[error("duration is too large")]
    TooLarge,
    #[error("expected a number at {0:?}")]
    ExpectedNumber(String),
    #[error("missing unit (use h, m, s, ms, us or ns)")]
    MissingUnit,
    #[error("unknown unit {0:?} (use h, m, s, ms, us or ns)")]
    UnknownUnit(String),
}

fn invalid(message: impl Into<String>) -> CronError {
    CronError::Invalid(message.into())
}

struct FieldSpec {
    label: &'static str,
    min: u32,
    max: u32,
    /// Names for `min`, `min + 1`, ... matched case-insensitively.
    names: &'static [&'static str],
    names_hint: &'static str,
}

const MONTH_NAMES: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DOW_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

const FIELD_SPECS: [FieldSpec; 6] = [
    FieldSpec::numeric("second", 0, 59),
    FieldSpec::numeric("minute", 0, 59),
    FieldSpec::numeric("hour", 0, 23),
    FieldSpec::numeric("day-of-month", 1, 31),
    FieldSpec {
        label: "month",
        min: 1,
        max: 12,
        names: &MONTH_NAMES,
        names_hint: " or a month name (JAN-DEC)",
    },
    FieldSpec {
        label: "day-of-week",
        min: 0,
        max: 6,
        names: &DOW_NAMES,
        names_hint: " or a day name (SUN-SAT)",
    },
];

const DESCRIPTORS: [(&str, &str); 7] = [
    ("@yearly", "0 0 0 1 1 *"),
    ("@annually", "0 0 0 1 1 *"),
    ("@monthly", "0 0 0 1 * *"),
    ("@weekly", "0 0 0 * * 0"),
    ("@daily", "0 0 0 * * *"),
    ("@midnight", "0 0 0 * * *"),
    ("@hourly", "0 0 * * * *"),
];

impl FieldSpec {
    const fn numeric(label: &'static str, min: u32, max: u32) -> Self {
        FieldSpec {
            label,
            min,
            max,
            names: &[],
            names_hint: "",
        }
    }

    fn lookup_name(&self, text: &str) -> Option<u32> {
        let index = self.names.iter().position(|n| n.eq_ignore_ascii_case(text))?;
        u32::try_from(index).ok().map(|i| self.min + i)
    }

    fn out_of_range(&self, text: &str) -> ItemError {
        // Standard cron accepts 7 for Sunday; robfig does not, which surprises people.
        let note = if self.names.len() == DOW_NAMES.len() && text.parse::<u32>() == Ok(7) {
            " (Sunday is 0 or SUN; robfig/cron does not accept 7)"
        } else {
            ""
        };
        ItemError::OutOfRange {
            text: text.to_string(),
            min: self.min,
            max: self.max,
            note,
        }
    }
}

/// Parses a ScheduledBackup `spec.schedule` the way CloudNativePG (robfig/cron v1.2.0) does.
pub fn parse(expr: &str) -> Result<Schedule, CronError> {
    let body = expr.trim_start();
    if body.trim_end().is_empty() {
        return Err(invalid("empty schedule"));
    }
    // robfig looks for a descriptor only at the very first byte.
    if expr.starts_with('@') {
        return parse_descriptor(expr);
    }
    if body.starts_with('@') {
        return Err(invalid(format!(
            "whitespace before {:?}: CloudNativePG reads descriptors only at the very start of the schedule",
            body.trim_end()
        )));
    }
    if let Some(prefix) = ["CRON_TZ=", "TZ="].into_iter().find(|p| body.starts_with(p)) {
        return Err(invalid(format!(
            "CloudNativePG's cron parser (robfig/cron v1.2.0) has no {prefix} time zone prefix and \
             rejects the schedule; drop it and write the time in the operator's time zone (UTC \
             unless its TZ is set)"
        )));
    }
    let fields: Vec<&str> = body.split_whitespace().collect();
    match fields.len() {
        6 => parse_six(&fields).map(Schedule::from_fields),
        5 => Err(five_field_error(&fields)),
        n => Err(invalid(format!(
            "expected 6 fields (second minute hour day-of-month month day-of-week), found {n}"
        ))),
    }
}

/// Five fields is almost always standard cron written for CNPG; suggest the six-field form,
/// but only when that form would actually be valid.
fn five_field_error(fields: &[&str]) -> CronError {
    let mut six = vec!["0"];
    six.extend_from_slice(fields);
    if let Err(CronError::Invalid(reason)) = parse_six(&six) {
        return invalid(format!(
            "{reason} (the schedule has 5 fields; CloudNativePG expects 6, seconds first)"
        ));
    }
    CronError::FiveFields {
        suggestion: six.join(" "),
    }
}

fn parse_six(fields: &[&str]) -> Result<Fields, CronError> {
    let mut bits = [0u64; 6];
    let mut stars = [false; 6];
    for (i, (text, spec)) in fields.iter().zip(&FIELD_SPECS).enumerate() {
        (bits[i], stars[i]) = parse_field(text, spec)?;
    }
    let [second, minute, hour, dom, month, dow] = bits;
    Ok(Fields {
        second,
        minute,
        hour,
        dom,
        month,
        dow,
        dom_star: stars[3],
        dow_star: stars[5],
    })
}

/// Returns the value bits and whether the field counts as `*` for day matching.
fn parse_field(text: &str, spec: &FieldSpec) -> Result<(u64, bool), CronError> {
    let mut bits = 0;
    let mut star = false;
    for item in text.split(',') {
        let (item_bits, item_star) =
            parse_item(item, spec).map_err(|reason| invalid(format!("{} field {text:?}: {reason}", spec.label)))?;
        bits |= item_bits;
        star |= item_star;
    }
    Ok((bits, star))
}

fn parse_item(item: &str, spec: &FieldSpec) -> Result<(u64, bool), ItemError> {
    if item.is_empty() {
        return Err(ItemError::Empty);
    }
    let mut parts = item.split('/');
    let range = parts.next().unwrap_or_default();
    let step_text = parts.next();
    if parts.next().is_some() {
        return Err(ItemError::Slashes(item.to_string()));
    }
    let (start, end, star) = parse_range(range, step_text.is_some(), spec)?;
    let step = step_text.map_or(Ok(1), parse_step)?;
    // robfig v1.2.0: `*` and `?` count as a star whatever the step (`*/2` too; v3 changed that).
    Ok((bits_between(start, end, step), star))
}

/// Returns (start, end, is_star) for `*`, `?`, `a`, `a-b`; a lone `a` with a step means `a-max`.
fn parse_range(range: &str, has_step: bool, spec: &FieldSpec) -> Result<(u32, u32, bool), ItemError> {
    if range == "*" || range == "?" {
        return Ok((spec.min, spec.max, true));
    }
    let (low, high) = match range.split_once('-') {
        Some((low, high)) => (low, Some(high)),
        None => (range, None),
    };
    if low.is_empty() || high == Some("") {
        return Err(ItemError::MissingValue(range.to_string()));
    }
    if high.is_some_and(|h| h.contains('-')) {
        return Err(ItemError::Hyphens(range.to_string()));
    }
    let start = parse_value(low, spec)?;
    let end = match high {
        Some(high) => parse_value(high, spec)?,
        None if has_step => spec.max,
        None => start,
    };
    if start > end {
        return Err(ItemError::Inverted {
            range: range.to_string(),
            start,
            end,
        });
    }
    Ok((start, end, false))
}

fn parse_value(text: &str, spec: &FieldSpec) -> Result<u32, ItemError> {
    if let Some(value) = spec.lookup_name(text) {
        return Ok(value);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ItemError::NotANumber {
            text: text.to_string(),
            names_hint: spec.names_hint,
        });
    }
    match text.parse::<u32>() {
        Ok(value) if (spec.min..=spec.max).contains(&value) => Ok(value),
        _ => Err(spec.out_of_range(text)),
    }
}

fn parse_step(text: &str) -> Result<u64, ItemError> {
    if text.is_empty() {
        return Err(ItemError::MissingStep);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ItemError::StepNotANumber(text.to_string()));
    }
    // robfig/cron reads the step with Go's strconv.Atoi: beyond a 64-bit int it is an error.
    match text.parse::<i64>() {
        Ok(0) => Err(ItemError::ZeroStep),
        Ok(step) => Ok(step.unsigned_abs()),
        Err(_) => Err(ItemError::StepTooLarge(text.to_string())),
    }
}

fn bits_between(start: u32, end: u32, step: u64) -> u64 {
    // A step wider than the range simply selects `start`; saturating keeps that true.
    let step = usize::try_from(step).unwrap_or(usize::MAX);
    (start..=end).step_by(step).fold(0, |bits, value| bits | 1u64 << value)
}

const EVERY_NEEDS_A_DURATION: &str = "@every needs a duration after one space, e.g. \"@every 6h\"";

/// robfig v1.2.0 compares the whole schedule with each descriptor and takes `@every ` plus the
/// rest as a Go duration: no trimming anywhere.
fn parse_descriptor(expr: &str) -> Result<Schedule, CronError> {
    if let Some(duration) = expr.strip_prefix("@every ") {
        return parse_every(duration);
    }
    if let Some((_, fields)) = DESCRIPTORS.iter().find(|(known, _)| *known == expr) {
        let fields: Vec<&str> = fields.split_whitespace().collect();
        return parse_six(&fields).map(Schedule::from_fields);
    }
    let mut words = expr.split_whitespace();
    let name = words.next().unwrap_or_default();
    let rest: Vec<&str> = words.collect();
    if name == "@every" {
        return Err(invalid(EVERY_NEEDS_A_DURATION));
    }
    // robfig matches descriptors case-sensitively, so `@DAILY` is unknown to CNPG too.
    if !DESCRIPTORS.iter().any(|(known, _)| *known == name) {
        return Err(invalid(format!(
            "unknown descriptor {name:?}; expected one of @yearly, @annually, @monthly, \
             @weekly, @daily, @midnight, @hourly or @every <duration>"
        )));
    }
    if rest.is_empty() {
        return Err(invalid(format!(
            "whitespace after {name}: CloudNativePG matches descriptors exactly"
        )));
    }
    Err(invalid(format!(
        "descriptor {name} takes no arguments, found {:?}",
        rest.join(" ")
    )))
}

fn parse_every(text: &str) -> Result<Schedule, CronError> {
    if text.trim().is_empty() {
        return Err(invalid(EVERY_NEEDS_A_DURATION));
    }
    if text.trim() != text {
        return Err(invalid(format!(
            "@every {text:?}: the duration must follow exactly one space, with nothing after it"
        )));
    }
    if text.contains(char::is_whitespace) {
        return Err(invalid(format!(
            "@every takes one duration without spaces (e.g. 1h30m), found {text:?}"
        )));
    }
    let nanos = parse_go_duration(text).map_err(|reason| invalid(format!("@every {text:?}: {reason}")))?;
    if nanos < 1_000_000_000 {
        return Err(invalid(format!(
            "@every {text:?}: CloudNativePG raises durations under one second to one second and \
             would start a backup every second"
        )));
    }
    // robfig drops sub-second remainders.
    let seconds = i64::try_from(nanos / 1_000_000_000).unwrap_or(i64::MAX);
    Ok(Schedule {
        kind: Kind::Every { seconds },
    })
}

/// Go's `time.ParseDuration`: an optional sign, then `<number><unit>` pairs (`1h30m`, `1.5h`).
fn parse_go_duration(text: &str) -> Result<i128, DurationError> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(DurationError::Invalid);
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (nanos, tail) = parse_duration_part(rest)?;
        total = total
            .checked_add(nanos)
            .filter(|t| *t <= i64::MAX as u128)
            .ok_or(DurationError::TooLarge)?;
        rest = tail;
    }
    let total = i128::try_from(total).map_err(|_| DurationError::TooLarge)?;
    Ok(if negative { -total } else { total })
}

/// Parses one `<number><unit>` pair, returning its nanoseconds and the remaining text.
fn parse_duration_part(text: &str) -> Result<(u128, &str), DurationError> {
    let (int_digits, rest) = split_digits(text);
    let (frac_digits, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => split_digits(after_dot),
        None => ("", rest),
    };
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Err(DurationError::ExpectedNumber(text.to_string()));
    }
    let unit_len = rest
        .find(|c: char| c == '.' || c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (unit, rest) = rest.split_at(unit_len);
    let unit_nanos = unit_nanos(unit)?;
    let whole = if int_digits.is_empty() {
        Some(0)
    } else {
        int_digits.parse::<u128>().ok()
    };
    let nanos = whole
        .and_then(|n| n.checked_mul(unit_nanos))
        .and_then(|n| n.checked_add(fraction_nanos(frac_digits, unit_nanos)))
        .ok_or(DurationError::TooLarge)?;
    Ok((nanos, rest))
}

fn split_digits(text: &str) -> (&str, &str) {
    let len = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    text.split_at(len)
}

fn unit_nanos(unit: &str) -> Result<u128, DurationError> {
    match unit {
        "ns" => Ok(1),
        "us" | "\u{b5}s" | "\u{3bc}s" => Ok(1_000),
        "ms" => Ok(1_000_000),
        "s" => Ok(1_000_000_000),
        "m" => Ok(60_000_000_000),
        "h" => Ok(3_600_000_000_000),
        "" => Err(DurationError::MissingUnit),
        other => Err(DurationError::UnknownUnit(other.to_string())),
    }
}

/// Digits past nanosecond precision cannot matter, so only the first 18 are used.
fn fraction_nanos(digits: &str, unit_nanos: u128) -> u128 {
    let digits = digits.get(..digits.len().min(18)).unwrap_or_default();
    let Ok(value) = digits.parse::<u128>() else {
        return 0;
    };
    let scale = 10u128.pow(u32::try_from(digits.len()).unwrap_or(0));
    value * unit_nanos / scale
}

impl Schedule {
    fn from_fields(fields: Fields) -> Self {
        Schedule {
            kind: Kind::Fields(fields),
        }
    }
}
