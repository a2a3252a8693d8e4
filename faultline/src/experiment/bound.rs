//! The small languages of an experiment file: durations (`100ms`, `2s`, `1m30s`, or plain seconds) and bounds
//! (`">= 99%"`, `"<= 500ms"`, `"> 0"`), each checked when the file is read so a bad one is reported at its line.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;

/// A duration as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl Dur {
    /// Parses `100ms`, `2s`, `1m30s`, `1.5s` (jiff's friendly format) or a plain number of seconds.
    pub fn parse(text: &str) -> Result<Dur, String> {
        let text = text.trim();
        let bad = || format!("{text:?} is not a duration (e.g. 100ms, 2s, 1m30s)");
        if let Ok(seconds) = text.parse::<f64>() {
            return if seconds.is_finite() && seconds >= 0.0 {
                Ok(Dur(Duration::from_secs_f64(seconds)))
            } else {
                Err(bad())
            };
        }
        let parsed: k8s_openapi::jiff::SignedDuration = text.parse().map_err(|_| bad())?;
        Duration::try_from(parsed).map(Dur).map_err(|_| bad())
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_secs_f64() * 1e3;
        if ms < 10.0 {
            write!(f, "{}ms", trim(ms))
        } else if ms < 1000.0 {
            write!(f, "{ms:.0}ms")
        } else {
            write!(f, "{}s", trim(self.0.as_secs_f64()))
        }
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Dur, D::Error> {
        let text = match Scalar::deserialize(deserializer)? {
            Scalar::Number(n) => n.to_string(),
            Scalar::Text(t) => t,
        };
        Dur::parse(&text).map_err(de::Error::custom)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Number(f64),
    Text(String),
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>=`
    AtLeast,
    /// `<=`
    AtMost,
    /// `>`
    Above,
    /// `<`
    Below,
    /// `==`
    Equal,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::AtLeast => ">=",
            Op::AtMost => "<=",
            Op::Above => ">",
            Op::Below => "<",
            Op::Equal => "==",
        }
    }
}

/// What a bound's number is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A plain count.
    Count,
    /// A percentage (`99%`).
    Percent,
    /// A time (`500ms`, `2s`), kept in seconds.
    Seconds,
}

/// `>= 99%`, `<= 500ms`, `> 0`: what a measured value must satisfy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    /// The comparison.
    pub op: Op,
    /// The number (percent for [`Unit::Percent`], seconds for [`Unit::Seconds`]).
    pub value: f64,
    /// What it is.
    pub unit: Unit,
}

impl Bound {
    /// Parses `OP NUMBER[UNIT]` with OP one of `>=`, `<=`, `>`, `<`, `==` (`=` too) and UNIT `%`, a duration unit, or
    /// none.
    pub fn parse(text: &str) -> Result<Bound, String> {
        let trimmed = text.trim();
        let bad = |why: &str| format!("{trimmed:?} is not a bound ({why}; e.g. \">= 99%\", \"<= 500ms\", \"> 0\")");
        let ops = [(">=", Op::AtLeast), ("<=", Op::AtMost), ("==", Op::Equal), (">", Op::Above), ("<", Op::Below)];
        let ops = ops.into_iter().chain([("=", Op::Equal)]);
        let Some((op, rest)) =
            ops.into_iter().find_map(|(s, op)| trimmed.strip_prefix(s).map(|rest| (op, rest.trim())))
        else {
            return Err(bad("it must start with >=, <=, >, < or =="));
        };
        if let Some(number) = rest.strip_suffix('%') {
            let value: f64 = number.trim().parse().map_err(|_| bad("not a number before %"))?;
            if !(0.0..=100.0).contains(&value) {
                return Err(bad("a percentage is between 0 and 100"));
            }
            return Ok(Bound { op, value, unit: Unit::Percent });
        }
        if let Ok(value) = rest.parse::<f64>() {
            if !value.is_finite() {
                return Err(bad("not a finite number"));
            }
            return Ok(Bound { op, value, unit: Unit::Count });
        }
        let duration = Dur::parse(rest).map_err(|_| bad("not a number, a percentage or a duration"))?;
        Ok(Bound { op, value: duration.0.as_secs_f64(), unit: Unit::Seconds })
    }

    /// Whether `measured` (in the bound's unit) satisfies it.
    pub fn holds(&self, measured: f64) -> bool {
        const EPSILON: f64 = 1e-9;
        match self.op {
            Op::AtLeast => measured >= self.value - EPSILON,
            Op::AtMost => measured <= self.value + EPSILON,
            Op::Above => measured > self.value,
            Op::Below => measured < self.value,
            Op::Equal => (measured - self.value).abs() <= EPSILON,
        }
    }

    /// `measured` written in the bound's unit (`97.5%`, `412ms`, `3`).
    pub fn show(&self, measured: f64) -> String {
        match self.unit {
            Unit::Percent => format!("{}%", trim(measured)),
            Unit::Seconds => Dur(Duration::from_secs_f64(measured.max(0.0))).to_string(),
            Unit::Count => trim(measured),
        }
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.symbol(), self.show(self.value))
    }
}

impl<'de> Deserialize<'de> for Bound {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Bound, D::Error> {
        let text = match Scalar::deserialize(deserializer)? {
            // A bare number means "exactly".
            Scalar::Number(n) => format!("== {n}"),
            Scalar::Text(t) => t,
        };
        Bound::parse(&text).map_err(de::Error::custom)
    }
}

/// A number without trailing zeros (at most two decimals).
fn trim(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_spelling() {
        assert_eq!(Dur::parse("100ms").unwrap().0, Duration::from_millis(100));
        assert_eq!(Dur::parse("2s").unwrap().0, Duration::from_secs(2));
        assert_eq!(Dur::parse("1m30s").unwrap().0, Duration::from_secs(90));
        assert_eq!(Dur::parse("1.5").unwrap().0, Duration::from_millis(1500));
        assert!(Dur::parse("soon").unwrap_err().contains("not a duration"));
        assert!(Dur::parse("-2s").is_err());
        assert_eq!(Dur(Duration::from_millis(250)).to_string(), "250ms");
        assert_eq!(Dur(Duration::from_micros(420)).to_string(), "0.42ms");
        assert_eq!(Dur(Duration::from_millis(2500)).to_string(), "2.5s");
    }

    #[test]
    fn bounds_parse_compare_and_show_in_their_unit() {
        let rate = Bound::parse(">= 99%").unwrap();
        assert_eq!(rate, Bound { op: Op::AtLeast, value: 99.0, unit: Unit::Percent });
        assert!(rate.holds(99.0) && rate.holds(100.0) && !rate.holds(98.99));
        assert_eq!(rate.to_string(), ">= 99%");
        assert_eq!(rate.show(97.5), "97.5%");
        let latency = Bound::parse("<= 500ms").unwrap();
        assert_eq!((latency.unit, latency.value), (Unit::Seconds, 0.5));
        assert!(latency.holds(0.5) && !latency.holds(0.501));
        assert_eq!(latency.to_string(), "<= 500ms");
        let count = Bound::parse("> 0").unwrap();
        assert!(count.holds(1.0) && !count.holds(0.0));
        assert!(Bound::parse("== 3").unwrap().holds(3.0));
        assert!(Bound::parse("< 1.5s").unwrap().holds(1.0));
        for bad in ["99%", ">= lots", ">= 120%", "", "=> 3"] {
            assert!(Bound::parse(bad).unwrap_err().contains("is not a bound"), "{bad}");
        }
    }
}
