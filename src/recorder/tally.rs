//! What a strategy's records add up to: the latency histograms, the counts by outcome
//! and the few extremes every figure of the results is derived from. A record is added
//! the moment it is made and then let go, so a run holds no per-request data; tallies
//! add up (`merge`), so the recorder's shards, kept apart while requests finish, sum into
//! one.

use super::{ErrorClass, Outcome, RequestRecord, micros, new_histogram};
use crate::scenario::SloConfig;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Tally {
    /// Latencies of successful requests in microseconds (a failure's latency, a fast
    /// 429, would make a refusing server look fast), by what they measure.
    pub e2e: Histogram<u64>,
    pub e2e_corrected: Histogram<u64>,
    pub ttft: Histogram<u64>,
    pub ttft_corrected: Histogram<u64>,
    pub tpot: Histogram<u64>,
    pub dispatch_delay: Histogram<u64>,
    /// Every inter-token gap of every stream, in microseconds.
    pub itl: Histogram<u64>,
    /// Records by outcome.
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Successful requests that met the run's objectives on their own
    /// ([`RequestRecord::meets`]): a capacity probe's goodput.
    pub good: u64,
    /// Output tokens of successful requests.
    pub output_tokens: u64,
    /// The latest intended start of any record.
    pub last_intended: Option<Duration>,
    /// Requests sent, and the first and last send.
    pub sends: u64,
    pub first_sent: Option<Duration>,
    pub last_sent: Option<Duration>,
    /// The latest end of any record.
    pub last_end: Option<Duration>,
    /// With copies, each copy's counts (item `i` is copy `i mod copies`'s).
    pub by_copy: Vec<CopyCounts>,
    /// The error of the lowest-indexed failed request: `(index, message)`.
    pub first_error: Option<(u32, String)>,
    /// What the server's prompt cache served the successful requests.
    pub prompt_cache: CacheCounts,
}

/// The successful requests and their prompt tokens, and of them what the server's usage
/// said it read from its prompt cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    pub answered: u64,
    pub prompt_tokens: u64,
    /// Requests with any cached prompt tokens.
    pub hits: u64,
    pub cached_tokens: u64,
}

/// One copy's requests by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyCounts {
    pub requests: u64,
    pub ok: u64,
    pub rate_limited: u64,
    /// Every failed request, 429s included.
    pub failed: u64,
}

fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    a.into_iter().chain(b).min()
}

fn latest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    a.max(b)
}

impl Tally {
    pub fn new(copies: usize) -> Tally {
        Tally {
            e2e: new_histogram(),
            e2e_corrected: new_histogram(),
            ttft: new_histogram(),
            ttft_corrected: new_histogram(),
            tpot: new_histogram(),
            dispatch_delay: new_histogram(),
            itl: new_histogram(),
            outcomes: BTreeMap::new(),
            good: 0,
            output_tokens: 0,
            last_intended: None,
            sends: 0,
            first_sent: None,
            last_sent: None,
            last_end: None,
            by_copy: vec![CopyCounts::default(); copies.max(1)],
            first_error: None,
            prompt_cache: CacheCounts::default(),
        }
    }

    /// Records in all.
    pub fn records(&self) -> u64 {
        self.outcomes.values().sum()
    }

    /// Adds `record`, judged against `slo` for [`Tally::good`].
    pub fn add(&mut self, record: &RequestRecord, slo: &SloConfig) {
        *self.outcomes.entry(record.outcome).or_default() += 1;
        self.good += u64::from(record.meets(slo));
        self.last_intended = latest(self.last_intended, Some(record.intended));
        if let Some(sent) = record.sent {
            self.sends += 1;
            self.first_sent = earliest(self.first_sent, Some(sent));
            self.last_sent = latest(self.last_sent, Some(sent));
        }
        self.last_end = latest(self.last_end, record.end);
        let copies = self.by_copy.len();
        let copy = &mut self.by_copy[record.index as usize % copies];
        copy.requests += 1;
        match record.outcome {
            Outcome::Ok => copy.ok += 1,
            Outcome::Failed(class) => {
                copy.failed += 1;
                copy.rate_limited += u64::from(class == ErrorClass::RateLimited);
            }
            _ => {}
        }
        if let Some(error) = &record.error
            && self
                .first_error
                .as_ref()
                .is_none_or(|(index, _)| record.index < *index)
        {
            self.first_error = Some((record.index, error.clone()));
        }
        if !record.is_ok() {
            return;
        }
        self.output_tokens += u64::from(record.output_tokens);
        let cache = &mut self.prompt_cache;
        cache.answered += 1;
        cache.prompt_tokens += u64::from(record.prompt_tokens);
        cache.hits += u64::from(record.cached_tokens > 0);
        cache.cached_tokens += u64::from(record.cached_tokens);
        let latencies = [
            (&mut self.e2e, record.e2e()),
            (&mut self.e2e_corrected, record.e2e_corrected()),
            (&mut self.ttft, record.ttft()),
            (&mut self.ttft_corrected, record.ttft_corrected()),
            (&mut self.tpot, record.tpot()),
            (&mut self.dispatch_delay, record.dispatch_delay()),
        ];
        for (histogram, latency) in latencies {
            if let Some(latency) = latency {
                histogram.saturating_record(micros(latency));
            }
        }
    }

    /// Adds `other` into this tally.
    pub fn merge(&mut self, other: &Tally) {
        let histograms = [
            (&mut self.e2e, &other.e2e),
            (&mut self.e2e_corrected, &other.e2e_corrected),
            (&mut self.ttft, &other.ttft),
            (&mut self.ttft_corrected, &other.ttft_corrected),
            (&mut self.tpot, &other.tpot),
            (&mut self.dispatch_delay, &other.dispatch_delay),
            (&mut self.itl, &other.itl),
        ];
        for (mine, theirs) in histograms {
            mine.add(theirs)
                .expect("every tally's histograms share their bounds");
        }
        for (outcome, n) in &other.outcomes {
            *self.outcomes.entry(*outcome).or_default() += n;
        }
        self.good += other.good;
        self.output_tokens += other.output_tokens;
        let (cache, theirs) = (&mut self.prompt_cache, other.prompt_cache);
        cache.answered += theirs.answered;
        cache.prompt_tokens += theirs.prompt_tokens;
        cache.hits += theirs.hits;
        cache.cached_tokens += theirs.cached_tokens;
        self.last_intended = latest(self.last_intended, other.last_intended);
        self.sends += other.sends;
        self.first_sent = earliest(self.first_sent, other.first_sent);
        self.last_sent = latest(self.last_sent, other.last_sent);
        self.last_end = latest(self.last_end, other.last_end);
        for (mine, theirs) in self.by_copy.iter_mut().zip(&other.by_copy) {
            mine.requests += theirs.requests;
            mine.ok += theirs.ok;
            mine.rate_limited += theirs.rate_limited;
            mine.failed += theirs.failed;
        }
        if let Some((index, error)) = &other.first_error
            && self.first_error.as_ref().is_none_or(|(i, _)| index < i)
        {
            self.first_error = Some((*index, error.clone()));
        }
    }
}
