//! robfig/cron (seconds-first) schedule parsing and gap analysis for CNPG ScheduledBackup.
//!
//! CloudNativePG parses `spec.schedule` with `cron.Parse` of robfig/cron **v1.2.0** (its go.mod
//! pins `github.com/robfig/cron v1.2.0`, not `/v3`): `second minute hour day-of-month month
//! [day-of-week]` plus descriptors. This module mirrors that grammar so the webhook judges a
//! schedule the way the operator will run it, and adds [`Schedule::max_gap`] so backup policies
//! can bound the time between backups. What v1.2.0 does that later versions changed:
//! no `CRON_TZ=`/`TZ=` prefixes (a prefix is read as a field and fails); descriptors are
//! matched exactly, so `@daily ` or ` @daily` fail; `*/n` still counts as `*` for the
//! day-of-month/day-of-week AND-or-OR rule.
//!
//! Deliberate differences from robfig (all stricter, all about input nobody means):
//! empty list elements (`1,,2`), `*-5`, signed numbers (`+5`) and `@every` under one second
//! (robfig raises it to one second: a backup every second) are rejected instead of being
//! silently reinterpreted. Gaps are computed in UTC, the operator's time zone unless set.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};

const SECONDS_PER_DAY: i64 = 86_400;

/// Gap analysis walks whole Gregorian days from this date.
const ANALYSIS_START: Day = Day {
    year: 2024,
    month: 1,
    day: 1,
    weekday: 1, // 2024-01-01 is a Monday
};
/// Between 1901 and 2099 the calendar (dates, weekdays, leap days) repeats every 28 years,
/// so [2024, 2052) is one full cycle. The longest possible gap between matching days in
/// that era is four years (Feb 29), so walking on to 2057 closes every gap that starts in
/// the cycle, which makes the result exact for any schedule (ignoring the 2100 non-leap year).
const ANALYSIS_END_YEAR: i32 = 2057;
/// `next_after` gives up after this many days. The rarest day pattern that fires at all is
/// Feb 29, which skips up to eight years around a non-leap century year.
const MAX_SEARCH_DAYS: u32 = 366 * 9;

/// A parsed CNPG ScheduledBackup schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Fields(Fields),
    /// `@every`: a fixed delay in whole seconds, always at least one.
    Every {
        seconds: i64,
    },
}

/// One bit per allowed value, as in robfig's `SpecSchedule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fields {
    second: u64,
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    /// robfig switches day matching from OR to AND when either day field was written
    /// as an unstepped `*`/`?`, so that has to be remembered next to the bits.
    dom_star: bool,
    dow_star: bool,
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

    fn out_of_range(&self, text: &str) -> String {
        // Standard cron accepts 7 for Sunday; robfig does not, which surprises people.
        let note = if self.names.len() == DOW_NAMES.len() && text.parse::<u32>() == Ok(7) {
            " (Sunday is 0 or SUN; robfig/cron does not accept 7)"
        } else {
            ""
        };
        format!("value {text} out of range {}-{}{note}", self.min, self.max)
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

fn parse_item(item: &str, spec: &FieldSpec) -> Result<(u64, bool), String> {
    if item.is_empty() {
        return Err("empty list element".into());
    }
    let mut parts = item.split('/');
    let range = parts.next().unwrap_or_default();
    let step_text = parts.next();
    if parts.next().is_some() {
        return Err(format!("too many slashes in {item:?}"));
    }
    let (start, end, star) = parse_range(range, step_text.is_some(), spec)?;
    let step = step_text.map_or(Ok(1), parse_step)?;
    // robfig v1.2.0: `*` and `?` count as a star whatever the step (`*/2` too; v3 changed that).
    Ok((bits_between(start, end, step), star))
}

/// Returns (start, end, is_star) for `*`, `?`, `a`, `a-b`; a lone `a` with a step means `a-max`.
fn parse_range(range: &str, has_step: bool, spec: &FieldSpec) -> Result<(u32, u32, bool), String> {
    if range == "*" || range == "?" {
        return Ok((spec.min, spec.max, true));
    }
    let (low, high) = match range.split_once('-') {
        Some((low, high)) => (low, Some(high)),
        None => (range, None),
    };
    if low.is_empty() || high == Some("") {
        return Err(format!("range {range:?} is missing a value"));
    }
    if high.is_some_and(|h| h.contains('-')) {
        return Err(format!("too many hyphens in {range:?}"));
    }
    let start = parse_value(low, spec)?;
    let end = match high {
        Some(high) => parse_value(high, spec)?,
        None if has_step => spec.max,
        None => start,
    };
    if start > end {
        return Err(format!("range {range:?} is inverted: start {start} is after end {end}"));
    }
    Ok((start, end, false))
}

fn parse_value(text: &str, spec: &FieldSpec) -> Result<u32, String> {
    if let Some(value) = spec.lookup_name(text) {
        return Ok(value);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text:?} is not a number{}", spec.names_hint));
    }
    match text.parse::<u32>() {
        Ok(value) if (spec.min..=spec.max).contains(&value) => Ok(value),
        _ => Err(spec.out_of_range(text)),
    }
}

fn parse_step(text: &str) -> Result<u64, String> {
    if text.is_empty() {
        return Err("missing step after '/'".into());
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("step {text:?} is not a number"));
    }
    match text.parse::<u64>() {
        Ok(0) => Err("step must be a positive number, not 0".into()),
        Ok(step) => Ok(step),
        Err(_) => Err(format!("step {text} is too large")),
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
fn parse_go_duration(text: &str) -> Result<i128, String> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err("invalid duration".into());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (nanos, tail) = parse_duration_part(rest)?;
        total = total
            .checked_add(nanos)
            .filter(|t| *t <= i64::MAX as u128)
            .ok_or("duration is too large")?;
        rest = tail;
    }
    let total = i128::try_from(total).map_err(|_| "duration is too large")?;
    Ok(if negative { -total } else { total })
}

/// Parses one `<number><unit>` pair, returning its nanoseconds and the remaining text.
fn parse_duration_part(text: &str) -> Result<(u128, &str), String> {
    let (int_digits, rest) = split_digits(text);
    let (frac_digits, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => split_digits(after_dot),
        None => ("", rest),
    };
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Err(format!("expected a number at {text:?}"));
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
        .ok_or("duration is too large")?;
    Ok((nanos, rest))
}

fn split_digits(text: &str) -> (&str, &str) {
    let len = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    text.split_at(len)
}

fn unit_nanos(unit: &str) -> Result<u128, String> {
    match unit {
        "ns" => Ok(1),
        "us" | "\u{b5}s" | "\u{3bc}s" => Ok(1_000),
        "ms" => Ok(1_000_000),
        "s" => Ok(1_000_000_000),
        "m" => Ok(60_000_000_000),
        "h" => Ok(3_600_000_000_000),
        "" => Err("missing unit (use h, m, s, ms, us or ns)".into()),
        other => Err(format!("unknown unit {other:?} (use h, m, s, ms, us or ns)")),
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

    /// The next firing strictly after `t` (UTC), or None if it never fires (e.g. Feb 30).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Like robfig, firings land on whole seconds whatever the sub-second part of `t`.
        let whole = t.with_nanosecond(0)?;
        match &self.kind {
            Kind::Every { seconds } => whole.checked_add_signed(TimeDelta::try_seconds(*seconds)?),
            Kind::Fields(fields) => fields.next_at_or_after(whole.checked_add_signed(TimeDelta::seconds(1))?),
        }
    }

    /// Longest interval between consecutive firings; None if it never fires.
    ///
    /// Exact for every schedule over the 28-year Gregorian cycle (2024-2052), which covers
    /// leap days, 31st-of-month and weekday alignments; costs a walk of ~12k days.
    pub fn max_gap(&self) -> Option<TimeDelta> {
        match &self.kind {
            Kind::Every { seconds } => TimeDelta::try_seconds(*seconds),
            Kind::Fields(fields) => TimeDelta::try_seconds(fields.max_gap_seconds()?),
        }
    }
}

impl Fields {
    fn fires_within_day(&self) -> bool {
        self.second != 0 && self.minute != 0 && self.hour != 0
    }

    fn day_matches(&self, day: Day) -> bool {
        if self.month & (1 << day.month) == 0 {
            return false;
        }
        let dom = self.dom & (1 << day.day) != 0;
        let dow = self.dow & (1 << day.weekday) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    fn next_at_or_after(&self, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.fires_within_day() {
            return None;
        }
        let mut day = Day::from_date(start.date_naive());
        let mut from = start.num_seconds_from_midnight();
        for _ in 0..MAX_SEARCH_DAYS {
            if self.day_matches(day)
                && let Some(tod) = self.first_time_at_or_after(from)
            {
                let date = day.to_date()?;
                return Some(date.and_hms_opt(tod / 3600, tod / 60 % 60, tod % 60)?.and_utc());
            }
            from = 0;
            day = day.next();
        }
        None
    }

    /// First matching second-of-day at or after `tod`, found field by field.
    fn first_time_at_or_after(&self, tod: u32) -> Option<u32> {
        let (h0, m0, s0) = (tod / 3600, tod / 60 % 60, tod % 60);
        for h in set_bits(self.hour, h0, 23) {
            let m_from = if h == h0 { m0 } else { 0 };
            for m in set_bits(self.minute, m_from, 59) {
                let s_from = if h == h0 && m == m0 { s0 } else { 0 };
                if let Some(s) = set_bits(self.second, s_from, 59).next() {
                    return Some(h * 3600 + m * 60 + s);
                }
            }
        }
        None
    }

    fn first_time(&self) -> i64 {
        i64::from(lowest(self.hour) * 3600 + lowest(self.minute) * 60 + lowest(self.second))
    }

    fn last_time(&self) -> i64 {
        i64::from(highest(self.hour) * 3600 + highest(self.minute) * 60 + highest(self.second))
    }

    /// Largest gap between firings on the same day, derived from the per-field steps instead
    /// of enumerating up to 86,400 times.
    fn max_gap_within_day(&self) -> Option<i64> {
        let second_span = highest(self.second) - lowest(self.second);
        let hour_span =
            highest(self.minute) * 60 + highest(self.second) - (lowest(self.minute) * 60 + lowest(self.second));
        let within_minute = max_step(self.second);
        let across_minutes = max_step(self.minute).map(|d| d * 60 - second_span);
        let across_hours = max_step(self.hour).map(|d| d * 3600 - hour_span);
        [within_minute, across_minutes, across_hours]
            .into_iter()
            .flatten()
            .max()
            .map(i64::from)
    }

    fn max_gap_seconds(&self) -> Option<i64> {
        if !self.fires_within_day() {
            return None;
        }
        let overnight = self.first_time() - self.last_time();
        let mut best: Option<i64> = None;
        let mut previous: Option<i64> = None;
        let mut day = ANALYSIS_START;
        let mut index: i64 = 0;
        while day.year < ANALYSIS_END_YEAR {
            if self.day_matches(day) {
                if let Some(prev) = previous {
                    best = best.max(Some((index - prev) * SECONDS_PER_DAY + overnight));
                }
                previous = Some(index);
            }
            day = day.next();
            index += 1;
        }
        previous?;
        best.max(self.max_gap_within_day())
    }
}

fn set_bits(bits: u64, from: u32, to: u32) -> impl Iterator<Item = u32> {
    (from..=to).filter(move |v| bits & (1u64 << v) != 0)
}

fn lowest(bits: u64) -> u32 {
    bits.trailing_zeros().min(63)
}

fn highest(bits: u64) -> u32 {
    63u32.saturating_sub(bits.leading_zeros())
}

/// Largest distance between consecutive set bits, None for fewer than two.
fn max_step(bits: u64) -> Option<u32> {
    let mut previous: Option<u32> = None;
    let mut best = None;
    for value in set_bits(bits, 0, 63) {
        if let Some(prev) = previous {
            best = best.max(Some(value - prev));
        }
        previous = Some(value);
    }
    best
}

/// A calendar day with its weekday (0 = Sunday), stepped without chrono to keep the
/// 12k-day gap walk cheap in debug builds.
#[derive(Debug, Clone, Copy)]
struct Day {
    year: i32,
    month: u32,
    day: u32,
    weekday: u32,
}

impl Day {
    fn from_date(date: NaiveDate) -> Self {
        Day {
            year: date.year(),
            month: date.month(),
            day: date.day(),
            weekday: date.weekday().num_days_from_sunday(),
        }
    }

    fn to_date(self) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(self.year, self.month, self.day)
    }

    fn next(self) -> Self {
        let weekday = (self.weekday + 1) % 7;
        if self.day < days_in_month(self.year, self.month) {
            Day {
                day: self.day + 1,
                weekday,
                ..self
            }
        } else if self.month < 12 {
            Day {
                month: self.month + 1,
                day: 1,
                weekday,
                ..self
            }
        } else {
            Day {
                year: self.year.saturating_add(1),
                month: 1,
                day: 1,
                weekday,
            }
        }
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const MINUTE: i64 = 60;
    const HOUR: i64 = 3600;
    const DAY: i64 = 86_400;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn gap_seconds(expr: &str) -> Option<i64> {
        let schedule = parse(expr).unwrap_or_else(|e| panic!("{expr:?} should parse: {e}"));
        schedule.max_gap().map(|d| d.num_seconds())
    }

    fn error_message(expr: &str) -> String {
        match parse(expr) {
            Err(CronError::Invalid(message)) => message,
            other => panic!("{expr:?} should be Invalid, got {other:?}"),
        }
    }

    #[test]
    fn max_gap_is_the_longest_interval_between_firings() {
        let cases: &[(&str, i64)] = &[
            ("0 0 2 * * *", DAY),
            ("0 0 * * * *", HOUR),
            ("@daily", DAY),
            ("@midnight", DAY),
            ("@hourly", HOUR),
            ("@weekly", 7 * DAY),
            ("@monthly", 31 * DAY),
            ("@yearly", 366 * DAY),
            ("@annually", 366 * DAY),
            ("@every 6h", 6 * HOUR),
            ("@every 1h30m", 90 * MINUTE),
            ("@every 90s", 90),
            ("@every 1.5h", 90 * MINUTE),
            ("@every 2500ms", 2),
            ("0 0 0 29 2 *", 1461 * DAY),
            ("0 0 0 31 * *", 61 * DAY),
            ("0 0 3 * * MON-FRI", 3 * DAY),
            ("0 0 2 * * 1,3,5", 3 * DAY),
            ("0 */15 * * * *", 15 * MINUTE),
            ("*/10 * * * * *", 10),
            ("* * * * * *", 1),
            ("30 * * * * *", MINUTE),
            ("0 50/5 * * * *", 55 * MINUTE),
            ("0 0,30 9-17 * * *", 15 * HOUR + 30 * MINUTE),
            ("0 0 0,1 * * *", 23 * HOUR),
            ("0 0 0 1 JAN-MAR *", 306 * DAY),
            ("0 0 0 15 jan,jul *", 184 * DAY),
            ("0 0 12 * * sun", 7 * DAY),
            ("  0   0\t2 * * *  ", DAY),
        ];
        for (expr, want) in cases {
            assert_eq!(gap_seconds(expr), Some(*want), "{expr}");
        }
    }

    #[test]
    fn day_fields_follow_robfig_star_and_or_rules() {
        let cases: &[(&str, i64)] = &[
            // Both restricted: 1st of the month OR any Monday.
            ("0 0 0 1 * MON", 7 * DAY),
            ("0 0 0 1-31 * MON", DAY),
            // A star on either side makes it AND, and `*/1` and `?` still count as a star.
            ("0 0 0 * * MON", 7 * DAY),
            ("0 0 0 */1 * MON", 7 * DAY),
            ("0 0 0 ? * MON", 7 * DAY),
            ("0 0 0 ? * ?", DAY),
            // robfig v1.2.0: a stepped star is still a star, so odd days AND Mondays (v3 would
            // make it odd days OR Mondays, a 2-day gap). Checked by brute force over 2024-2057.
            ("0 0 0 */2 * MON", 21 * DAY),
        ];
        for (expr, want) in cases {
            assert_eq!(gap_seconds(expr), Some(*want), "{expr}");
        }
    }

    #[test]
    fn schedules_that_never_fire_have_no_gap_and_no_next() {
        for expr in ["0 0 0 30 2 *", "0 0 0 31 4 *", "0 0 0 31 2,4,6,9,11 *"] {
            let schedule = parse(expr).unwrap();
            assert_eq!(schedule.max_gap(), None, "{expr}");
            assert_eq!(schedule.next_after(utc(2024, 1, 1, 0, 0, 0)), None, "{expr}");
        }
    }

    #[test]
    fn five_fields_suggest_the_six_field_form() {
        let cases = [
            ("0 2 * * *", "0 0 2 * * *"),
            ("30 1 * * 0", "0 30 1 * * 0"),
            ("  */5   * * * MON ", "0 */5 * * * MON"),
        ];
        for (expr, want) in cases {
            let expected = CronError::FiveFields {
                suggestion: want.to_string(),
            };
            assert_eq!(parse(expr), Err(expected), "{expr}");
            assert!(parse(want).is_ok(), "suggestion {want:?} must parse");
        }
    }

    #[test]
    fn five_fields_that_are_invalid_anyway_report_the_reason() {
        let message = error_message("61 2 * * *");
        assert!(message.contains("minute field \"61\""), "{message}");
        assert!(message.contains("5 fields"), "{message}");
    }

    #[test]
    fn out_of_range_message_names_field_and_value() {
        assert_eq!(
            error_message("0 61 * * * *"),
            "minute field \"61\": value 61 out of range 0-59"
        );
    }

    #[test]
    fn invalid_schedules_are_rejected_with_a_readable_reason() {
        let cases = [
            ("", "empty schedule"),
            ("   \t ", "empty schedule"),
            ("* * * *", "found 4"),
            ("0 0 2 * * * *", "found 7"),
            ("every day", "found 2"),
            ("60 * * * * *", "second field \"60\": value 60 out of range 0-59"),
            ("0 0 24 * * *", "hour field \"24\": value 24 out of range 0-23"),
            ("0 0 0 0 * *", "day-of-month field \"0\": value 0 out of range 1-31"),
            ("0 0 0 32 * *", "day-of-month field \"32\""),
            ("0 0 0 * 13 *", "month field \"13\": value 13 out of range 1-12"),
            ("0 0 0 * * 7", "robfig/cron does not accept 7"),
            ("0 0 0 * * 1-7", "day-of-week field \"1-7\""),
            ("0 */0 * * * *", "minute field \"*/0\": step must be a positive"),
            ("0 5-1 * * * *", "minute field \"5-1\": range \"5-1\" is inverted"),
            (
                "0 0 0 * FOO *",
                "month field \"FOO\": \"FOO\" is not a number or a month",
            ),
            ("0 0 0 * * FUNDAY", "day-of-week field \"FUNDAY\""),
            (
                "0 99999999999999999999 * * * *",
                "value 99999999999999999999 out of range",
            ),
            (
                "0 */99999999999999999999 * * * *",
                "step 99999999999999999999 is too large",
            ),
            ("0 1- * * * *", "missing a value"),
            ("0 - * * * *", "missing a value"),
            ("0 ,, * * * *", "empty list element"),
            ("0 1,,2 * * * *", "empty list element"),
            ("0 1/2/3 * * * *", "too many slashes"),
            ("0 1-2-3 * * * *", "too many hyphens"),
            ("0 */x * * * *", "step \"x\" is not a number"),
            ("0 5/ * * * *", "missing step"),
            ("0 *-5 * * * *", "minute field \"*-5\""),
            ("0 +5 * * * *", "minute field \"+5\""),
            ("ü ü ü ü ü ü", "second field \"ü\""),
            ("@every", "@every needs a duration"),
            ("@every -1h", "would start a backup every second"),
            ("@every 0s", "would start a backup every second"),
            ("@every 500ms", "would start a backup every second"),
            ("@every 1h ", "exactly one space"),
            ("@every  1h", "exactly one space"),
            ("@daily ", "whitespace after @daily"),
            (" @daily", "whitespace before \"@daily\""),
            ("\t@every 1h", "whitespace before"),
            ("@every 1h 30m", "one duration"),
            ("@every 6x", "unknown unit \"x\""),
            ("@every 1h30", "missing unit"),
            ("@every h", "expected a number"),
            ("@every 9999999999h", "too large"),
            ("@fortnightly", "unknown descriptor \"@fortnightly\""),
            ("@DAILY", "unknown descriptor"),
            ("@daily now", "takes no arguments"),
            // robfig/cron v1.2.0, which CNPG uses, has no time zone prefixes.
            ("CRON_TZ=Europe/Berlin", "no CRON_TZ= time zone prefix"),
            ("CRON_TZ=Europe/Rome 0 0 2 * * *", "no CRON_TZ= time zone prefix"),
            ("TZ=UTC 0 0 2 * * *", "no TZ= time zone prefix"),
            ("CRON_TZ=UTC 0 2 * * *", "no CRON_TZ= time zone prefix"),
            ("TZ=UTC @every 6h", "no TZ= time zone prefix"),
        ];
        for (expr, want) in cases {
            let message = error_message(expr);
            assert!(message.contains(want), "{expr:?}: {message:?} lacks {want:?}");
        }
    }

    #[test]
    fn next_after_is_strictly_later_and_on_whole_seconds() {
        let at = |t: DateTime<Utc>, ms: u32| t + TimeDelta::milliseconds(i64::from(ms));
        let cases = [
            (
                "0 0 2 * * *",
                at(utc(2024, 3, 10, 1, 59, 59), 500),
                utc(2024, 3, 10, 2, 0, 0),
            ),
            ("0 0 2 * * *", utc(2024, 3, 10, 2, 0, 0), utc(2024, 3, 11, 2, 0, 0)),
            (
                "*/10 * * * * *",
                utc(2024, 12, 31, 23, 59, 55),
                utc(2025, 1, 1, 0, 0, 0),
            ),
            ("0 0 0 29 2 *", utc(2024, 3, 1, 0, 0, 0), utc(2028, 2, 29, 0, 0, 0)),
            // Across the 2100 non-leap year the next Feb 29 is eight years away.
            ("0 0 0 29 2 *", utc(2096, 3, 1, 0, 0, 0), utc(2104, 2, 29, 0, 0, 0)),
            // 2024-09-30 is a Monday; the OR rule makes Tuesday the 1st fire.
            ("0 0 0 1 * MON", utc(2024, 9, 30, 12, 0, 0), utc(2024, 10, 1, 0, 0, 0)),
            (
                "0 0 3 * * MON-FRI",
                utc(2024, 10, 4, 3, 0, 0),
                utc(2024, 10, 7, 3, 0, 0),
            ),
            (
                "@every 90s",
                at(utc(2024, 1, 1, 10, 0, 0), 700),
                utc(2024, 1, 1, 10, 1, 30),
            ),
        ];
        for (expr, from, want) in cases {
            let schedule = parse(expr).unwrap();
            assert_eq!(schedule.next_after(from), Some(want), "{expr} after {from}");
        }
    }

    #[test]
    fn next_after_near_the_end_of_time_returns_none_instead_of_panicking() {
        let last = DateTime::<Utc>::MAX_UTC;
        for expr in ["* * * * * *", "0 0 0 29 2 *", "@every 1h"] {
            assert_eq!(parse(expr).unwrap().next_after(last), None, "{expr}");
        }
    }

    /// Stepping `next_after` over a full 28-year cycle must find the same maximum.
    #[test]
    fn max_gap_agrees_with_stepping_next_after() {
        let exprs = [
            "0 0 0 13 2 FRI",
            "0 0 0 29 2 *",
            "0 0 6 31 * *",
            "0 15 4 1,15 * SAT",
            "0 0 0 * JAN,FEB MON",
            "0 30 23 * * 0",
        ];
        let end = utc(2056, 1, 1, 0, 0, 0);
        for expr in exprs {
            let schedule = parse(expr).unwrap();
            let mut t = schedule.next_after(utc(2023, 12, 31, 23, 59, 59)).unwrap();
            let mut best = TimeDelta::zero();
            while t < end {
                let next = schedule.next_after(t).unwrap();
                best = best.max(next - t);
                t = next;
            }
            assert_eq!(schedule.max_gap(), Some(best), "{expr}");
        }
    }

    #[test]
    fn max_gap_handles_the_densest_and_sparsest_schedules() {
        // The analysis walks days, not firings: an every-second schedule costs what a yearly one does.
        assert_eq!(gap_seconds("* * * * * *"), Some(1));
        assert_eq!(gap_seconds("0 0 0 29 2 *"), Some(1461 * DAY));
        assert_eq!(parse("0 0 0 30 2 *").unwrap().max_gap(), None);
        // Every second of each 1st of the month or Monday: at most six whole days in between.
        assert_eq!(gap_seconds("* * * 1 * MON"), Some(6 * DAY + 1));
    }

    #[test]
    fn arbitrary_input_never_panics() {
        const TOKENS: &[&str] = &[
            "0",
            "1",
            "5",
            "7",
            "12",
            "31",
            "59",
            "60",
            "*",
            "?",
            "/",
            "-",
            ",",
            " ",
            "  ",
            "\t",
            "@",
            "@every ",
            "@daily",
            "MON",
            "jan",
            "CRON_TZ=X ",
            "TZ=",
            "h",
            "m",
            "s",
            "ms",
            ".",
            "ü",
            "99999999999999999999",
            "-1",
            "+",
            "*/",
            "1-5",
            "x",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        let start = utc(2024, 5, 5, 5, 5, 5);
        for _ in 0..5000 {
            let len = next() % 16;
            let expr: String = (0..len).map(|_| TOKENS[next() % TOKENS.len()]).collect();
            match parse(&expr) {
                Ok(schedule) => {
                    let _ = schedule.max_gap();
                    if let Some(t) = schedule.next_after(start) {
                        assert!(t > start, "{expr:?}");
                    }
                }
                Err(CronError::FiveFields { suggestion }) => {
                    assert!(parse(&suggestion).is_ok(), "{expr:?} -> {suggestion:?}");
                }
                Err(CronError::Invalid(message)) => assert!(!message.is_empty()),
            }
        }
    }
}
