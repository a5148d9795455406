//! A run spread over machines: which part of the work this process sends
//! ([`ShardSpec`], `--shard I/N`), the absolute instant every part starts from
//! ([`StartAt`], `--start-at`), and what each part records so that a merge can check
//! that the parts belong together and started together ([`ShardRecord`],
//! [`StartRecord`], [`MergeRecord`]).
//!
//! There is no coordinator: every part draws the whole schedule from the seed, keeps the
//! items whose index is its own (index mod N = I; the workload has no multi-turn
//! sessions to keep whole), and anchors the schedule at the common start, so the union
//! of the parts is the single-machine schedule. A leaf: it imports nothing of the crate.

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// The most parts a run may be split into: far past any cluster's generator count.
pub const MAX_SHARDS: u32 = 10_000;

/// The environment variable in which a Kubernetes Indexed Job gives each pod its index.
pub const JOB_INDEX_VAR: &str = "JOB_COMPLETION_INDEX";

/// A start further ahead than this is refused: a wait must have a cap, and a start a day
/// away is a typo.
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// A start further back than this is refused: anchoring at it would send every item
/// due since then in one burst.
pub const MAX_LATE: Duration = Duration::from_secs(60);

/// Part `index` of `count` (from 0): the items whose index mod `count` is `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    pub index: u32,
    pub count: u32,
}

impl ShardSpec {
    /// Checks `index` < `count` ≤ [`MAX_SHARDS`].
    pub fn new(index: u64, count: u64) -> Result<ShardSpec, String> {
        if count == 0 || count > u64::from(MAX_SHARDS) {
            return Err(format!(
                "the number of shards must be from 1 to {MAX_SHARDS}, got {count}"
            ));
        }
        if index >= count {
            return Err(format!(
                "the shard index must be from 0 to {} (one less than the number of shards), got {index}",
                count - 1
            ));
        }
        Ok(ShardSpec {
            index: index as u32,
            count: count as u32,
        })
    }

    /// Part `value` of `count`, `value` being what a Kubernetes Indexed Job puts in
    /// [`JOB_INDEX_VAR`] (`None` when the variable is not set).
    pub fn from_job_index(count: u32, value: Option<&str>) -> Result<ShardSpec, String> {
        let value = value.ok_or_else(|| {
            format!("--shards needs {JOB_INDEX_VAR} set (a Kubernetes Indexed Job sets it), or use --shard I/N")
        })?;
        let index = value.trim().parse::<u64>().map_err(|_| {
            format!("{JOB_INDEX_VAR} must be a shard index (0, 1, …), got {value:?}")
        })?;
        ShardSpec::new(index, u64::from(count))
    }

    /// Whether the work item with this index is this part's.
    pub fn owns(&self, item_index: u32) -> bool {
        item_index % self.count == self.index
    }
}

impl std::str::FromStr for ShardSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<ShardSpec, String> {
        let expected = || format!("expected I/N, the I-th of N parts from 0 (e.g. 0/3), got {s:?}");
        let (index, count) = s.split_once('/').ok_or_else(expected)?;
        let index = index.trim().parse().map_err(|_| expected())?;
        let count = count.trim().parse().map_err(|_| expected())?;
        ShardSpec::new(index, count)
    }
}

/// The instant every part of a run anchors its schedule at: RFC 3339
/// (`2026-11-29T12:00:00Z`, fractions allowed) or Unix seconds (`1795953600`, `….5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartAt(pub SystemTime);

impl std::str::FromStr for StartAt {
    type Err = String;

    fn from_str(s: &str) -> Result<StartAt, String> {
        let expected = || {
            format!(
                "expected a time in RFC 3339 (2026-11-29T12:00:00Z) or Unix seconds (1795953600), got {s:?}"
            )
        };
        let s = s.trim();
        if let Ok(timestamp) = s.parse::<jiff::Timestamp>() {
            return Ok(StartAt(SystemTime::from(timestamp)));
        }
        let seconds: f64 = s.parse().map_err(|_| expected())?;
        // Up to the year 9999, as RFC 3339 allows.
        if !(0.0..=253_402_300_799.0).contains(&seconds) {
            return Err(expected());
        }
        Ok(StartAt(
            SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds),
        ))
    }
}

impl StartAt {
    /// Why this start cannot be waited for from `now`: more than [`MAX_WAIT`] ahead,
    /// or more than [`MAX_LATE`] gone.
    pub fn check(&self, now: SystemTime) -> Result<(), String> {
        match self.0.duration_since(now) {
            Ok(ahead) if ahead > MAX_WAIT => Err(format!(
                "--start-at {} is {:.0} s from now, more than the {} h a run waits",
                rfc3339(self.0),
                ahead.as_secs_f64(),
                MAX_WAIT.as_secs() / 3600
            )),
            Ok(_) => Ok(()),
            Err(gone) if gone.duration() > MAX_LATE => Err(format!(
                "--start-at {} was {:.0} s ago, more than the {} s a part may start late: give a time ahead of every part's start",
                rfc3339(self.0),
                gone.duration().as_secs_f64(),
                MAX_LATE.as_secs()
            )),
            Err(_) => Ok(()),
        }
    }

    /// How long from `now` until the start (zero once it has passed).
    pub fn wait_from(&self, now: SystemTime) -> Duration {
        self.0.duration_since(now).unwrap_or_default()
    }

    /// What a part records: how late it was ready to send (`ready`, by its own clock;
    /// 0 when it was ready in time), and that clock's own account of its accuracy.
    pub fn record(&self, ready: SystemTime) -> StartRecord {
        let lateness_ms = ready
            .duration_since(self.0)
            .map_or(0.0, |late| late.as_secs_f64() * 1000.0);
        StartRecord {
            start_at: rfc3339(self.0),
            lateness_ms,
            clock: ClockReading::now(ready),
        }
    }
}

/// RFC 3339 in UTC with the fraction of a second, if any.
pub fn rfc3339(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t).map_or_else(|_| format!("{t:?}"), |ts| ts.to_string())
}

/// How a part started against the common start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartRecord {
    /// The common start, RFC 3339.
    pub start_at: String,
    /// How late the part was ready to send after the common start, by its own clock,
    /// in ms (0: ready in time). The schedule is anchored at the common start
    /// regardless, so a late part's first items show the delay as dispatch delay.
    pub lateness_ms: f64,
    pub clock: ClockReading,
}

/// The part's wall clock when it was ready, and what the kernel says of its accuracy
/// (Linux's `adjtimex`; absent elsewhere): parts on different machines agree only as
/// well as their clocks do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClockReading {
    /// The wall clock when the part was ready, RFC 3339.
    pub read_at: String,
    /// Whether the kernel's clock is synchronised (by NTP, chrony, PTP).
    pub synchronized: Option<bool>,
    /// The kernel's estimated and maximum error of the clock, in ms.
    pub est_error_ms: Option<f64>,
    pub max_error_ms: Option<f64>,
}

impl ClockReading {
    fn now(read_at: SystemTime) -> ClockReading {
        let (synchronized, est_error_ms, max_error_ms) = kernel_clock();
        ClockReading {
            read_at: rfc3339(read_at),
            synchronized,
            est_error_ms,
            max_error_ms,
        }
    }
}

#[cfg(target_os = "linux")]
fn kernel_clock() -> (Option<bool>, Option<f64>, Option<f64>) {
    // SAFETY: `timex` is plain data; with `modes` = 0 adjtimex only reads the state.
    let mut timex: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut timex) };
    if state < 0 {
        return (None, None, None);
    }
    (
        Some(state != libc::TIME_ERROR),
        Some(timex.esterror as f64 / 1000.0),
        Some(timex.maxerror as f64 / 1000.0),
    )
}

#[cfg(not(target_os = "linux"))]
fn kernel_clock() -> (Option<bool>, Option<f64>, Option<f64>) {
    (None, None, None)
}

/// What a part of a sharded run records: which part it is, and the hash of what the
/// whole run is (the scenario file, the strategy and the whole schedule), which every
/// part of one run shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub index: u32,
    pub count: u32,
    pub scenario_hash: String,
}

/// A stable 64-bit FNV-1a hash of `parts` (each length-prefixed, so boundaries count),
/// in hex. Stable across versions and machines, unlike std's hasher; it guards against
/// merging the wrong folders, not against an adversary.
pub fn stable_hash<P: AsRef<[u8]>>(parts: impl IntoIterator<Item = P>) -> String {
    use std::hash::Hasher as _;
    let mut hasher = fnv::FnvHasher::default();
    for part in parts {
        let part = part.as_ref();
        hasher.write(&(part.len() as u64).to_le_bytes());
        hasher.write(part);
    }
    format!("{:016x}", hasher.finish())
}

/// What a merged results folder records about its parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeRecord {
    /// Into how many parts the run was split.
    pub count: u32,
    pub parts: Vec<ShardPart>,
    /// Indices of the parts not merged (with `--allow-partial`).
    #[serde(default)]
    pub missing: Vec<u32>,
    /// The spread of the parts' starts (latest lateness − earliest), in ms.
    pub start_skew_ms: f64,
    /// The most the merge accepted.
    pub max_skew_ms: f64,
}

impl MergeRecord {
    /// Why a merge with missing parts is incomplete.
    pub fn missing_reason(&self) -> String {
        let missing: Vec<String> = self.missing.iter().map(u32::to_string).collect();
        format!(
            "shards {} of {} were not merged (--allow-partial)",
            missing.join(", "),
            self.count
        )
    }
}

/// One merged part: where it came from, how it started, and what it sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardPart {
    pub index: u32,
    /// The part's results folder, as given to the merge.
    pub source: String,
    /// The machine it ran on (CPU model and cores).
    pub machine: String,
    pub start: StartRecord,
    /// Per strategy, in the order of the merged summary.
    pub strategies: Vec<ShardSent>,
}

/// What one part sent of one strategy: its share of the provider's quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardSent {
    pub label: String,
    pub requests: u64,
    pub ok: u64,
    pub rate_limited: u64,
    /// Sends per second between its first and last send; `None` with fewer than two.
    pub send_rate_per_s: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_is_i_of_n_and_owns_every_nth_item() {
        let spec: ShardSpec = "1/3".parse().unwrap();
        assert_eq!(spec, ShardSpec { index: 1, count: 3 });
        let owned: Vec<u32> = (0..9).filter(|&i| spec.owns(i)).collect();
        assert_eq!(owned, [1, 4, 7]);
        for bad in ["3/3", "1", "a/3", "0/0", "-1/3", "0/10001"] {
            assert!(bad.parse::<ShardSpec>().is_err(), "{bad}");
        }
        assert!(
            "3/3"
                .parse::<ShardSpec>()
                .unwrap_err()
                .contains("from 0 to 2")
        );
        assert_eq!(
            ShardSpec::from_job_index(4, Some("2")).unwrap(),
            ShardSpec { index: 2, count: 4 }
        );
        assert!(
            ShardSpec::from_job_index(4, None)
                .unwrap_err()
                .contains(JOB_INDEX_VAR)
        );
        assert!(ShardSpec::from_job_index(4, Some("4")).is_err());
    }

    #[test]
    fn a_start_is_rfc3339_or_unix_seconds_within_the_caps() {
        let rfc: StartAt = "2026-11-29T12:00:00.5Z".parse().unwrap();
        let unix: StartAt = "1795953600.5".parse().unwrap();
        assert_eq!(rfc, unix);
        assert_eq!(rfc3339(rfc.0), "2026-11-29T12:00:00.5Z");
        for bad in ["noon", "-5", "1e30", ""] {
            assert!(bad.parse::<StartAt>().is_err(), "{bad}");
        }
        let now = rfc.0;
        assert!(rfc.check(now + Duration::from_secs(30)).is_ok());
        assert!(
            rfc.check(now + Duration::from_secs(61))
                .unwrap_err()
                .contains("ago")
        );
        assert!(rfc.check(now - MAX_WAIT - Duration::from_secs(1)).is_err());
        assert_eq!(
            rfc.wait_from(now - Duration::from_secs(2)),
            Duration::from_secs(2)
        );
        let late = rfc.record(now + Duration::from_millis(3));
        assert!((late.lateness_ms - 3.0).abs() < 1e-6, "{late:?}");
        assert_eq!(rfc.record(now - Duration::from_secs(1)).lateness_ms, 0.0);
    }

    #[test]
    fn the_hash_is_stable_and_counts_boundaries() {
        assert_eq!(
            stable_hash([b"ab".as_slice(), b"c"]),
            stable_hash([b"ab".as_slice(), b"c"])
        );
        assert_ne!(
            stable_hash([b"ab".as_slice(), b"c"]),
            stable_hash([b"a".as_slice(), b"bc"])
        );
        assert_eq!(stable_hash([b""; 0]).len(), 16);
    }
}
