//! The `--svg` chart: subscribers streaming, the server's RSS (all its processes) and the
//! machine's memory in use over time; below them, for `fanout`, delivery latency by the second
//! its events were sent in. Drawn with plotters' SVG backend and line series only, so no font
//! library is needed.

use std::path::Path;

use plotters::chart::SeriesLabelStyle;
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

use crate::error::Error;
use crate::latency::SecondLatency;
use crate::sampler::Sample;

const MIB: f64 = 1024.0 * 1024.0;
/// Plotters' `GREEN` is too light on white.
const DARK_GREEN: RGBColor = RGBColor(0, 150, 0);
const WIDTH: u32 = 1000;
const MEMORY_HEIGHT: u32 = 520;
const LATENCY_HEIGHT: u32 = 300;
/// Room above the highest value, for the legend in the upper left corner.
const HEADROOM: f64 = 1.4;
/// The bottom of the latency axis, ms: it is logarithmic, and a zero has no place on it.
const LATENCY_FLOOR_MS: f64 = 0.01;

type Plot<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Drawn = Result<(), Box<dyn std::error::Error>>;
/// A line of the chart: its legend, its colour and the value it plots.
type Line<T> = (&'static str, RGBColor, fn(&T) -> f64);

/// Draws `samples`, and `latency` if there is any, into an SVG file at `path`.
pub fn write(
    path: &Path,
    title: &str,
    samples: &[Sample],
    latency: &[SecondLatency],
) -> Result<(), Error> {
    draw(path, title, samples, latency).map_err(|e| Error::Io {
        what: format!("drawing {}", path.display()),
        source: std::io::Error::other(e.to_string()),
    })
}

fn draw(path: &Path, title: &str, samples: &[Sample], latency: &[SecondLatency]) -> Drawn {
    let height = MEMORY_HEIGHT
        + if latency.is_empty() {
            0
        } else {
            LATENCY_HEIGHT
        };
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let end = samples
        .iter()
        .map(|s| s.t)
        .chain(latency.iter().map(|s| s.second as f64 + 1.0))
        .fold(1.0, f64::max);
    if latency.is_empty() {
        memory(&root, title, samples, end)?;
    } else {
        let (top, bottom) = root.split_vertically(MEMORY_HEIGHT);
        memory(&top, title, samples, end)?;
        latencies(&bottom, latency, end)?;
    }
    root.present()?;
    Ok(())
}

/// Memory (left axis, MiB) and subscribers streaming (right axis) over time.
fn memory(area: &Plot, title: &str, samples: &[Sample], end: f64) -> Drawn {
    let top_mib = samples
        .iter()
        .map(|s| s.rss.max(s.mem_used) as f64 / MIB)
        .fold(1.0, f64::max)
        * HEADROOM;
    let top_conns = samples
        .iter()
        .map(|s| s.connections as f64)
        .fold(1.0, f64::max)
        * HEADROOM;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .right_y_label_area_size(80)
        .build_cartesian_2d(0.0..end, 0.0..top_mib)?
        .set_secondary_coord(0.0..end, 0.0..top_conns);
    chart
        .configure_mesh()
        .x_desc("seconds since the run started")
        .y_desc("memory (MiB)")
        .y_label_formatter(&|mib| format!("{mib:.0}"))
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("subscribers streaming")
        .y_label_formatter(&|count| format!("{count:.0}"))
        .draw()?;
    let lines: [Line<Sample>; 2] = [
        ("server RSS, all processes (MiB, left)", RED, |s| {
            s.rss as f64 / MIB
        }),
        (
            "machine memory in use, MemTotal - MemAvailable (MiB, left)",
            DARK_GREEN,
            |s| s.mem_used as f64 / MIB,
        ),
    ];
    for (label, color, value) in lines {
        chart
            .draw_series(LineSeries::new(
                samples.iter().map(|s| (s.t, value(s))),
                color,
            ))?
            .label(label)
            .legend(mark(color));
    }
    chart
        .draw_secondary_series(LineSeries::new(
            samples.iter().map(|s| (s.t, s.connections as f64)),
            BLUE,
        ))?
        .label("subscribers streaming (right)")
        .legend(mark(BLUE));
    legend(chart.configure_series_labels())
}

/// Publish-to-delivery latency by the second of sending (drawn at its middle), on a
/// logarithmic axis.
fn latencies(area: &Plot, latency: &[SecondLatency], end: f64) -> Drawn {
    let top = latency
        .iter()
        .map(|s| s.max_ms)
        .fold(LATENCY_FLOOR_MS * 10.0, f64::max)
        * 3.0;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "delivery latency of the events sent in each second",
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .right_y_label_area_size(80)
        .build_cartesian_2d(0.0..end, (LATENCY_FLOOR_MS..top).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("seconds since the run started")
        .y_desc("latency (ms)")
        .draw()?;
    let lines: [Line<SecondLatency>; 3] = [
        ("p50", DARK_GREEN, |s| s.p50_ms),
        ("p99", RED, |s| s.p99_ms),
        ("max", BLACK, |s| s.max_ms),
    ];
    for (label, color, value) in lines {
        let points = latency
            .iter()
            .map(|s| (s.second as f64 + 0.5, value(s).max(LATENCY_FLOOR_MS)));
        chart
            .draw_series(LineSeries::new(points, color))?
            .label(label)
            .legend(mark(color));
    }
    legend(chart.configure_series_labels())
}

/// Draws the legend in the upper left corner, on white.
fn legend<'a, CT: CoordTranslate>(
    mut labels: SeriesLabelStyle<'a, '_, SVGBackend<'a>, CT>,
) -> Drawn {
    labels
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// The legend's mark for a line of `color`.
fn mark(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color)
}

#[cfg(test)]
mod tests {
    use super::write;
    use crate::latency::SecondLatency;
    use crate::sampler::Sample;

    #[test]
    fn draws_memory_connections_and_latency() {
        let samples: Vec<Sample> = (0..40u32)
            .map(|i| Sample {
                t: f64::from(i) * 0.25,
                connections: 100 * u64::from(i),
                rss: (10 + u64::from(i)) << 20,
                mem_used: (500 + u64::from(i)) << 20,
                ..Sample::default()
            })
            .collect();
        let latency = [
            SecondLatency {
                second: 2,
                count: 10,
                p50_ms: 0.0,
                p99_ms: 2.0,
                max_ms: 3.0,
            },
            SecondLatency {
                second: 3,
                count: 10,
                p50_ms: 1.0,
                p99_ms: 4.0,
                max_ms: 9.0,
            },
        ];
        let dir = std::env::temp_dir();
        let id = std::process::id();
        for (name, latency) in [("memory", &latency[..0]), ("both", &latency[..])] {
            let path = dir.join(format!("ssecast-loadtest-{id}-{name}.svg"));
            write(&path, "test: server", &samples, latency).unwrap();
            let svg = std::fs::read_to_string(&path).unwrap();
            let _ = std::fs::remove_file(&path);
            assert!(svg.contains("server RSS, all processes"), "{name}");
            assert!(svg.contains("machine memory in use"), "{name}");
            assert!(svg.contains("subscribers streaming"), "{name}");
            assert_eq!(svg.contains("delivery latency"), !latency.is_empty());
        }
    }
}
