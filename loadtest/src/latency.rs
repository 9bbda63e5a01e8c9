//! Latency histograms: how they are made, merged, summarised and sent between processes.
//!
//! Latencies are recorded in microseconds in `hdrhistogram`s with three significant figures,
//! from 1 us to 10 minutes; a larger value is recorded as 10 minutes. Every client thread keeps
//! its own histograms and they are added up at the end, across threads and processes.

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The largest latency recorded as itself, in microseconds (10 minutes).
pub const MAX_MICROS: u64 = 600_000_000;

/// A latency histogram in microseconds.
pub type Hist = Histogram<u64>;

/// A new, empty latency histogram.
pub fn histogram() -> Hist {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant bounds are valid")
}

/// Adds `from` into `into`. Both are made by [`histogram`], so they always fit.
pub fn merge(into: &mut Hist, from: &Hist) {
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
pub fn encode(hist: &Hist) -> String {
    let mut bytes = Vec::new();
    // Writing to a Vec cannot fail, and a histogram from `histogram()` always serializes.
    let _ = V2Serializer::new().serialize(hist, &mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes what [`encode`] made.
pub fn decode(text: &str) -> Result<Hist, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| e.to_string())?;
    let decoded: Hist = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("{e:?}"))?;
    // Re-bound it so that merging into local histograms cannot fail.
    let mut hist = histogram();
    merge(&mut hist, &decoded);
    Ok(hist)
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
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
