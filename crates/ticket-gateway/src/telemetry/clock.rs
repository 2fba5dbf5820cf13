//! UTC timestamps for log lines, without a calendar crate and without formatting the date
//! for every line: the part up to the second is formatted once per second (per thread, by
//! whoever owns the [`Clock`]); only the fraction is written for every line.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time since the Unix epoch; zero for a clock set before 1970.
pub fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// `YYYY-MM-DDTHH:MM:SS` of the last second seen, kept to be copied into the next lines.
#[derive(Debug, Clone)]
pub struct Clock {
    secs: u64,
    len: usize,
    text: [u8; 32],
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock that has seen no second yet.
    pub const fn new() -> Self {
        Self {
            secs: u64::MAX,
            len: 0,
            text: [0; 32],
        }
    }

    /// Appends `YYYY-MM-DDTHH:MM:SS` of `now` (time since the Unix epoch) to `out` and
    /// returns the nanoseconds past that second, for [`millis`] or [`micros`].
    pub fn second(&mut self, now: Duration, out: &mut Vec<u8>) -> u32 {
        let secs = now.as_secs();
        if secs != self.secs {
            self.len = civil(secs, &mut self.text);
            self.secs = secs;
        }
        out.extend_from_slice(&self.text[..self.len]);
        now.subsec_nanos()
    }
}

/// Appends `.mmmZ`: the milliseconds of `nanos` and the UTC designator.
pub fn millis(nanos: u32, out: &mut Vec<u8>) {
    let ms = nanos / 1_000_000;
    out.extend_from_slice(&[b'.', digit(ms / 100), digit(ms / 10), digit(ms), b'Z']);
}

/// Appends `.uuuuuuZ`: the microseconds of `nanos` and the UTC designator.
pub fn micros(nanos: u32, out: &mut Vec<u8>) {
    let us = nanos / 1_000;
    out.extend_from_slice(&[
        b'.',
        digit(us / 100_000),
        digit(us / 10_000),
        digit(us / 1_000),
        digit(us / 100),
        digit(us / 10),
        digit(us),
        b'Z',
    ]);
}

/// The last decimal digit of `n`, as ASCII.
fn digit(n: u32) -> u8 {
    b'0' + (n % 10) as u8
}

/// Writes `YYYY-MM-DDTHH:MM:SS` of a Unix time into `text` and returns its length, from the
/// civil-from-days algorithm. Years past 9999 get more digits.
fn civil(secs: u64, text: &mut [u8; 32]) -> usize {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // At most u64::MAX / 86_400 ≈ 2.1e14 days: fits an i64 with room to spare.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);

    let mut year_digits = itoa::Buffer::new();
    let year = year_digits.format(year).as_bytes();
    let mut len = 0;
    for _ in year.len()..4 {
        text[len] = b'0';
        len += 1;
    }
    text[len..len + year.len()].copy_from_slice(year);
    len += year.len();
    let two = |n: u64| [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
    let [m0, m1] = two(month as u64);
    let [d0, d1] = two(day as u64);
    let [h0, h1] = two(rem / 3600);
    let [i0, i1] = two(rem / 60 % 60);
    let [s0, s1] = two(rem % 60);
    let rest = [
        b'-', m0, m1, b'-', d0, d1, b'T', h0, h1, b':', i0, i1, b':', s0, s1,
    ];
    text[len..len + rest.len()].copy_from_slice(&rest);
    len + rest.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(now: Duration, fraction: fn(u32, &mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        let nanos = Clock::new().second(now, &mut out);
        fraction(nanos, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formats_utc_dates_to_the_millisecond_or_microsecond() {
        let t = Duration::new(1_795_464_367, 680_123_456);
        assert_eq!(text(t, millis), "2026-11-23T20:06:07.680Z");
        assert_eq!(text(t, micros), "2026-11-23T20:06:07.680123Z");
        assert_eq!(
            text(Duration::new(951_868_799, 999_999_999), millis),
            "2000-02-29T23:59:59.999Z"
        );
        assert_eq!(
            text(Duration::new(946_684_799, 5_000), micros),
            "1999-12-31T23:59:59.000005Z"
        );
        assert_eq!(text(Duration::ZERO, millis), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn the_cached_second_changes_with_the_second() {
        let mut clock = Clock::new();
        let mut out = Vec::new();
        clock.second(Duration::from_secs(1_795_464_367), &mut out);
        clock.second(Duration::from_secs(1_795_464_367), &mut out);
        clock.second(Duration::from_secs(1_795_464_368), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-11-23T20:06:072026-11-23T20:06:072026-11-23T20:06:08"
        );
    }
}
