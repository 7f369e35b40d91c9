//! The benchmark's results: measurement rows, checks against the goals,
//! skipped columns; printed as a table and written as JSON.

use std::fmt::Write;

use crate::json::Json;
use crate::summary::{Goal, Summary};

/// One measured figure with its spread.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Measurement number and name, e.g. `"1 pio-exit"`.
    pub group: String,
    /// Who was measured, e.g. `"seraph-v"`, `"kvm floor"`.
    pub contender: String,
    /// Unit of the samples, e.g. `"ns/exit"`, `"ms"`, `"MiB"`.
    pub unit: &'static str,
    /// The samples' spread.
    pub summary: Summary,
}

/// A figure checked against its goal.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What is checked, e.g. `"pio exit: seraph-v / floor"`.
    pub name: String,
    /// The figure (ratio of medians, or a value).
    pub value: f64,
    /// The goal.
    pub goal: Goal,
}

impl Check {
    /// True if the goal is met.
    pub fn met(&self) -> bool {
        self.goal.met_by(self.value)
    }
}

/// Everything one benchmark run produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Machine description, `(key, value)`.
    pub machine: Vec<(String, String)>,
    /// Measured figures.
    pub rows: Vec<Row>,
    /// Goals checked.
    pub checks: Vec<Check>,
    /// Columns not measured, and why (with how to get them).
    pub skipped: Vec<String>,
    /// Remarks on method and what was measured.
    pub notes: Vec<String>,
}

fn num(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1000.0 {
        format!("{value:.0}")
    } else if magnitude >= 100.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

impl Report {
    /// The report as text: machine, measurements, checks, skips, notes.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("Machine\n");
        for (key, value) in &self.machine {
            let _ = writeln!(out, "  {key:<10} {value}");
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "{:<22} {:<28} {:>10} {:>10} {:>10} {:>4}  unit",
            "measurement", "contender", "min", "median", "max", "n"
        );
        let _ = writeln!(out, "{}", "-".repeat(96));
        for row in &self.rows {
            let s = row.summary;
            let _ = writeln!(
                out,
                "{:<22} {:<28} {:>10} {:>10} {:>10} {:>4}  {}",
                row.group,
                row.contender,
                num(s.min),
                num(s.median),
                num(s.max),
                s.n,
                row.unit
            );
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "{:<52} {:>10} {:>9}  result",
            "goal check", "value", "goal"
        );
        let _ = writeln!(out, "{}", "-".repeat(84));
        for check in &self.checks {
            let _ = writeln!(
                out,
                "{:<52} {:>10.3} {:>9}  {}",
                check.name,
                check.value,
                check.goal.describe(),
                if check.met() { "met" } else { "NOT MET" }
            );
        }
        if !self.skipped.is_empty() {
            out.push_str("\nskipped:\n");
            for skip in &self.skipped {
                let _ = writeln!(out, "  - {skip}");
            }
        }
        if !self.notes.is_empty() {
            out.push_str("\nnotes:\n");
            for note in &self.notes {
                let _ = writeln!(out, "  - {note}");
            }
        }
        out
    }

    /// The report as JSON.
    pub fn to_json(&self) -> Json {
        let goal = |g: Goal| match g {
            Goal::AtMost(v) => Json::obj([("at_most", Json::Num(v))]),
            Goal::AtLeast(v) => Json::obj([("at_least", Json::Num(v))]),
        };
        Json::obj([
            (
                "machine",
                Json::obj(self.machine.iter().map(|(k, v)| (k.clone(), Json::str(v)))),
            ),
            (
                "measurements",
                Json::Arr(
                    self.rows
                        .iter()
                        .map(|r| {
                            Json::obj([
                                ("measurement", Json::str(&r.group)),
                                ("contender", Json::str(&r.contender)),
                                ("unit", Json::str(r.unit)),
                                ("n", Json::Num(r.summary.n as f64)),
                                ("min", Json::Num(r.summary.min)),
                                ("median", Json::Num(r.summary.median)),
                                ("max", Json::Num(r.summary.max)),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "checks",
                Json::Arr(
                    self.checks
                        .iter()
                        .map(|c| {
                            Json::obj([
                                ("name", Json::str(&c.name)),
                                ("value", Json::Num(c.value)),
                                ("goal", goal(c.goal)),
                                ("met", Json::Bool(c.met())),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "skipped",
                Json::Arr(self.skipped.iter().map(Json::str).collect()),
            ),
            (
                "notes",
                Json::Arr(self.notes.iter().map(Json::str).collect()),
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report {
            machine: vec![("nproc".into(), "2".into())],
            rows: vec![Row {
                group: "1 pio-exit".into(),
                contender: "seraph-v".into(),
                unit: "ns/exit",
                summary: Summary::of(&[10100.0, 10300.0, 10200.0]).unwrap(),
            }],
            checks: vec![
                Check {
                    name: "pio: seraph-v / floor".into(),
                    value: 1.02,
                    goal: Goal::AtMost(1.05),
                },
                Check {
                    name: "peers: qemu / seraph-v".into(),
                    value: 8.0,
                    goal: Goal::AtLeast(10.0),
                },
            ],
            skipped: vec!["qemu: not installed".into()],
            notes: vec![],
        }
    }

    #[test]
    fn table_has_every_row_check_and_skip() {
        let text = sample().render();
        assert!(text.contains("  nproc      2\n"));
        assert!(text.contains(
            "1 pio-exit             seraph-v                          10100      10200      10300    3  ns/exit"
        ));
        assert!(text.contains("pio: seraph-v / floor"));
        assert!(text.contains("1.020   <= 1.05  met"));
        assert!(text.contains("8.000     >= 10  NOT MET"));
        assert!(text.contains("  - qemu: not installed"));
    }

    #[test]
    fn json_carries_the_same_figures() {
        let json = sample().to_json().render();
        assert!(json.contains("\"median\": 10200"));
        assert!(json.contains("\"at_most\": 1.05"));
        assert!(json.contains("\"met\": false"));
        assert!(json.contains("\"nproc\": \"2\""));
        assert!(json.contains("\"qemu: not installed\""));
    }

    #[test]
    fn numbers_keep_three_significant_figures_or_more() {
        assert_eq!(num(10234.4), "10234");
        assert_eq!(num(123.45), "123.5");
        assert_eq!(num(1.5), "1.50");
        assert_eq!(num(0.1234), "0.123");
    }
}
