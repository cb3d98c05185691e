//! When a failed delivery is tried again.

use std::time::Duration;

/// The pauses before each retry: Svix's schedule by default (immediately, then after 5 s,
/// 5 min, 30 min, 2 h, 5 h, 10 h and 10 h: eight attempts over about 27.6 hours). After the
/// last, a delivery is dead-lettered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl Default for RetrySchedule {
    fn default() -> Self {
        let s = Duration::from_secs;
        Self(vec![
            s(5),
            s(300),
            s(1800),
            s(7200),
            s(18000),
            s(36000),
            s(36000),
        ])
    }
}

/// Longest pause allowed: SQS hides a message for at most 12 hours.
const MAX_PAUSE: Duration = Duration::from_secs(12 * 3600);

impl RetrySchedule {
    /// `5s,5m,30m,2h` (units `ms`, `s`, `m`, `h`), each pause at most 12 h, at most 20.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let pauses = raw
            .split(',')
            .map(|p| parse_duration(p.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        if pauses.is_empty() || pauses.len() > 20 {
            return Err("expected 1 to 20 pauses".into());
        }
        if pauses.iter().any(|p| *p > MAX_PAUSE) {
            return Err("a pause is longer than 12h".into());
        }
        Ok(Self(pauses))
    }

    /// Attempts in all, the first included.
    pub fn attempts(&self) -> u32 {
        self.0.len() as u32 + 1
    }

    /// The pause after `made` failed attempts (from 1), or `None` when that was the last.
    pub fn pause_after(&self, made: u32) -> Option<Duration> {
        self.0.get(made.checked_sub(1)? as usize).copied()
    }
}

fn parse_duration(p: &str) -> Result<Duration, String> {
    let split = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
    let (number, unit) = p.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{p}` is not a duration such as 5s, 5m or 2h"))?;
    let ms = match unit {
        "ms" => n,
        "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        _ => return Err(format!("`{p}` is not a duration such as 5s, 5m or 2h")),
    };
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_eight_attempts() {
        let s = RetrySchedule::default();
        assert_eq!(s.attempts(), 8);
        assert_eq!(s.pause_after(1), Some(Duration::from_secs(5)));
        assert_eq!(s.pause_after(7), Some(Duration::from_secs(36000)));
        assert_eq!(s.pause_after(8), None);
    }

    #[test]
    fn schedules_parse_with_units() {
        let s = RetrySchedule::parse("100ms, 2s,1m,1h").unwrap();
        assert_eq!(s.attempts(), 5);
        assert_eq!(s.pause_after(1), Some(Duration::from_millis(100)));
        assert!(RetrySchedule::parse("5x").is_err());
        assert!(RetrySchedule::parse("13h").is_err());
        assert!(RetrySchedule::parse("").is_err());
    }
}
