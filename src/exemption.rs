//! Exemptions: `dbhook.io/exempt` bounded by `dbhook.io/exempt-until` and explained by
//! `dbhook.io/exempt-reason`, judged against the policy and the engine's clock. Pure.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::model::{Object, keys};
use crate::policy::Policy;
use crate::rules::catalog;

/// Where an exemption stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Applies, and its expiry (if any) is more than `warnDays` away.
    Active,
    /// Applies, and expires within `warnDays`.
    Expiring,
    /// Its expiry has passed: it no longer applies.
    Expired,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Expiring => "expiring",
            State::Expired => "expired",
        }
    }
    pub const ALL: [State; 3] = [State::Active, State::Expiring, State::Expired];
}

/// The expiry as written and the instant it takes effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// As written in the annotation (trimmed): messages quote it so it can be found.
    pub written: String,
    /// The first instant the exemption no longer applies. A bare date covers that whole day
    /// (UTC): `2027-01-31` expires at `2027-02-01T00:00:00Z`.
    pub at: DateTime<Utc>,
}

/// Parses `dbhook.io/exempt-until`: an RFC 3339 timestamp or full date.
pub fn parse_expiry(value: &str) -> Option<Expiry> {
    let written = value.trim();
    let at = if let Ok(t) = DateTime::parse_from_rfc3339(written) {
        t.with_timezone(&Utc)
    } else {
        let day = NaiveDate::parse_from_str(written, "%Y-%m-%d").ok()?;
        day.succ_opt()?.and_hms_opt(0, 0, 0)?.and_utc()
    };
    Some(Expiry {
        written: written.to_string(),
        at,
    })
}

/// One rule an object asks to skip, as the policy and the clock judge it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Exemption {
    #[serde(skip)]
    pub rule: &'static str,
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Exemption {
    /// Whether findings of the rule are suppressed.
    pub fn applies(&self) -> bool {
        self.state != State::Expired
    }
}

/// What an object's exemption annotations amount to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exemptions {
    /// Rules the policy allows exempting, with their state (expired ones included: their
    /// findings say so).
    pub rules: Vec<Exemption>,
    /// Why an exemption was ignored (unknown rule, not allowed, bad or missing date, too far
    /// ahead), and warnings of expiries, unprefixed.
    pub notices: Vec<String>,
}

impl Exemptions {
    pub fn get(&self, rule: &str) -> Option<&Exemption> {
        self.rules.iter().find(|e| e.rule == rule)
    }
    /// Whether findings of `rule` are suppressed.
    pub fn applies(&self, rule: &str) -> bool {
        self.get(rule).is_some_and(Exemption::applies)
    }
}

/// Why `dbhook.io/exempt-until` keeps the exemptions from applying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum DateRefused {
    #[error("the policy requires {} (exemptions.requireExpiry)", keys::EXEMPT_UNTIL)]
    Required,
    #[error(
        "{} {value:?} is not an RFC 3339 date (2027-01-31) or timestamp (2027-01-31T18:00:00Z)",
        keys::EXEMPT_UNTIL
    )]
    NotADate { value: String },
    #[error(
        "{} {written} is more than {max} days ahead (exemptions.maxDays)",
        keys::EXEMPT_UNTIL
    )]
    TooFar { written: String, max: u32 },
}

/// Judges the exemption annotations of `obj` at `now`.
pub fn judge(obj: &Object, policy: &Policy, now: DateTime<Utc>) -> Exemptions {
    let mut out = Exemptions::default();
    let Some(list) = obj.annotation(keys::EXEMPT) else {
        return out;
    };
    let reason = obj
        .annotation(keys::EXEMPT_REASON)
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| crate::rules::truncate(r, 200));
    let until = obj
        .annotation(keys::EXEMPT_UNTIL)
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let settings = policy.exemptions;
    // One verdict on the date for every rule it bounds.
    let dated: Result<Option<(Expiry, State)>, DateRefused> = match until {
        None if settings.require_expiry => Err(DateRefused::Required),
        None => Ok(None),
        Some(u) => match parse_expiry(u) {
            None => Err(DateRefused::NotADate { value: u.to_string() }),
            Some(e)
                if settings
                    .max_days
                    .is_some_and(|max| e.at > now + Duration::days(i64::from(max))) =>
            {
                Err(DateRefused::TooFar {
                    written: e.written,
                    max: settings.max_days.unwrap_or_default(),
                })
            }
            Some(e) => {
                let state = if now >= e.at {
                    State::Expired
                } else if now + Duration::days(i64::from(settings.warn_days)) >= e.at {
                    State::Expiring
                } else {
                    State::Active
                };
                Ok(Some((e, state)))
            }
        },
    };
    // Each name once: a list repeating a name thousands of times gets one notice, not thousands.
    let mut seen = std::collections::BTreeSet::new();
    for name in list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && seen.insert(*s))
    {
        let id = match catalog::id(name) {
            None => {
                out.notices.push(format!(
                    "{} names unknown rule {name:?}; it is ignored (see `dbhook rules`)",
                    keys::EXEMPT
                ));
                continue;
            }
            Some(id) => id,
        };
        if !policy.setting(id).allow_exemption {
            out.notices.push(format!(
                "exemption from [{id}] ignored: the policy does not allow exempting this rule (allowExemption)"
            ));
            continue;
        }
        match &dated {
            Err(why) => out.notices.push(format!("exemption from [{id}] ignored: {why}")),
            Ok(date) => {
                let (until, state) = match date {
                    Some((e, s)) => (Some(e.written.clone()), *s),
                    None => (None, State::Active),
                };
                if let (State::Expiring, Some(u)) = (state, &until) {
                    out.notices.push(format!("exemption of [{id}] expires on {u}"));
                }
                out.rules.push(Exemption {
                    rule: id,
                    state,
                    until,
                    reason: reason.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "testing/exemption.rs"]
mod tests;
