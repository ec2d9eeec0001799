//! CNPG ScheduledBackup schedules: parsed as the operator parses them ([`parse`]), and when
//! they fire ([`gaps`]): the next firing, the longest gap of one schedule, and of a union.

mod gaps;
mod parse;

pub use gaps::union_max_gap;
pub use parse::{CronError, Schedule, parse};

#[cfg(test)]
mod tests;
