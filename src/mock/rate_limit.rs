//! Rate-limit values as HTTP headers carry them: `retry-after` seconds and Go-formatted
//! reset durations. Owns only the formatting; the buckets are [`crate::quota`]'s and the
//! header names each API's own.

use std::time::Duration;

/// `retry-after` in whole seconds: rounded up (waiting less would be refused again),
/// and at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// Formats a duration the way Go's `time.Duration.String` does, which is what OpenAI's
/// `x-ratelimit-reset-*` headers carry: `0s`, `12ms`, `1s`, `6m0s`, `2m59.56s`.
/// Rounded to the millisecond first, as the headers are.
pub fn go_duration(d: Duration) -> String {
    let ms = (d.as_secs_f64() * 1000.0).round() as u64;
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (hours, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let seconds = format!("{}.{:03}", rest / 1000, rest % 1000);
    let seconds = seconds.trim_end_matches('0').trim_end_matches('.');
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_match_the_reference_examples() {
        let cases = [
            (0.0, "0s"),
            (0.012, "12ms"),
            (1.0, "1s"),
            (360.0, "6m0s"),
            (179.56, "2m59.56s"),
            (3600.5, "1h0m0.5s"),
            (0.0004, "0s"),
        ];
        for (secs, want) in cases {
            assert_eq!(go_duration(Duration::from_secs_f64(secs)), want, "{secs}");
        }
    }

    #[test]
    fn reset_header_example_from_the_reference() {
        use crate::quota::TokenBucket;
        use std::time::Instant;
        // 5000 RPM with 4999 left resets in 12 ms.
        let t0 = Instant::now();
        let mut bucket = TokenBucket::per_minute(5000, t0);
        bucket.force_take(1.0, t0);
        assert_eq!(go_duration(bucket.time_to_full(t0)), "12ms");
        assert_eq!(bucket.remaining(t0), 4999);
    }
}
