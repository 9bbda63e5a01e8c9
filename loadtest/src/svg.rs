//! The `--svg` chart: server RSS (left axis, MiB) and streaming connections (right axis) over
//! time, drawn with plotters' SVG backend and line series only, so no font library is needed.

use std::path::Path;

use plotters::prelude::*;

use crate::error::Error;
use crate::sampler::Sample;

/// Draws `samples` into an SVG file at `path`.
pub fn write(path: &Path, title: &str, samples: &[Sample]) -> Result<(), Error> {
    draw(path, title, samples).map_err(|e| Error::Io {
        what: format!("drawing {}", path.display()),
        source: std::io::Error::other(e.to_string()),
    })
}

fn draw(path: &Path, title: &str, samples: &[Sample]) -> Result<(), Box<dyn std::error::Error>> {
    const MIB: f64 = 1024.0 * 1024.0;
    let root = SVGBackend::new(path, (960, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let end = samples.last().map_or(1.0, |s| s.t).max(1.0);
    let top_rss = samples
        .iter()
        .map(|s| s.rss as f64 / MIB)
        .fold(1.0, f64::max)
        * 1.1;
    let top_conns = samples
        .iter()
        .map(|s| s.connections as f64)
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .right_y_label_area_size(70)
        .build_cartesian_2d(0.0..end, 0.0..top_rss)?
        .set_secondary_coord(0.0..end, 0.0..top_conns);
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("server RSS (MiB)")
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("connections")
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            samples.iter().map(|s| (s.t, s.rss as f64 / MIB)),
            &RED,
        ))?
        .label("server RSS (MiB)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .draw_secondary_series(LineSeries::new(
            samples.iter().map(|s| (s.t, s.connections as f64)),
            &BLUE,
        ))?
        .label("connections")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
