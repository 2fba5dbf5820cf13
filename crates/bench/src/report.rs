//! The results table and `results.csv`.
//!
//! Every figure is the median of the repetitions. A ratio is the median of the per-pair
//! ratios (B over its own A, measured back to back), which cancels slow drift of the
//! machine better than a ratio of medians would.
//!
//! Throughput, CPU and their ratios count HTTP requests (a two-step login is two); ops/s
//! and the latencies count operations (one login for the two-step flows).

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
    /// HTTP requests per second.
    pub rps: f64,
    /// Operations (logins, for the two-step flows) per second.
    pub ops_per_s: f64,
    /// Median latency of an operation, µs.
    pub p50_us: f64,
    /// 99th percentile latency of an operation, µs.
    pub p99_us: f64,
    /// CPU µs per HTTP request of the server under test.
    pub cpu_us: Option<f64>,
    /// CPU µs per HTTP request of what the server under test depends on, beside the load
    /// generator: its upstream (`proxied`), its redis-server (the Redis store).
    pub upstream_cpu_us: Option<f64>,
    /// The load generator's CPU, % of one core.
    pub client_cpu_pct: Option<f64>,
    /// Requests per second over the reference's.
    pub rps_ratio: Option<f64>,
    /// CPU per request over the reference's.
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

fn med_opt(samples: &[Sample], f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
    median(samples.iter().filter_map(f).collect())
}

impl Row {
    /// A row of reference measurements: no ratios.
    pub fn reference(workload: &str, store: &str, samples: &[Sample]) -> Row {
        Row {
            workload: workload.to_owned(),
            store: store.to_owned(),
            reference: "-".to_owned(),
            rps: med(samples, Sample::rps),
            ops_per_s: med(samples, Sample::ops_per_s),
            p50_us: med(samples, |s| s.quantile_us(0.5)),
            p99_us: med(samples, |s| s.quantile_us(0.99)),
            cpu_us: med_opt(samples, Sample::cpu_us_per_request),
            upstream_cpu_us: med_opt(samples, Sample::upstream_cpu_us_per_request),
            client_cpu_pct: med_opt(samples, Sample::client_cpu_percent),
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
                    .filter_map(|(a, b)| Some(b.cpu_us_per_request()? / a.cpu_us_per_request()?))
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

/// The table, as printed, with the legend under it.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<28} {:<6} {:<9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>7} {:>6} {:>8}\n",
        "workload",
        "store",
        "reference",
        "req/s",
        "ops/s",
        "p50 µs/op",
        "p99 µs/op",
        "CPU µs/req",
        "deps µs/req",
        "req/s ×",
        "CPU ×",
        "client %",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<28} {:<6} {:<9} {:>9.0} {:>9.0} {:>9.1} {:>9.1} {:>10} {:>9} {:>7} {:>6} {:>8}",
            r.workload,
            r.store,
            r.reference,
            r.rps,
            r.ops_per_s,
            r.p50_us,
            r.p99_us,
            opt(r.cpu_us, 1),
            opt(r.upstream_cpu_us, 1),
            opt(r.rps_ratio, 3),
            opt(r.cpu_ratio, 2),
            opt(r.client_cpu_pct, 0),
        );
    }
    out.push_str(
        "req/s, CPU µs/req and the × ratios count every HTTP request (a two-step login is two);\n\
         ops/s and p50/p99 are per operation (one login for the two-step flows).\n\
         CPU µs/req: the server under test only, on its own CPU; what it depends on (the upstream\n\
         of proxied, the redis-server of the Redis store) runs beside the client: deps µs/req.\n\
         client %: the load generator's own process, in % of one core.\n",
    );
    out
}

/// The CSV header: the table's columns.
const CSV_HEADER: &str = "workload,store,reference,requests_per_s,ops_per_s,p50_us_per_op,\
p99_us_per_op,cpu_us_per_request,deps_cpu_us_per_request,rps_ratio,cpu_ratio,client_cpu_pct\n";

/// Writes the rows as CSV.
pub fn write_csv(rows: &[Row], path: &Path) -> std::io::Result<()> {
    std::fs::write(path, csv(rows))
}

fn csv(rows: &[Row]) -> String {
    let mut out = String::from(CSV_HEADER);
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{:.1},{:.1},{:.1},{:.1},{},{},{},{},{}",
            r.workload,
            r.store,
            r.reference,
            r.rps,
            r.ops_per_s,
            r.p50_us,
            r.p99_us,
            fmt(r.cpu_us, 2, ""),
            fmt(r.upstream_cpu_us, 2, ""),
            fmt(r.rps_ratio, 4, ""),
            fmt(r.cpu_ratio, 4, ""),
            fmt(r.client_cpu_pct, 1, ""),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn the_csv_has_the_tables_columns() {
        let row = Row {
            workload: "qps-issue-redeem".into(),
            store: "memory".into(),
            reference: "hello".into(),
            rps: 2000.0,
            ops_per_s: 1000.0,
            p50_us: 1.0,
            p99_us: 2.0,
            cpu_us: Some(3.0),
            upstream_cpu_us: None,
            client_cpu_pct: Some(50.0),
            rps_ratio: Some(0.5),
            cpu_ratio: None,
        };
        let csv = csv(std::slice::from_ref(&row));
        let mut lines = csv.lines();
        let header = lines.next().unwrap().split(',').count();
        assert_eq!(header, 12);
        assert_eq!(lines.next().unwrap().split(',').count(), header);
        let table = table(&[row]);
        let header = table.lines().next().unwrap();
        assert_eq!(header.split_whitespace().next(), Some("workload"));
    }
}
