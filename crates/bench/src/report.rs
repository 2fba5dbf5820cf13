//! The results table, the ratios against their targets, and `results.csv`.
//!
//! Every figure is the median of the repetitions. A ratio is the median of the per-pair
//! ratios (B over its own A, measured in the same round of the alternation, seconds
//! apart), which cancels slow drift of the machine better than a ratio of medians would.
//!
//! Throughput, CPU and their ratios count HTTP requests (a two-step login is two; a
//! WebSocket message is one); ops/s and the latencies count operations (one login for the
//! two-step flows). The streaming workloads also give MB/s (10^6 bytes of body per second).

use std::fmt::Write as _;
use std::path::Path;

use crate::load::Sample;
use crate::workload::Workload;

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The workload.
    pub workload: Workload,
    /// The server measured: `gateway`, `gateway-old`, `hello`, `upstream`, `nginx`,
    /// `haproxy`, `ticket-server`.
    pub server: String,
    /// The gateway's store (`memory`, `redis`), or `-` for a server without one.
    pub store: String,
    /// What the ratios compare against, or `-`.
    pub reference: String,
    /// HTTP requests per second.
    pub rps: f64,
    /// Operations (logins, for the two-step flows) per second.
    pub ops_per_s: f64,
    /// Body MB (10^6 bytes) per second, for the streaming workloads.
    pub mb_per_s: Option<f64>,
    /// Median latency of an operation, µs.
    pub p50_us: f64,
    /// 99th percentile latency of an operation, µs.
    pub p99_us: f64,
    /// CPU µs per HTTP request of the server under test.
    pub cpu_us: Option<f64>,
    /// CPU µs per HTTP request of what the server under test depends on, beside the load
    /// generator: its back end (the proxied workloads), its redis-server (the Redis store).
    pub upstream_cpu_us: Option<f64>,
    /// The load generator's CPU, % of one core.
    pub client_cpu_pct: Option<f64>,
    /// Requests per second over the reference's.
    pub rps_ratio: Option<f64>,
    /// p99 over the reference's.
    pub p99_ratio: Option<f64>,
    /// CPU per request over the reference's.
    pub cpu_ratio: Option<f64>,
    /// The reference's requests per second (median), for the ratios table.
    pub reference_rps: Option<f64>,
    /// The reference's p99 (median), µs.
    pub reference_p99_us: Option<f64>,
    /// Pairs the ratios are the median of.
    pub pairs: usize,
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

/// The median of `subject / reference` over pairs taken in order; pairs with a missing or
/// zero side are left out.
pub fn median_ratio(
    reference: &[Sample],
    subject: &[Sample],
    f: impl Fn(&Sample) -> Option<f64>,
) -> Option<f64> {
    ratio_of(
        reference
            .iter()
            .zip(subject)
            .map(|(a, b)| Some((f(a)?, f(b)?))),
    )
}

fn ratio_of(pairs: impl Iterator<Item = Option<(f64, f64)>>) -> Option<f64> {
    median(
        pairs
            .flatten()
            .filter(|(a, _)| *a != 0.0)
            .map(|(a, b)| b / a)
            .collect(),
    )
}

fn med(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    median(samples.iter().map(f).collect()).unwrap_or(f64::NAN)
}

fn med_opt(samples: &[Sample], f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
    median(samples.iter().filter_map(f).collect())
}

impl Row {
    /// A row of reference measurements: no ratios.
    pub fn reference(workload: Workload, server: &str, store: &str, samples: &[Sample]) -> Row {
        let rps = med(samples, Sample::rps);
        Row {
            workload,
            server: server.to_owned(),
            store: store.to_owned(),
            reference: "-".to_owned(),
            rps,
            ops_per_s: med(samples, Sample::ops_per_s),
            mb_per_s: workload
                .streamed_bytes()
                .map(|bytes| med(samples, Sample::ops_per_s) * bytes as f64 / 1e6),
            p50_us: med(samples, |s| s.quantile_us(0.5)),
            p99_us: med(samples, |s| s.quantile_us(0.99)),
            cpu_us: med_opt(samples, Sample::cpu_us_per_request),
            upstream_cpu_us: med_opt(samples, Sample::upstream_cpu_us_per_request),
            client_cpu_pct: med_opt(samples, Sample::client_cpu_percent),
            rps_ratio: None,
            p99_ratio: None,
            cpu_ratio: None,
            reference_rps: None,
            reference_p99_us: None,
            pairs: 0,
        }
    }

    /// A row of `subject` samples, each paired with the `reference` sample measured in the
    /// same round.
    pub fn compared(
        workload: Workload,
        server: &str,
        store: &str,
        reference: &str,
        reference_samples: &[Sample],
        subject: &[Sample],
    ) -> Row {
        Row {
            reference: reference.to_owned(),
            rps_ratio: median_ratio(reference_samples, subject, |s| Some(s.rps())),
            p99_ratio: median_ratio(reference_samples, subject, |s| Some(s.quantile_us(0.99))),
            cpu_ratio: median_ratio(reference_samples, subject, Sample::cpu_us_per_request),
            reference_rps: Some(med(reference_samples, Sample::rps)),
            reference_p99_us: Some(med(reference_samples, |s| s.quantile_us(0.99))),
            pairs: reference_samples.len().min(subject.len()),
            ..Row::reference(workload, server, store, subject)
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
        "{:<28} {:<13} {:<6} {:<13} {:>9} {:>9} {:>7} {:>9} {:>9} {:>10} {:>9} {:>7} {:>6} {:>6} {:>8}\n",
        "workload",
        "server",
        "store",
        "reference",
        "req/s",
        "ops/s",
        "MB/s",
        "p50 µs/op",
        "p99 µs/op",
        "CPU µs/req",
        "deps µs/req",
        "req/s ×",
        "p99 ×",
        "CPU ×",
        "client %",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<28} {:<13} {:<6} {:<13} {:>9.0} {:>9.0} {:>7} {:>9.1} {:>9.1} {:>10} {:>9} {:>7} {:>6} {:>6} {:>8}",
            r.workload.name(),
            r.server,
            r.store,
            r.reference,
            r.rps,
            r.ops_per_s,
            opt(r.mb_per_s, 0),
            r.p50_us,
            r.p99_us,
            opt(r.cpu_us, 1),
            opt(r.upstream_cpu_us, 1),
            opt(r.rps_ratio, 3),
            opt(r.p99_ratio, 2),
            opt(r.cpu_ratio, 2),
            opt(r.client_cpu_pct, 0),
        );
    }
    out.push_str(
        "req/s, CPU µs/req and the × ratios count every HTTP request (a two-step login is two,\n\
         a WebSocket message one); ops/s and p50/p99 are per operation (one login for the\n\
         two-step flows). MB/s: body bytes of download/upload, 10^6 per second.\n\
         CPU µs/req: the server under test only, on its own CPU; what it depends on (the back\n\
         end of the proxied workloads, the redis-server of the Redis store) runs beside the\n\
         client: deps µs/req. client %: the load generator's own process, in % of one core.\n",
    );
    out
}

/// A bound a ratio is held to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// The ratio must be at least this.
    AtLeast(f64),
    /// The ratio must be at most this.
    AtMost(f64),
}

impl Bound {
    /// Whether `ratio` meets the bound.
    pub fn met(self, ratio: f64) -> bool {
        match self {
            Bound::AtLeast(min) => ratio >= min,
            Bound::AtMost(max) => ratio <= max,
        }
    }

    fn text(self) -> String {
        match self {
            Bound::AtLeast(min) => format!("≥ {min:.2}"),
            Bound::AtMost(max) => format!("≤ {max:.2}"),
        }
    }
}

/// The targets of the gateway against a reference: `(throughput, p99)`. The references
/// without targets (hello, direct, the old binary, HAProxy for streaming and WebSocket)
/// are information.
pub fn targets(workload: Workload, reference: &str) -> (Option<Bound>, Option<Bound>) {
    use Workload as W;
    match (workload, reference) {
        (W::Proxied, "nginx") => (Some(Bound::AtLeast(1.0)), Some(Bound::AtMost(1.0))),
        (W::Proxied, "haproxy") => (Some(Bound::AtLeast(1.0)), None),
        (W::Download | W::Upload, "nginx") => (Some(Bound::AtLeast(0.9)), None),
        (W::Websocket, "nginx") => (Some(Bound::AtLeast(1.0)), None),
        (
            W::QpsIssue | W::QpsIssueRedeem | W::QvGetwebticket | W::QvGetwebticketAuthenticate,
            "ticket-server",
        ) => (Some(Bound::AtLeast(0.9)), None),
        (W::QpsIssueRedeem, "memory") => (Some(Bound::AtLeast(0.6)), None),
        _ => (None, None),
    }
}

/// References the ratios table shows, in groups, in its order; within a group, rows keep
/// their order (workload by workload).
const TABLED: [&[&str]; 4] = [
    &["nginx", "haproxy"],
    &["ticket-server"],
    &["memory"],
    &["old"],
];

fn title(w: Workload) -> &'static str {
    match w {
        Workload::Hello => "hello",
        Workload::QpsIssue => "QPS ticket issue",
        Workload::QpsIssueRedeem => "issue + redeem",
        Workload::QvGetwebticket => "GetWebTicket",
        Workload::QvGetwebticketAuthenticate => "GetWebTicket + Authenticate.aspx",
        Workload::Proxied => "proxied GET",
        Workload::Direct => "direct",
        Workload::SessionGet => "session API GET",
        Workload::Download => "1 MiB download",
        Workload::Upload => "1 MiB upload",
        Workload::Websocket => "WebSocket echo",
    }
}

fn reference_title(reference: &str) -> &str {
    match reference {
        "haproxy" => "HAProxy",
        "ticket-server" => "minimal ticket server",
        "old" => "old binary",
        "memory" => "memory store",
        other => other,
    }
}

/// What a workload's throughput is counted in, and the factor from requests per second.
fn unit(w: Workload) -> (&'static str, f64) {
    match (w, w.streamed_bytes()) {
        (_, Some(bytes)) => ("MB/s", bytes as f64 / 1e6),
        (Workload::Websocket, None) => ("msg/s", 1.0),
        _ => ("req/s", 1.0),
    }
}

/// The ratios of the gateway against its peers, the minimal ticket server, the memory
/// store and the old binary, with the targets; one line per comparison.
pub fn ratios(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<60} {:<5} {:>9} {:>9} {:>6} {:>19} {:>6} {:>3}  {}\n",
        "gateway against",
        "unit",
        "gateway",
        "reference",
        "×",
        "p99 µs gw / ref",
        "p99 ×",
        "n",
        "target"
    );
    for group in TABLED {
        for r in rows
            .iter()
            .filter(|r| group.contains(&r.reference.as_str()))
        {
            let reference = r.reference.as_str();
            let label = if reference == "memory" {
                format!("{}, Redis store vs memory store", title(r.workload))
            } else if r.store == "redis" {
                format!(
                    "{} vs {} (Redis store)",
                    title(r.workload),
                    reference_title(reference)
                )
            } else {
                format!("{} vs {}", title(r.workload), reference_title(reference))
            };
            let (unit, per_request) = unit(r.workload);
            let (bound, p99_bound) = targets(r.workload, reference);
            let verdict = |b: Option<Bound>, v: Option<f64>, what: &str| {
                b.map(|b| {
                    let mark = match v.filter(|v| v.is_finite()) {
                        Some(v) if b.met(v) => "✓",
                        Some(_) => "✗",
                        None => "?",
                    };
                    format!("{what}{} {mark}", b.text())
                })
            };
            let target: Vec<String> = [
                verdict(bound, r.rps_ratio, ""),
                verdict(p99_bound, r.p99_ratio, "p99 "),
            ]
            .into_iter()
            .flatten()
            .collect();
            let p99 = format!("{:.0} / {}", r.p99_us, fmt(r.reference_p99_us, 0, "-"));
            let _ = writeln!(
                out,
                "{:<60} {:<5} {:>9} {:>9} {:>6} {:>19} {:>6} {:>3}  {}",
                label,
                unit,
                format!("{:.0}", r.rps * per_request),
                fmt(r.reference_rps.map(|v| v * per_request), 0, "-"),
                opt(r.rps_ratio, 3),
                p99,
                opt(r.p99_ratio, 2),
                r.pairs,
                if target.is_empty() {
                    "(information)".to_owned()
                } else {
                    target.join(", ")
                },
            );
        }
    }
    out.push_str("× and p99 ×: medians of the per-pair ratios over n alternated pairs, one run.\n");
    out
}

/// The CSV header: the table's columns, those of earlier versions first.
const CSV_HEADER: &str = "workload,store,reference,requests_per_s,ops_per_s,p50_us_per_op,\
p99_us_per_op,cpu_us_per_request,deps_cpu_us_per_request,rps_ratio,cpu_ratio,client_cpu_pct,\
server,mb_per_s,p99_ratio,reference_requests_per_s,reference_p99_us_per_op,pairs\n";

/// Writes the rows as CSV.
pub fn write_csv(rows: &[Row], path: &Path) -> std::io::Result<()> {
    std::fs::write(path, csv(rows))
}

fn csv(rows: &[Row]) -> String {
    let mut out = String::from(CSV_HEADER);
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{:.1},{:.1},{:.1},{:.1},{},{},{},{},{},{},{},{},{},{},{}",
            r.workload.name(),
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
            r.server,
            fmt(r.mb_per_s, 1, ""),
            fmt(r.p99_ratio, 4, ""),
            fmt(r.reference_rps, 1, ""),
            fmt(r.reference_p99_us, 1, ""),
            r.pairs,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(workload: Workload, server: &str, store: &str, reference: &str) -> Row {
        Row {
            workload,
            server: server.into(),
            store: store.into(),
            reference: reference.into(),
            rps: 2000.0,
            ops_per_s: 1000.0,
            mb_per_s: None,
            p50_us: 1.0,
            p99_us: 2.0,
            cpu_us: Some(3.0),
            upstream_cpu_us: None,
            client_cpu_pct: Some(50.0),
            rps_ratio: Some(0.5),
            p99_ratio: Some(1.25),
            cpu_ratio: None,
            reference_rps: Some(4000.0),
            reference_p99_us: Some(1.6),
            pairs: 3,
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
        assert_eq!(median(vec![f64::NAN, 1.0]), Some(1.0));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn ratios_are_medians_of_the_pairs() {
        // Pairs (a, b): 1.5, 0.5, 2.0 → 1.5; a ratio of medians would give 1.0 / 2.0.
        let pairs = [(2.0, 3.0), (4.0, 2.0), (1.0, 2.0)];
        assert_eq!(ratio_of(pairs.iter().map(|&p| Some(p))), Some(1.5));
        // A missing side or a zero reference leaves the pair out.
        let gaps = [Some((2.0, 1.0)), None, Some((0.0, 5.0))];
        assert_eq!(ratio_of(gaps.into_iter()), Some(0.5));
        assert_eq!(ratio_of(std::iter::empty()), None);
    }

    #[test]
    fn targets_and_bounds() {
        assert_eq!(
            targets(Workload::Proxied, "nginx"),
            (Some(Bound::AtLeast(1.0)), Some(Bound::AtMost(1.0)))
        );
        assert_eq!(
            targets(Workload::Upload, "nginx").0,
            Some(Bound::AtLeast(0.9))
        );
        assert_eq!(targets(Workload::Upload, "haproxy"), (None, None));
        assert_eq!(
            targets(Workload::QvGetwebticket, "ticket-server").0,
            Some(Bound::AtLeast(0.9))
        );
        assert_eq!(
            targets(Workload::QpsIssueRedeem, "memory").0,
            Some(Bound::AtLeast(0.6))
        );
        assert_eq!(targets(Workload::QpsIssue, "hello"), (None, None));
        assert_eq!(targets(Workload::QpsIssue, "old"), (None, None));
        assert!(Bound::AtLeast(0.9).met(0.9) && !Bound::AtLeast(0.9).met(0.89));
        assert!(Bound::AtMost(1.0).met(1.0) && !Bound::AtMost(1.0).met(1.01));
    }

    #[test]
    fn the_ratios_table_shows_targets_and_skips_information_references() {
        let rows = [
            row(Workload::QpsIssue, "gateway", "memory", "hello"),
            row(Workload::Proxied, "gateway", "memory", "nginx"),
            Row {
                rps_ratio: Some(1.1),
                ..row(Workload::Proxied, "gateway", "memory", "haproxy")
            },
            Row {
                mb_per_s: Some(1048.6),
                ..row(Workload::Download, "gateway", "memory", "nginx")
            },
            row(Workload::QpsIssueRedeem, "gateway", "redis", "memory"),
            row(Workload::QpsIssue, "gateway", "memory", "old"),
        ];
        let text = ratios(&rows);
        let lines: Vec<&str> = text.lines().collect();
        // Header, five comparisons (not the hello one), legend.
        assert_eq!(lines.len(), 7, "{text}");
        assert!(lines[1].starts_with("proxied GET vs nginx"));
        assert!(lines[1].contains("≥ 1.00 ✗, p99 ≤ 1.00 ✗"), "{}", lines[1]);
        assert!(lines[1].contains("2 / 2"), "{}", lines[1]);
        assert!(lines[2].starts_with("proxied GET vs HAProxy"));
        assert!(lines[2].contains("≥ 1.00 ✓"));
        assert!(!lines[2].contains("p99 ≤"));
        // 2,000 requests/s of 1 MiB bodies.
        assert!(
            lines[3].contains("MB/s") && lines[3].contains(" 2097 "),
            "{}",
            lines[3]
        );
        assert!(lines[4].starts_with("issue + redeem, Redis store vs memory store"));
        assert!(lines[4].contains("≥ 0.60 ✗"));
        assert!(lines[5].starts_with("QPS ticket issue vs old binary"));
        assert!(lines[5].ends_with("(information)"));
    }

    #[test]
    fn the_csv_keeps_the_old_columns_first() {
        let r = row(Workload::QpsIssueRedeem, "gateway", "memory", "hello");
        let csv = csv(std::slice::from_ref(&r));
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(header.len(), 18);
        assert_eq!(header[..3], ["workload", "store", "reference"]);
        assert_eq!(header[11], "client_cpu_pct");
        let first = lines.next().unwrap();
        assert_eq!(first.split(',').count(), header.len());
        assert!(first.starts_with("qps-issue-redeem,memory,hello,2000.0,1000.0,"));
        let table = table(&[r]);
        let header = table.lines().next().unwrap();
        assert_eq!(header.split_whitespace().next(), Some("workload"));
    }
}
