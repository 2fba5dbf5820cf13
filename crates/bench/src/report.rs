//! The results table and `results.csv`.
//!
//! Every figure is the median of the repetitions. A ratio is the median of the per-pair
//! ratios (B over its own A, measured back to back), which cancels slow drift of the
//! machine better than a ratio of medians would.

use std::fmt::Write as _;
use std::path::Path;

use crate::load::Sample;

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The workload.
    pub workload: String,
    /// The gateway's store (`memory`, `redis`), or `-` for a server without one.
    pub store: String,
    /// What the ratios compare against, or `-`.
    pub reference: String,
    /// Operations per second.
    pub rps: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// Server CPU µs per operation.
    pub cpu_us: Option<f64>,
    /// Operations per second over the reference's.
    pub rps_ratio: Option<f64>,
    /// CPU per operation over the reference's.
    pub cpu_ratio: Option<f64>,
}

/// The median (mean of the middle two for an even count); `None` when empty.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

fn med(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    median(samples.iter().map(f).collect()).unwrap_or(f64::NAN)
}

impl Row {
    /// A row of reference measurements: no ratios.
    pub fn reference(workload: &str, store: &str, samples: &[Sample]) -> Row {
        Row {
            workload: workload.to_owned(),
            store: store.to_owned(),
            reference: "-".to_owned(),
            rps: med(samples, Sample::rps),
            p50_us: med(samples, |s| s.quantile_us(0.5)),
            p99_us: med(samples, |s| s.quantile_us(0.99)),
            cpu_us: median(samples.iter().filter_map(Sample::cpu_us_per_op).collect()),
            rps_ratio: None,
            cpu_ratio: None,
        }
    }

    /// A row of `subject` samples, each paired with the `reference` sample measured just
    /// before it.
    pub fn compared(
        workload: &str,
        store: &str,
        reference: &str,
        reference_samples: &[Sample],
        subject: &[Sample],
    ) -> Row {
        let pairs = || reference_samples.iter().zip(subject);
        Row {
            reference: reference.to_owned(),
            rps_ratio: median(pairs().map(|(a, b)| b.rps() / a.rps()).collect()),
            cpu_ratio: median(
                pairs()
                    .filter_map(|(a, b)| Some(b.cpu_us_per_op()? / a.cpu_us_per_op()?))
                    .collect(),
            ),
            ..Row::reference(workload, store, subject)
        }
    }
}

fn fmt(v: Option<f64>, decimals: usize, missing: &str) -> String {
    v.filter(|v| v.is_finite())
        .map_or_else(|| missing.to_owned(), |v| format!("{v:.decimals$}"))
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    fmt(v, decimals, "-")
}

/// The table, as printed.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<29} {:<6} {:<17} {:>10} {:>9} {:>9} {:>9} {:>8} {:>8}\n",
        "workload",
        "store",
        "reference",
        "req/s",
        "p50 µs",
        "p99 µs",
        "CPU µs/op",
        "req/s ×",
        "CPU ×"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<29} {:<6} {:<17} {:>10.0} {:>9.1} {:>9.1} {:>9} {:>8} {:>8}",
            r.workload,
            r.store,
            r.reference,
            r.rps,
            r.p50_us,
            r.p99_us,
            opt(r.cpu_us, 1),
            opt(r.rps_ratio, 3),
            opt(r.cpu_ratio, 2),
        );
    }
    out
}

/// Writes the rows as CSV.
pub fn write_csv(rows: &[Row], path: &Path) -> std::io::Result<()> {
    let mut out = String::from(
        "workload,store,reference,requests_per_s,p50_us,p99_us,cpu_us_per_op,rps_ratio,cpu_ratio\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{:.1},{:.1},{:.1},{},{},{}",
            r.workload,
            r.store,
            r.reference,
            r.rps,
            r.p50_us,
            r.p99_us,
            fmt(r.cpu_us, 2, ""),
            fmt(r.rps_ratio, 4, ""),
            fmt(r.cpu_ratio, 4, ""),
        );
    }
    std::fs::write(path, out)
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
