//! PNG plots for the examples (plotters' bitmap backend). Text needs a TrueType font: the
//! first of a few usual system fonts that exists is used; without one, plots have no labels.

#![allow(dead_code)] // each example uses part of it

use plotters::prelude::*;
use plotters::style::FontStyle;

/// Registers a system sans-serif font for plotters; false when none was found.
pub fn font() -> bool {
    const CANDIDATES: [&str; 5] = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/Library/Fonts/Arial Unicode.ttf",
        "C:\\Windows\\Fonts\\arial.ttf",
    ];
    for path in CANDIDATES {
        if let Ok(bytes) = std::fs::read(path) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// One line chart in `area`: `(x, y)` points, a title and axis names.
pub fn line_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    text: bool,
    title: &str,
    x_name: &str,
    points: &[(f64, f64)],
    color: RGBColor,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (x0, x1) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    let mut builder = ChartBuilder::on(area);
    builder.margin(12);
    if text {
        builder
            .caption(title, ("sans-serif", 22))
            .x_label_area_size(36)
            .y_label_area_size(56);
    }
    let mut chart = builder.build_cartesian_2d(x0..x1.max(x0 + 1e-9), (y0 - pad)..(y1 + pad))?;
    if text {
        chart
            .configure_mesh()
            .x_desc(x_name)
            .label_style(("sans-serif", 14))
            .draw()?;
    }
    chart.draw_series(LineSeries::new(
        points.iter().copied(),
        color.stroke_width(2),
    ))?;
    Ok(())
}

/// A heat map of `rows` (row 0 at the top) with a blue–white–red scale.
pub fn heat_map<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    text: bool,
    title: &str,
    (x_name, x_range): (&str, (f64, f64)),
    (y_name, y_range): (&str, (f64, f64)),
    grid: &[Vec<f32>],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (rows, cols) = (grid.len(), grid.first().map_or(0, Vec::len));
    let lim = grid.iter().flatten().fold(1e-9f32, |m, v| m.max(v.abs())) as f64;
    let mut builder = ChartBuilder::on(area);
    builder.margin(12);
    if text {
        builder
            .caption(title, ("sans-serif", 22))
            .x_label_area_size(36)
            .y_label_area_size(48);
    }
    let mut chart = builder.build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)?;
    if text {
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(x_name)
            .y_desc(y_name)
            .label_style(("sans-serif", 14))
            .draw()?;
    }
    let (dx, dy) = (
        (x_range.1 - x_range.0) / cols as f64,
        (y_range.1 - y_range.0) / rows as f64,
    );
    chart.draw_series((0..rows).flat_map(|r| {
        (0..cols).map(move |c| {
            let v = grid[r][c] as f64 / lim;
            let (x, y) = (x_range.0 + c as f64 * dx, y_range.1 - (r + 1) as f64 * dy);
            Rectangle::new([(x, y), (x + dx, y + dy)], diverging(v).filled())
        })
    }))?;
    Ok(())
}

/// Blue (−1) through white (0) to red (+1).
fn diverging(v: f64) -> RGBColor {
    let v = v.clamp(-1.0, 1.0);
    let fade = |t: f64| (255.0 * (1.0 - t)) as u8;
    if v >= 0.0 {
        RGBColor(255, fade(v * 0.85), fade(v * 0.85))
    } else {
        RGBColor(fade(-v * 0.85), fade(-v * 0.85), 255)
    }
}
