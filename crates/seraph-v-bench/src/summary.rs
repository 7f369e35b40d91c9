//! Min/median/max of a set of samples, and goals to check ratios against.

/// The spread of one measurement's samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Smallest sample.
    pub min: f64,
    /// Median (mean of the two middle samples for an even count).
    pub median: f64,
    /// Largest sample.
    pub max: f64,
}

impl Summary {
    /// Summarises `samples`; `None` if there are none or any is not finite.
    pub fn of(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() || samples.iter().any(|s| !s.is_finite()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let mid = n / 2;
        let median = if n % 2 == 1 {
            sorted[mid]
        } else {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        };
        Some(Self {
            n,
            min: sorted[0],
            median,
            max: sorted[n - 1],
        })
    }
}

/// A bound a figure must meet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// The figure must be at most this.
    AtMost(f64),
    /// The figure must be at least this.
    AtLeast(f64),
}

impl Goal {
    /// True if `value` meets the goal.
    pub fn met_by(self, value: f64) -> bool {
        match self {
            Self::AtMost(bound) => value <= bound,
            Self::AtLeast(bound) => value >= bound,
        }
    }

    /// `<= 1.05`, `>= 10`.
    pub fn describe(self) -> String {
        match self {
            Self::AtMost(bound) => format!("<= {bound}"),
            Self::AtLeast(bound) => format!(">= {bound}"),
        }
    }
}

/// `numerator / denominator`, or `None` when the denominator is not positive.
pub fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0 && numerator.is_finite() && denominator.is_finite())
        .then(|| numerator / denominator)
}

/// Per-item cost from a short and a long run: `(long - short) / (n_long - n_short)`.
/// Cancels everything both runs share (VM start, first entry, EXIT).
pub fn per_item(short: f64, long: f64, n_short: u64, n_long: u64) -> Option<f64> {
    let items = n_long.checked_sub(n_short).filter(|&d| d > 0)?;
    Some((long - short) / items as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_and_even_medians() {
        let s = Summary::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.n, s.min, s.median, s.max), (3, 1.0, 3.0, 5.0));
        let s = Summary::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.n, s.min, s.median, s.max), (4, 1.0, 2.5, 4.0));
        assert_eq!(Summary::of(&[7.0]).unwrap().median, 7.0);
    }

    #[test]
    fn empty_or_nan_samples_have_no_summary() {
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[1.0, f64::NAN]), None);
        assert_eq!(Summary::of(&[f64::INFINITY]), None);
    }

    #[test]
    fn goals() {
        assert!(Goal::AtMost(1.05).met_by(1.05));
        assert!(!Goal::AtMost(1.05).met_by(1.06));
        assert!(Goal::AtLeast(10.0).met_by(12.0));
        assert!(!Goal::AtLeast(10.0).met_by(9.99));
        assert_eq!(Goal::AtMost(1.5).describe(), "<= 1.5");
        assert_eq!(Goal::AtLeast(10.0).describe(), ">= 10");
    }

    #[test]
    fn ratios_and_per_item_costs() {
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(3.0, 0.0), None);
        assert_eq!(ratio(3.0, -1.0), None);
        // 1 ms setup + 10 us per item: 1000 and 11000 items.
        let short = 1e6 + 1000.0 * 1e4;
        let long = 1e6 + 11000.0 * 1e4;
        assert_eq!(per_item(short, long, 1000, 11000), Some(1e4));
        assert_eq!(per_item(1.0, 2.0, 5, 5), None);
        assert_eq!(per_item(1.0, 2.0, 6, 5), None);
    }
}
