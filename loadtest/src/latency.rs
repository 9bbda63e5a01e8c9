//! Latency histograms: how they are made, merged, summarised and sent between processes.
//!
//! Latencies are recorded in microseconds in `hdrhistogram`s with three significant figures,
//! from 1 us to 10 minutes; a larger value is recorded as 10 minutes. Every client thread keeps
//! its own histograms and they are added up at the end, across threads and processes.
//!
//! A [`Series`] keeps latency over time: one coarse histogram per second of sending, so that
//! a thread's cost grows with the run's length, not with its connections.

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::{Counter, Histogram};
use serde::{Deserialize, Serialize};

/// The largest latency recorded as itself, in microseconds (10 minutes).
pub const MAX_MICROS: u64 = 600_000_000;

/// A latency histogram in microseconds.
pub type Hist = Histogram<u64>;

/// A new, empty latency histogram.
pub fn histogram() -> Hist {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant bounds are valid")
}

/// Adds `from` into `into`. Both are made by [`histogram`] (or both by [`coarse`]), so they
/// always fit.
pub fn merge<T: Counter>(into: &mut Histogram<T>, from: &Histogram<T>) {
    if into.add(from).is_err() {
        // Unreachable with equal bounds; keep the counts rather than fail a whole run.
        for value in from.iter_recorded() {
            into.saturating_record_n(value.value_iterated_to(), value.count_at_value());
        }
    }
}

/// A latency distribution in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    /// Values recorded.
    pub count: u64,
    /// Smallest, ms.
    pub min_ms: f64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
    /// Mean, ms.
    pub mean_ms: f64,
}

impl Latency {
    /// Summarises `hist`; all zero when it is empty.
    pub fn of(hist: &Hist) -> Latency {
        if hist.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: hist.len(),
            min_ms: ms(hist.min()),
            p50_ms: ms(hist.value_at_quantile(0.5)),
            p90_ms: ms(hist.value_at_quantile(0.9)),
            p99_ms: ms(hist.value_at_quantile(0.99)),
            p999_ms: ms(hist.value_at_quantile(0.999)),
            max_ms: ms(hist.max()),
            mean_ms: hist.mean() / 1000.0,
        }
    }
}

/// The median of `values` (the mean of the middle two for an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Encodes a histogram as base64 of its V2 serialization, for a JSON line.
pub fn encode<T: Counter>(hist: &Histogram<T>) -> String {
    let mut bytes = Vec::new();
    // Writing to a Vec cannot fail, and a histogram from `histogram()` always serializes.
    let _ = V2Serializer::new().serialize(hist, &mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes what [`encode`] made of a [`histogram`].
pub fn decode(text: &str) -> Result<Hist, String> {
    decode_into(text, histogram())
}

/// Decodes what [`encode`] made into `hist`, empty and bounded like the local histograms, so
/// that merging into them cannot fail.
fn decode_into<T: Counter>(text: &str, mut hist: Histogram<T>) -> Result<Histogram<T>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| e.to_string())?;
    let decoded: Histogram<T> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("{e:?}"))?;
    merge(&mut hist, &decoded);
    Ok(hist)
}

/// A coarse latency histogram in microseconds: one significant figure (values within about
/// 6 %), 32-bit counts, about 1.7 KiB.
pub type Coarse = Histogram<u32>;

/// A new, empty coarse histogram.
pub fn coarse() -> Coarse {
    Histogram::new_with_bounds(1, MAX_MICROS, 1).expect("constant bounds are valid")
}

/// Latencies by the second their events were sent in.
///
/// Each second of sending holds a [`Coarse`] histogram and the exact largest value, so a
/// thread pays about 1.7 KiB per second of publishing (1 MiB for ten minutes), whatever its
/// connections. Recording into the latest second, the usual case, is one comparison.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Series {
    /// Sorted by `at`, each second once.
    seconds: Vec<Second>,
}

/// The latencies of events sent in one second.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Second {
    /// The second, since the Unix epoch.
    at: u64,
    /// The largest latency, exact, microseconds.
    max_us: u64,
    /// Every latency, microseconds.
    #[serde(with = "serde_coarse")]
    hist: Coarse,
}

/// The latency of the events sent in one second, as reported.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct SecondLatency {
    /// The second the events were sent in, on the samples' time axis: while the samples'
    /// `t` went from `second` to `second + 1`.
    pub second: u64,
    /// Deliveries of events sent in that second.
    pub count: u64,
    /// Median, ms (within about 6 %).
    pub p50_ms: f64,
    /// 99th percentile, ms (within about 6 %, never above `max_ms`).
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

impl Series {
    /// Records `micros` for an event sent in Unix second `at`.
    #[inline]
    pub fn record(&mut self, at: u64, micros: u64) {
        if let Some(last) = self.seconds.last_mut() {
            if last.at == at {
                return last.record(micros);
            }
        }
        let index = match self.seconds.binary_search_by_key(&at, |s| s.at) {
            Ok(index) => index,
            Err(index) => {
                let hist = coarse();
                let second = Second {
                    at,
                    max_us: 0,
                    hist,
                };
                self.seconds.insert(index, second);
                index
            }
        };
        if let Some(second) = self.seconds.get_mut(index) {
            second.record(micros);
        }
    }

    /// Adds `other` into this series, second by second.
    pub fn merge(&mut self, other: &Series) {
        for from in &other.seconds {
            match self.seconds.binary_search_by_key(&from.at, |s| s.at) {
                Ok(index) => {
                    if let Some(into) = self.seconds.get_mut(index) {
                        into.max_us = into.max_us.max(from.max_us);
                        merge(&mut into.hist, &from.hist);
                    }
                }
                Err(index) => self.seconds.insert(index, from.clone()),
            }
        }
    }

    /// Each second's figures, placed in time by `second_of` (Unix seconds to the samples'
    /// time axis).
    pub fn summary(&self, second_of: impl Fn(u64) -> u64) -> Vec<SecondLatency> {
        let ms = |us: u64| us as f64 / 1000.0;
        self.seconds
            .iter()
            .map(|s| SecondLatency {
                second: second_of(s.at),
                count: s.hist.len(),
                p50_ms: ms(s.hist.value_at_quantile(0.5).min(s.max_us)),
                p99_ms: ms(s.hist.value_at_quantile(0.99).min(s.max_us)),
                max_ms: ms(s.max_us),
            })
            .collect()
    }
}

impl Second {
    fn record(&mut self, micros: u64) {
        self.max_us = self.max_us.max(micros);
        self.hist.saturating_record(micros);
    }
}

/// `serde(with)` for a coarse histogram.
mod serde_coarse {
    use super::{coarse, decode_into, encode, Coarse};
    use serde::Deserialize;

    pub fn serialize<S: serde::Serializer>(hist: &Coarse, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(hist))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Coarse, D::Error> {
        let text = String::deserialize(d)?;
        decode_into(&text, coarse()).map_err(serde::de::Error::custom)
    }
}

/// `serde(with)` for one histogram.
pub mod serde_hist {
    use super::{decode, encode, Hist};
    use serde::Deserialize;

    /// Serializes as a base64 string.
    pub fn serialize<S: serde::Serializer>(hist: &Hist, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(hist))
    }

    /// Deserializes from a base64 string.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Hist, D::Error> {
        let text = String::deserialize(d)?;
        decode(&text).map_err(serde::de::Error::custom)
    }
}

/// `serde(with)` for a list of histograms.
pub mod serde_hists {
    use super::{decode, encode, Hist};
    use serde::Deserialize;

    /// Serializes as a list of base64 strings.
    pub fn serialize<S: serde::Serializer>(hists: &[Hist], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(hists.iter().map(encode))
    }

    /// Deserializes from a list of base64 strings.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Hist>, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        texts
            .iter()
            .map(|text| decode(text).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_in_milliseconds() {
        let mut hist = histogram();
        for us in 1..=1000u64 {
            hist.record(us * 100).unwrap();
        }
        let latency = Latency::of(&hist);
        assert_eq!(latency.count, 1000);
        assert!((latency.p50_ms - 50.0).abs() < 0.1, "{latency:?}");
        assert!((latency.p99_ms - 99.0).abs() < 0.1, "{latency:?}");
        assert!((latency.max_ms - 100.0).abs() < 0.1, "{latency:?}");
        assert!((latency.min_ms - 0.1).abs() < 0.001, "{latency:?}");
        assert_eq!(Latency::of(&histogram()), Latency::default());
    }

    #[test]
    fn merging_adds_counts_and_keeps_extremes() {
        let mut a = histogram();
        let mut b = histogram();
        a.record(10).unwrap();
        a.record(20).unwrap();
        b.record(5_000_000).unwrap();
        b.saturating_record(u64::MAX);
        merge(&mut a, &b);
        assert_eq!(a.len(), 4);
        assert_eq!(a.min(), 10);
        assert!(a.max() >= MAX_MICROS, "saturated value is kept at the top");
    }

    #[test]
    fn round_trips_through_text() {
        let mut hist = histogram();
        for us in [1, 2, 3, 1000, 123_456, MAX_MICROS] {
            hist.record(us).unwrap();
        }
        let back = decode(&encode(&hist)).unwrap();
        assert_eq!(back.len(), hist.len());
        assert_eq!(Latency::of(&back), Latency::of(&hist));
        let mut merged = histogram();
        merge(&mut merged, &back);
        merge(&mut merged, &hist);
        assert_eq!(merged.len(), 12);
        assert!(decode("not base64!").is_err());
    }

    #[test]
    fn series_merge_second_by_second_across_threads_and_json() {
        // Two threads: seconds 10 and 12, and 11 and 12, recorded out of order.
        let mut a = Series::default();
        for (at, us) in [(12, 3_000), (10, 1_000), (12, 5_000), (10, 2_000)] {
            a.record(at, us);
        }
        let mut b = Series::default();
        for (at, us) in [(11, 7_000), (12, 40_000)] {
            b.record(at, us);
        }
        // The other thread's series arrives from a worker process as JSON.
        let b: Series = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        a.merge(&b);
        let summary = a.summary(|unix| unix - 10);
        let seconds: Vec<(u64, u64, f64)> = summary
            .iter()
            .map(|s| (s.second, s.count, s.max_ms))
            .collect();
        assert_eq!(seconds, [(0, 2, 2.0), (1, 1, 7.0), (2, 3, 40.0)]);
        let last = summary[2];
        assert!((last.p50_ms - 5.0).abs() <= 0.35, "{last:?}");
        assert!(
            last.p99_ms <= last.max_ms && last.p99_ms >= 37.0,
            "{last:?}"
        );
        assert!(Series::default().summary(|t| t).is_empty());
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
