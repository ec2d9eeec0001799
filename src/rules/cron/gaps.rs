//! When a parsed schedule fires: the next firing, and the longest gap between firings of one
//! schedule or of a union of schedules (the backups of one Cluster).
//!
//! Gaps are computed in UTC, the operator's time zone unless set, over whole Gregorian days:
//! between 1901 and 2099 the calendar (dates, weekdays, leap days) repeats every 28 years, so
//! [2024, 2052) is one full cycle. The longest possible gap between matching days in that era is
//! four years (Feb 29), so walking on to 2057 closes every gap that starts in the cycle, which
//! makes the result exact for any schedule (ignoring the 2100 non-leap year).

use std::sync::LazyLock;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};

use super::parse::{Fields, Kind, Schedule};

const SECONDS_PER_DAY: i64 = 86_400;

/// `next_after` gives up after this many days. The rarest day pattern that fires at all is
/// Feb 29, which skips up to eight years around a non-leap century year.
const MAX_SEARCH_DAYS: u32 = 366 * 9;

/// The calendar of a day as cron matches it: month 1-12, day of month 1-31, weekday 0 = Sunday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Day {
    month: u8,
    day: u8,
    weekday: u8,
}

impl Day {
    fn of(date: NaiveDate) -> Day {
        // chrono's month, day and weekday numbers are at most 31, so `as u8` is exact.
        Day {
            month: date.month() as u8,
            day: date.day() as u8,
            weekday: date.weekday().num_days_from_sunday() as u8,
        }
    }

    /// Index into a table over every (month, day, weekday) combination.
    fn class(self) -> usize {
        (usize::from(self.month - 1) * 31 + usize::from(self.day - 1)) * 7 + usize::from(self.weekday)
    }
}

const DAY_CLASSES: usize = 12 * 31 * 7;

/// Every day from 2024-01-01 until 2057, computed once with chrono's calendar.
static ANALYSIS_DAYS: LazyLock<Vec<Day>> = LazyLock::new(|| {
    let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default();
    start.iter_days().take_while(|d| d.year() < 2057).map(Day::of).collect()
});

impl Schedule {
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

    /// Whether it ever fires. Over a 28-year cycle every valid (month, day) falls on every
    /// weekday, Feb 29 included, so checking those combinations is exact.
    pub fn fires_at_all(&self) -> bool {
        let Kind::Fields(f) = &self.kind else { return true };
        f.fires_within_day() && all_day_classes().any(|d| f.day_matches(d))
    }

    /// `@every <duration>`: the delay, counted from whenever the operator started.
    pub fn every(&self) -> Option<TimeDelta> {
        match &self.kind {
            Kind::Every { seconds } => TimeDelta::try_seconds(*seconds),
            Kind::Fields(_) => None,
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
        let mut date = start.date_naive();
        let mut from = start.num_seconds_from_midnight();
        for _ in 0..MAX_SEARCH_DAYS {
            if self.day_matches(Day::of(date))
                && let Some(tod) = self.first_time_at_or_after(from)
            {
                return Some(date.and_hms_opt(tod / 3600, tod / 60 % 60, tod % 60)?.and_utc());
            }
            from = 0;
            date = date.succ_opt()?;
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
        i64::from(lowest(self.hour) * 3600 + self.first_in_hour())
    }

    fn last_time(&self) -> i64 {
        i64::from(highest(self.hour) * 3600 + self.last_in_hour())
    }

    /// Seconds after the full hour of the first and last firing within each firing hour.
    fn first_in_hour(&self) -> u32 {
        lowest(self.minute) * 60 + lowest(self.second)
    }

    fn last_in_hour(&self) -> u32 {
        highest(self.minute) * 60 + highest(self.second)
    }

    /// Largest gap between firings on the same day, derived from the per-field steps instead
    /// of enumerating up to 86,400 times.
    fn max_gap_within_day(&self) -> Option<i64> {
        let second_span = highest(self.second) - lowest(self.second);
        let hour_span = self.last_in_hour() - self.first_in_hour();
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
        for (index, day) in (0i64..).zip(ANALYSIS_DAYS.iter()) {
            if self.day_matches(*day) {
                if let Some(prev) = previous {
                    best = best.max(Some((index - prev) * SECONDS_PER_DAY + overnight));
                }
                previous = Some(index);
            }
        }
        previous?;
        best.max(self.max_gap_within_day())
    }

    /// The day part of the schedule, which decides on which days it fires.
    fn days(&self) -> DayPattern {
        DayPattern {
            month: self.month,
            dom: self.dom,
            dow: self.dow,
            dom_star: self.dom_star,
            dow_star: self.dow_star,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DayPattern {
    month: u64,
    dom: u64,
    dow: u64,
    dom_star: bool,
    dow_star: bool,
}

impl DayPattern {
    fn matches(&self, day: Day) -> bool {
        Fields {
            second: 1,
            minute: 1,
            hour: 1,
            month: self.month,
            dom: self.dom,
            dow: self.dow,
            dom_star: self.dom_star,
            dow_star: self.dow_star,
        }
        .day_matches(day)
    }
}

/// The firings of one day, reduced per hour to the first and last second-of-hour: `None` for an
/// hour without firings.
type Hours = [Option<(u16, u16)>; 24];

fn merge_hours(into: &mut Hours, from: &Hours) {
    for (slot, add) in into.iter_mut().zip(from) {
        *slot = match (*slot, *add) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (x, None) => x,
            (None, y) => y,
        };
    }
}

/// What a day of the union contributes: first and last firing (seconds of day) and the longest
/// gap between its hours.
#[derive(Debug, Clone, Copy)]
struct DaySummary {
    first: i64,
    last: i64,
    inner_gap: i64,
}

fn summarize(hours: &Hours) -> Option<DaySummary> {
    let mut summary: Option<DaySummary> = None;
    for (h, slot) in (0i64..).zip(hours) {
        let Some((first, last)) = slot else { continue };
        let (first, last) = (h * 3600 + i64::from(*first), h * 3600 + i64::from(*last));
        summary = Some(match summary {
            None => DaySummary {
                first,
                last,
                inner_gap: 0,
            },
            Some(s) => DaySummary {
                first: s.first,
                last,
                inner_gap: s.inner_gap.max(first - s.last),
            },
        });
    }
    summary
}

/// The longest time without a firing in the union of `schedules`: None when none of them ever
/// fires. `@every` schedules are ignored: they start whenever the operator does, so their
/// firings cannot be placed next to the others (callers decide what they count for).
///
/// Exact whenever the gap is at least one hour; a shorter result only says "under an hour".
/// Within one hour every schedule's firings span less than an hour, so an hour-long gap can
/// only open between the first and last firing of different hours: the union is reduced to
/// those two points per hour and per day, which keeps 1,000 schedules cheap.
pub fn union_max_gap<'a>(schedules: impl IntoIterator<Item = &'a Schedule>) -> Option<TimeDelta> {
    // Schedules that fire on the same days share one per-hour profile.
    let mut patterns: Vec<(DayPattern, Hours)> = Vec::new();
    for s in schedules {
        let Kind::Fields(f) = &s.kind else { continue };
        if !f.fires_within_day() {
            continue;
        }
        let (first, last) = (f.first_in_hour() as u16, f.last_in_hour() as u16);
        let mut hours: Hours = [None; 24];
        for h in set_bits(f.hour, 0, 23) {
            hours[h as usize] = Some((first, last));
        }
        let days = f.days();
        match patterns.iter_mut().find(|(p, _)| *p == days) {
            Some((_, existing)) => merge_hours(existing, &hours),
            None => patterns.push((days, hours)),
        }
    }
    if patterns.is_empty() {
        return None;
    }
    let classes = day_classes(&patterns);
    let mut best: Option<i64> = None;
    let mut previous_last: Option<i64> = None;
    for (index, day) in (0i64..).zip(ANALYSIS_DAYS.iter()) {
        let Some(summary) = classes[day.class()] else { continue };
        let start = index * SECONDS_PER_DAY;
        if let Some(prev) = previous_last {
            best = best.max(Some(start + summary.first - prev));
        }
        best = best.max(Some(summary.inner_gap));
        previous_last = Some(start + summary.last);
    }
    previous_last?;
    TimeDelta::try_seconds(best.unwrap_or(0).max(0))
}

/// Every (month, day, weekday) a date can have: Feb 29 yes, Feb 30 or Apr 31 no. The dates of a
/// leap year, each on every weekday (over the 28-year cycle each of them falls on all seven).
fn all_day_classes() -> impl Iterator<Item = Day> {
    ANALYSIS_DAYS
        .iter()
        .take(366) // 2024 is a leap year
        .flat_map(|d| (0..7u8).map(move |weekday| Day { weekday, ..*d }))
}

/// The union's summary for every (month, day, weekday) a date can have.
fn day_classes(patterns: &[(DayPattern, Hours)]) -> Vec<Option<DaySummary>> {
    let mut classes = vec![None; DAY_CLASSES];
    for d in all_day_classes() {
        let mut hours: Hours = [None; 24];
        for (pattern, h) in patterns {
            if pattern.matches(d) {
                merge_hours(&mut hours, h);
            }
        }
        classes[d.class()] = summarize(&hours);
    }
    classes
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
