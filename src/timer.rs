//! Timer schedules (spec §1.4): when a timer fires, in UTC, from its start
//! date, optional expiry and frequency, and the `timerJson` the official
//! model carries for it.
//!
//! | frequency | fires |
//! |---|---|
//! | `Once` | at the start date |
//! | `Custom { every_secs }` | every `every_secs` seconds from the start (1..=86400) |
//! | `Daily { every_days }` | every `every_days` days at the start's time of day |
//! | `Weekly { every_weeks, on }` | on the listed weekdays (1 = Sunday .. 7) of every `every_weeks`-th week, counted from the start's week (weeks begin on Sunday) |
//! | `MonthlyOnDates { months, dates }` | on the listed dates (1..=31; a date a month lacks is skipped) of the listed months (1..=12) |
//! | `MonthlyOnWeekdays { months, weeks, days }` | on the listed weekdays of the listed weeks of the month (week n = dates 7n-6 ..= 7n; 5 = from the 29th) of the listed months |
//!
//! Calendar frequencies fire at the start's time of day, never before the
//! start, and never at or after the expiry. The exact JSON keys of the
//! monthly kinds are not documented by Backendless; `timerJson` writes them
//! as `{"every": [months], "on": [dates]}` and
//! `{"every": [months], "on": {"weeks": [..], "days": [..]}}` (a guess, see
//! docs/handlers.md).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, Duration as Span, NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};

/// Wall-clock milliseconds that advance with tokio's clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base_ms: i64,
    base: tokio::time::Instant,
}

impl Clock {
    /// The system's wall clock, read now.
    pub fn system() -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self::starting_at(now)
    }

    /// A clock that reads `ms` now (tests start it at a chosen date).
    pub fn starting_at(ms: i64) -> Self {
        Self {
            base_ms: ms,
            base: tokio::time::Instant::now(),
        }
    }

    /// Milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        let elapsed = i64::try_from(self.base.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.base_ms.saturating_add(elapsed)
    }

    /// The tokio instant at which this clock reads `ms`.
    pub fn instant_at(&self, ms: i64) -> tokio::time::Instant {
        let ahead = u64::try_from(ms.saturating_sub(self.base_ms)).unwrap_or(0);
        self.base + Duration::from_millis(ahead)
    }
}

/// The longest custom interval Backendless allows, in seconds.
pub const MAX_CUSTOM_SECS: u32 = 86_400;
/// How far ahead a calendar schedule is searched for its next day.
const SEARCH_DAYS: i64 = 366 * 8;

/// How often a timer fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frequency {
    /// Once, at the start date.
    Once,
    /// Every so many seconds.
    Custom {
        /// Seconds between runs, 1..=86400.
        every_secs: u32,
    },
    /// Every so many days.
    Daily {
        /// Days between runs, at least 1.
        every_days: u32,
    },
    /// On given weekdays of every so many weeks.
    Weekly {
        /// Weeks between runs, at least 1.
        every_weeks: u32,
        /// Weekdays, 1 = Sunday .. 7 = Saturday; at least one.
        on: Vec<u8>,
    },
    /// On given dates of given months.
    MonthlyOnDates {
        /// Months, 1..=12; at least one.
        months: Vec<u8>,
        /// Dates, 1..=31; at least one.
        dates: Vec<u8>,
    },
    /// On given weekdays of given weeks of given months.
    MonthlyOnWeekdays {
        /// Months, 1..=12; at least one.
        months: Vec<u8>,
        /// Weeks of the month, 1..=5; at least one.
        weeks: Vec<u8>,
        /// Weekdays, 1 = Sunday .. 7; at least one.
        days: Vec<u8>,
    },
}

/// A timer's schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The first possible run, ms since the epoch (UTC).
    pub start_ms: i64,
    /// No run at or after this, ms since the epoch.
    pub expire_ms: Option<i64>,
    /// How often.
    pub frequency: Frequency,
}

/// Why a schedule is refused at startup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timer schedule: {0}")]
pub struct ScheduleError(String);

fn check_set(
    what: &str,
    values: &[u8],
    range: std::ops::RangeInclusive<u8>,
) -> Result<(), ScheduleError> {
    if values.is_empty() {
        return Err(ScheduleError(format!("`{what}` needs at least one value")));
    }
    match values.iter().find(|v| !range.contains(v)) {
        Some(v) => Err(ScheduleError(format!(
            "`{what}` has {v}, outside {}..={}",
            range.start(),
            range.end()
        ))),
        None => Ok(()),
    }
}

fn date_of(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

/// 1 = Sunday .. 7 = Saturday.
fn weekday_number(date: NaiveDate) -> u8 {
    date.weekday().num_days_from_sunday() as u8 + 1
}

impl Schedule {
    /// A schedule from `start_ms` with `frequency`, no expiry.
    pub fn new(start_ms: i64, frequency: Frequency) -> Self {
        Self {
            start_ms,
            expire_ms: None,
            frequency,
        }
    }

    /// The same schedule, expiring at `expire_ms`.
    pub fn expiring(mut self, expire_ms: i64) -> Self {
        self.expire_ms = Some(expire_ms);
        self
    }

    /// Checks the schedule, naming what is wrong.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        if date_of(self.start_ms).is_none() {
            return Err(ScheduleError(format!(
                "the start date {} is out of range",
                self.start_ms
            )));
        }
        if let Some(expire) = self.expire_ms {
            if expire <= self.start_ms {
                return Err(ScheduleError(
                    "the expiry is not after the start date".to_owned(),
                ));
            }
        }
        match &self.frequency {
            Frequency::Once => Ok(()),
            Frequency::Custom { every_secs } => {
                if (1..=MAX_CUSTOM_SECS).contains(every_secs) {
                    Ok(())
                } else {
                    Err(ScheduleError(format!(
                        "a custom interval is 1..={MAX_CUSTOM_SECS} seconds, not {every_secs}"
                    )))
                }
            }
            Frequency::Daily { every_days } if *every_days == 0 => {
                Err(ScheduleError("`every` days must be at least 1".to_owned()))
            }
            Frequency::Daily { .. } => Ok(()),
            Frequency::Weekly { every_weeks, on } => {
                if *every_weeks == 0 {
                    return Err(ScheduleError("`every` weeks must be at least 1".to_owned()));
                }
                check_set("on", on, 1..=7)
            }
            Frequency::MonthlyOnDates { months, dates } => {
                check_set("months", months, 1..=12)?;
                check_set("dates", dates, 1..=31)
            }
            Frequency::MonthlyOnWeekdays {
                months,
                weeks,
                days,
            } => {
                check_set("months", months, 1..=12)?;
                check_set("weeks", weeks, 1..=5)?;
                check_set("days", days, 1..=7)
            }
        }
    }

    /// The first run strictly after `after_ms`, if there is one.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let next = match &self.frequency {
            Frequency::Once => Some(self.start_ms).filter(|s| *s > after_ms),
            Frequency::Custom { every_secs } => {
                Some(self.step_after(after_ms, i64::from(*every_secs) * 1000))
            }
            Frequency::Daily { every_days } => {
                Some(self.step_after(after_ms, i64::from(*every_days) * 86_400_000))
            }
            _ => self.calendar_after(after_ms),
        }?;
        match self.expire_ms {
            Some(expire) if next >= expire => None,
            _ => Some(next),
        }
    }

    /// `start + k * step` for the least k with a result after `after_ms`.
    fn step_after(&self, after_ms: i64, step: i64) -> i64 {
        if after_ms < self.start_ms {
            return self.start_ms;
        }
        let k = (after_ms - self.start_ms) / step + 1;
        self.start_ms.saturating_add(k.saturating_mul(step))
    }

    fn day_matches(&self, day: NaiveDate, start_day: NaiveDate) -> bool {
        match &self.frequency {
            Frequency::Weekly { every_weeks, on } => {
                // Weeks begin on Sunday; count them from the start's week.
                let week_start = |d: NaiveDate| d - Span::days(i64::from(weekday_number(d)) - 1);
                let weeks = (week_start(day) - week_start(start_day)).num_days() / 7;
                weeks % i64::from(*every_weeks) == 0 && on.contains(&weekday_number(day))
            }
            Frequency::MonthlyOnDates { months, dates } => {
                months.contains(&(day.month() as u8)) && dates.contains(&(day.day() as u8))
            }
            Frequency::MonthlyOnWeekdays {
                months,
                weeks,
                days,
            } => {
                let week = ((day.day() - 1) / 7 + 1) as u8;
                months.contains(&(day.month() as u8))
                    && weeks.contains(&week)
                    && days.contains(&weekday_number(day))
            }
            _ => false,
        }
    }

    fn calendar_after(&self, after_ms: i64) -> Option<i64> {
        let start = date_of(self.start_ms)?;
        let time_of_day = start.time();
        let from = date_of(after_ms.max(self.start_ms))?.date_naive();
        (0..SEARCH_DAYS)
            .map(|i| from + Span::days(i))
            .filter(|day| self.day_matches(*day, start.date_naive()))
            .map(|day| day.and_time(time_of_day).and_utc().timestamp_millis())
            .find(|at| *at > after_ms && *at >= self.start_ms)
    }

    /// Reads a `timerJson` object (the official model's, or [`Schedule::timer_json`]'s).
    pub fn from_timer_json(json: &Value) -> Result<Schedule, ScheduleError> {
        let bad = |what: &str| ScheduleError(format!("timerJson: {what}"));
        let start_ms = json["startDate"]
            .as_i64()
            .ok_or_else(|| bad("no `startDate`"))?;
        let expire_ms = json["expire"].as_i64();
        let frequency = &json["frequency"];
        let repeat = &frequency["repeat"];
        let number = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
        let list = |v: &Value| -> Vec<u8> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_u64().and_then(|n| u8::try_from(n).ok()))
                .collect()
        };
        let frequency = match frequency["schedule"].as_str() {
            Some("once") => Frequency::Once,
            Some("custom") => Frequency::Custom {
                every_secs: number(&repeat["every"]).ok_or_else(|| bad("custom needs `every`"))?,
            },
            Some("daily") => Frequency::Daily {
                every_days: number(&repeat["every"]).ok_or_else(|| bad("daily needs `every`"))?,
            },
            Some("weekly") => Frequency::Weekly {
                every_weeks: number(&repeat["every"]).ok_or_else(|| bad("weekly needs `every`"))?,
                on: list(&repeat["on"]),
            },
            Some("monthly") if repeat["on"].is_object() => Frequency::MonthlyOnWeekdays {
                months: list(&repeat["every"]),
                weeks: list(&repeat["on"]["weeks"]),
                days: list(&repeat["on"]["days"]),
            },
            Some("monthly") => Frequency::MonthlyOnDates {
                months: list(&repeat["every"]),
                dates: list(&repeat["on"]),
            },
            other => return Err(bad(&format!("unknown schedule {other:?}"))),
        };
        let schedule = Schedule {
            start_ms,
            expire_ms,
            frequency,
        };
        schedule.validate()?;
        Ok(schedule)
    }

    /// The schedule as the official model's `timerJson` object (with `name`).
    pub fn timer_json(&self, name: &str) -> Value {
        let (schedule, repeat) = match &self.frequency {
            Frequency::Once => ("once", None),
            Frequency::Custom { every_secs } => ("custom", Some(json!({"every": every_secs}))),
            Frequency::Daily { every_days } => ("daily", Some(json!({"every": every_days}))),
            Frequency::Weekly { every_weeks, on } => {
                ("weekly", Some(json!({"every": every_weeks, "on": on})))
            }
            Frequency::MonthlyOnDates { months, dates } => {
                ("monthly", Some(json!({"every": months, "on": dates})))
            }
            Frequency::MonthlyOnWeekdays {
                months,
                weeks,
                days,
            } => (
                "monthly",
                Some(json!({"every": months, "on": {"weeks": weeks, "days": days}})),
            ),
        };
        let mut frequency = json!({ "schedule": schedule });
        if let Some(repeat) = repeat {
            frequency["repeat"] = repeat;
        }
        let mut timer = json!({"name": name, "startDate": self.start_ms, "frequency": frequency});
        if let Some(expire) = self.expire_ms {
            timer["expire"] = Value::from(expire);
        }
        timer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0)
            .unwrap()
            .timestamp_millis()
    }

    fn runs(schedule: &Schedule, from: i64, n: usize) -> Vec<i64> {
        let mut out = Vec::new();
        let mut t = from;
        while out.len() < n {
            match schedule.next_after(t) {
                Some(next) => {
                    out.push(next);
                    t = next;
                }
                None => break,
            }
        }
        out
    }

    #[test]
    fn once_fires_once_at_its_start() {
        let s = Schedule::new(at(2026, 1, 1, 9, 0), Frequency::Once);
        assert_eq!(
            runs(&s, at(2025, 1, 1, 0, 0), 5),
            vec![at(2026, 1, 1, 9, 0)]
        );
        assert_eq!(s.next_after(at(2026, 1, 1, 9, 0)), None);
    }

    #[test]
    fn custom_intervals_step_from_the_start_and_stop_at_the_expiry() {
        let s = Schedule::new(at(2026, 1, 1, 0, 0), Frequency::Custom { every_secs: 90 })
            .expiring(at(2026, 1, 1, 0, 4));
        let got = runs(&s, at(2026, 1, 1, 0, 1), 10);
        assert_eq!(
            got,
            vec![
                at(2026, 1, 1, 0, 0) + 90_000,
                at(2026, 1, 1, 0, 0) + 180_000
            ]
        );
        // An expired schedule never fires.
        assert_eq!(s.next_after(at(2026, 1, 1, 0, 4)), None);
    }

    #[test]
    fn daily_runs_keep_the_time_of_day_across_a_month_end() {
        let s = Schedule::new(at(2026, 1, 30, 6, 30), Frequency::Daily { every_days: 2 });
        assert_eq!(
            runs(&s, at(2026, 1, 30, 7, 0), 3),
            vec![
                at(2026, 2, 1, 6, 30),
                at(2026, 2, 3, 6, 30),
                at(2026, 2, 5, 6, 30)
            ]
        );
    }

    #[test]
    fn weekly_runs_on_the_listed_days_of_every_other_week() {
        // 2026-01-04 is a Sunday. Mondays (2) and Thursdays (5) of every 2nd week.
        let s = Schedule::new(
            at(2026, 1, 4, 8, 0),
            Frequency::Weekly {
                every_weeks: 2,
                on: vec![2, 5],
            },
        );
        assert_eq!(
            runs(&s, at(2026, 1, 1, 0, 0), 4),
            vec![
                at(2026, 1, 5, 8, 0),
                at(2026, 1, 8, 8, 0),
                at(2026, 1, 19, 8, 0),
                at(2026, 1, 22, 8, 0)
            ]
        );
    }

    #[test]
    fn monthly_dates_skip_months_without_that_date() {
        let s = Schedule::new(
            at(2026, 1, 1, 12, 0),
            Frequency::MonthlyOnDates {
                months: (1..=12).collect(),
                dates: vec![31],
            },
        );
        assert_eq!(
            runs(&s, at(2026, 1, 1, 0, 0), 3),
            vec![
                at(2026, 1, 31, 12, 0),
                at(2026, 3, 31, 12, 0),
                at(2026, 5, 31, 12, 0)
            ]
        );
        // Leap years have a 29th of February.
        let feb = Schedule::new(
            at(2026, 1, 1, 0, 0),
            Frequency::MonthlyOnDates {
                months: vec![2],
                dates: vec![29],
            },
        );
        assert_eq!(
            feb.next_after(at(2026, 1, 1, 0, 0)),
            Some(at(2028, 2, 29, 0, 0))
        );
    }

    #[test]
    fn monthly_weekdays_pick_the_nth_weekday() {
        // The first Monday of March and June.
        let s = Schedule::new(
            at(2026, 1, 1, 10, 0),
            Frequency::MonthlyOnWeekdays {
                months: vec![3, 6],
                weeks: vec![1],
                days: vec![2],
            },
        );
        assert_eq!(
            runs(&s, at(2026, 1, 1, 0, 0), 2),
            vec![at(2026, 3, 2, 10, 0), at(2026, 6, 1, 10, 0)]
        );
    }

    #[test]
    fn invalid_schedules_are_refused_with_a_reason() {
        let start = at(2026, 1, 1, 0, 0);
        let bad = [
            Schedule::new(start, Frequency::Custom { every_secs: 0 }),
            Schedule::new(start, Frequency::Custom { every_secs: 86_401 }),
            Schedule::new(start, Frequency::Daily { every_days: 0 }),
            Schedule::new(
                start,
                Frequency::Weekly {
                    every_weeks: 1,
                    on: vec![],
                },
            ),
            Schedule::new(
                start,
                Frequency::Weekly {
                    every_weeks: 1,
                    on: vec![8],
                },
            ),
            Schedule::new(
                start,
                Frequency::MonthlyOnDates {
                    months: vec![13],
                    dates: vec![1],
                },
            ),
            Schedule::new(
                start,
                Frequency::MonthlyOnWeekdays {
                    months: vec![1],
                    weeks: vec![6],
                    days: vec![1],
                },
            ),
            Schedule::new(start, Frequency::Once).expiring(start),
        ];
        for s in bad {
            assert!(s.validate().is_err(), "{s:?}");
        }
        assert!(
            Schedule::new(start, Frequency::Custom { every_secs: 1 })
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn timer_json_is_the_official_shape() {
        let s = Schedule::new(1_764_460_800_000, Frequency::Custom { every_secs: 60 });
        assert_eq!(
            s.timer_json("tick"),
            json!({"name": "tick", "startDate": 1_764_460_800_000_i64,
                   "frequency": {"schedule": "custom", "repeat": {"every": 60}}})
        );
        let once = Schedule::new(5, Frequency::Once)
            .expiring(9)
            .timer_json("t");
        assert_eq!(once["frequency"], json!({"schedule": "once"}));
        assert_eq!(once["expire"], 9);
    }

    #[test]
    fn timer_json_reads_back_into_the_same_schedule() {
        for frequency in [
            Frequency::Once,
            Frequency::Custom { every_secs: 60 },
            Frequency::Daily { every_days: 2 },
            Frequency::Weekly {
                every_weeks: 1,
                on: vec![2, 6],
            },
            Frequency::MonthlyOnDates {
                months: vec![1, 7],
                dates: vec![15],
            },
            Frequency::MonthlyOnWeekdays {
                months: vec![3],
                weeks: vec![5],
                days: vec![6],
            },
        ] {
            let schedule = Schedule::new(1_764_460_800_000, frequency).expiring(1_900_000_000_000);
            assert_eq!(
                Schedule::from_timer_json(&schedule.timer_json("x")),
                Ok(schedule)
            );
        }
        let hourly = json!({"startDate": 1, "frequency": {"schedule": "hourly"}});
        assert!(Schedule::from_timer_json(&hourly).is_err());
    }
}
