//! The cron parser and gap analysis against the schedules CNPG runs and the calendar.

use super::*;
use chrono::TimeZone;
use chrono::{DateTime, TimeDelta, Utc};

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
        // One second is the shortest delay robfig keeps as written.
        ("@every 1s", 1),
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
        // Gaps inside a day that are longer than the one overnight: between hours, minutes, seconds.
        ("0 0 1,23 * * *", 22 * HOUR),
        ("0 0,50 * * * *", 50 * MINUTE),
        ("10,20 0,50 * * * *", 49 * MINUTE + 50),
        ("0,50 * * * * *", 50),
        ("5,15,45 * * * * *", 30),
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
fn only_a_day_of_week_of_7_gets_the_sunday_note() {
    assert_eq!(
        error_message("0 0 0 * * 8"),
        "day-of-week field \"8\": value 8 out of range 0-6"
    );
    assert_eq!(
        error_message("0 0 0 * * 7"),
        "day-of-week field \"7\": value 7 out of range 0-6 (Sunday is 0 or SUN; robfig/cron does not accept 7)"
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
        // Beyond Go's int (strconv.Atoi), the largest step robfig/cron could read.
        (
            "0-59/18446744073709551615 * * * * *",
            "step 18446744073709551615 is too large",
        ),
        (
            "0-59/9223372036854775808 * * * * *",
            "step 9223372036854775808 is too large",
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
        let mut firings = 0;
        while t < end {
            // None of these fires more than once a day: a broken parser that makes one fire
            // every second fails here instead of stepping through a billion firings.
            firings += 1;
            assert!(firings <= 32 * 366, "{expr} fires more than daily");
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

/// Every firing of `exprs` in [2024-01-01, 2057-01-01), found by stepping `next_after`, merged,
/// and the longest distance between consecutive ones: the analysis window, by brute force.
fn brute_force_union_gap(exprs: &[&str]) -> Option<i64> {
    let end = utc(2057, 1, 1, 0, 0, 0);
    let mut times = Vec::new();
    for expr in exprs {
        let schedule = parse(expr).unwrap();
        let mut t = utc(2023, 12, 31, 23, 59, 59);
        let mut firings = 0;
        while let Some(next) = schedule.next_after(t).filter(|n| *n < end) {
            // The schedules compared here fire at most 24 times a day (see the callers).
            firings += 1;
            assert!(firings <= 24 * 366 * 33, "{expr} fires more than hourly");
            times.push(next.timestamp());
            t = next;
        }
    }
    times.sort_unstable();
    times.dedup();
    times.windows(2).map(|w| w[1] - w[0]).max()
}

fn union_gap(exprs: &[&str]) -> Option<i64> {
    let schedules: Vec<Schedule> = exprs.iter().map(|e| parse(e).unwrap()).collect();
    union_max_gap(&schedules).map(|d| d.num_seconds())
}

/// The union analysis is exact for gaps of an hour or more and says "under an hour" otherwise.
fn assert_union_matches_brute_force(exprs: &[&str]) {
    let brute = brute_force_union_gap(exprs);
    let fast = union_gap(exprs);
    match brute {
        Some(b) if b >= HOUR => assert_eq!(fast, Some(b), "{exprs:?}"),
        Some(_) => assert!(fast.is_some_and(|f| f < HOUR), "{exprs:?}: {fast:?} vs {brute:?}"),
        None => assert!(fast.is_none() || fast == Some(0), "{exprs:?}: {fast:?}"),
    }
}

#[test]
fn union_gap_matches_brute_force_for_sample_schedules() {
    let samples: &[&[&str]] = &[
        &["0 0 2 * * *"],
        &["0 0 3 * * 0"],
        &["0 0 2 * * *", "0 0 3 * * 0"],
        &["0 0 3 * * 1-5", "0 30 10 * * 6"],
        &["0 0 3 * * 1-5", "0 30 10 * * SAT,SUN"],
        &["0 0 0 1 * *", "0 0 12 15 * *"],
        &["0 0 0 29 2 *", "0 0 0 1 3 *"],
        &["0 0 0 1 * MON", "0 0 6 * * FRI"],
        &["0 15 4,16 * * *"],
        &["0 0 22 * * SAT", "0 0 1 * * SUN", "0 0 23 * * 1-5"],
        &["0 0,30 9-17 * * MON-FRI"],
        &["0 0 0 31 * *", "0 0 12 30 * *"],
        &["*/20 59 23 * * *", "0 0 0 * * 3"],
        &["0 0 2 * * *", "0 0 0 30 2 *"],
        &["0 0 0 30 2 *"],
        &["15 10 */8 * * *", "0 0 5 1-7 * SUN"],
        &["0 0 12 * JAN-JUN *", "0 0 12 * JUL-DEC MON"],
    ];
    for exprs in samples {
        assert_union_matches_brute_force(exprs);
    }
    // Spot checks against values worked out by hand.
    assert_eq!(union_gap(&["0 0 2 * * *", "0 0 3 * * 0"]), Some(DAY));
    assert_eq!(union_gap(&["0 0 3 * * 0"]), Some(7 * DAY));
    assert_eq!(
        union_gap(&["0 0 3 * * 1-5", "0 30 10 * * 6"]),
        Some(DAY + 16 * HOUR + 30 * MINUTE)
    );
    assert_eq!(union_gap(&["0 0 0 30 2 *"]), None);
}

#[test]
fn union_gap_matches_brute_force_for_generated_schedules() {
    const SECONDS: &[&str] = &["0", "30"];
    const MINUTES: &[&str] = &["0", "15", "45", "0,30"];
    const HOURS: &[&str] = &["0", "2", "6", "12", "23", "*/8", "1,13"];
    const DOMS: &[&str] = &["*", "1", "15", "31", "1-7", "?"];
    const MONTHS: &[&str] = &["*", "1-6", "2", "*/3"];
    const DOWS: &[&str] = &["*", "0", "1-5", "6", "MON,THU", "?"];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut pick = move |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as usize) % n
    };
    for _ in 0..12 {
        let count = 1 + pick(3);
        let exprs: Vec<String> = (0..count)
            .map(|_| {
                format!(
                    "{} {} {} {} {} {}",
                    SECONDS[pick(SECONDS.len())],
                    MINUTES[pick(MINUTES.len())],
                    HOURS[pick(HOURS.len())],
                    DOMS[pick(DOMS.len())],
                    MONTHS[pick(MONTHS.len())],
                    DOWS[pick(DOWS.len())]
                )
            })
            .collect();
        let refs: Vec<&str> = exprs.iter().map(String::as_str).collect();
        assert_union_matches_brute_force(&refs);
    }
}

#[test]
fn union_gap_ignores_every_and_agrees_with_max_gap_for_one_schedule() {
    assert_eq!(union_gap(&["@every 1h"]), None);
    assert_eq!(union_gap(&["@every 1h", "0 0 2 * * *"]), Some(DAY));
    for expr in [
        "0 0 2 * * *",
        "0 0 3 * * MON-FRI",
        "0 0 0 29 2 *",
        "0 0 6 31 * *",
        "0 0 0,12 * * *",
    ] {
        let single = parse(expr).unwrap().max_gap().map(|d| d.num_seconds());
        assert_eq!(union_gap(&[expr]), single, "{expr}");
    }
}

#[test]
fn fires_at_all_agrees_with_max_gap() {
    for expr in [
        "0 0 0 30 2 *",
        "0 0 0 31 4 *",
        "0 0 0 29 2 *",
        "0 0 0 31 2,4,6,9,11 *",
        "0 0 0 31 2,4,6,9,12 *",
        "0 0 0 29 2 MON",
        "0 0 0 */30 2 *",
        "@every 1h",
        "0 0 2 * * *",
    ] {
        let schedule = parse(expr).unwrap();
        assert_eq!(schedule.fires_at_all(), schedule.max_gap().is_some(), "{expr}");
    }
}
