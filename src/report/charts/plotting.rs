//! The drawing helpers every chart shares: the font, the strategy colours, legends,
//! linear panels and lines from percentile spectra. Knows no particular chart and
//! imports nothing of the chart registry.

use super::chart::DrawResult;
use crate::metric::Metric;
use crate::report::hgrm::SpectrumPoint;
use crate::report::saved::SavedRun;
use plotters::prelude::*;
use std::sync::Once;

/// The font every chart uses, registered from the bundled DejaVu Sans so that no
/// system font library is needed.
const FONT: &str = "sans-serif";

/// Registers [`FONT`] once per process, before the first chart is drawn.
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font shipped by the `dejavu` crate.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(120, 120, 120),
    RGBColor(0, 0, 0),
];

/// The colour of strategy `i`, the same in every chart.
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

pub fn caption(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().style(FontStyle::Bold).into()
}

pub fn label_font() -> TextStyle<'static> {
    (FONT, 15).into()
}

/// Legend in a framed box, for a chart whose series carry labels.
pub fn draw_legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(position)
        .label_font(label_font())
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}

/// One strategy's line in a chart: its colour index, label and points.
pub struct Line<'a> {
    pub index: usize,
    pub label: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// A line per strategy that has samples of `metric`, each point mapped by `point`
/// (`None` leaves it out).
pub fn spectrum_lines<'a>(
    run: &'a SavedRun,
    metric: Metric,
    point: impl Fn(&SpectrumPoint) -> Option<(f64, f64)>,
) -> Vec<Line<'a>> {
    run.strategies
        .iter()
        .enumerate()
        .filter_map(|(index, s)| {
            let points = s.spectra.get(&metric)?.iter().filter_map(&point).collect();
            Some(Line {
                index,
                label: s.label(),
                points,
            })
        })
        .collect()
}

/// The largest coordinate (by `axis`) over all lines, at least `floor`.
pub fn max_of(lines: &[Line], axis: fn(&(f64, f64)) -> f64, floor: f64) -> f64 {
    lines
        .iter()
        .flat_map(|l| l.points.iter().map(axis))
        .fold(floor, f64::max)
}

/// Draws each line in its strategy's colour, with a legend entry.
pub fn draw_lines<
    'a,
    DB: DrawingBackend + 'a,
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
>(
    chart: &mut ChartContext<'a, DB, CT>,
    lines: Vec<Line>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    for line in lines {
        chart
            .draw_series(LineSeries::new(
                line.points,
                color(line.index).stroke_width(3),
            ))?
            .label(line.label)
            .legend(legend_line(color(line.index)));
    }
    Ok(())
}

/// The axes of a linear panel.
pub struct Axes<'a> {
    pub x: std::ops::Range<f64>,
    pub y: std::ops::Range<f64>,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    /// How the axes' labels read.
    pub x_label: fn(&f64) -> String,
    pub y_label: fn(&f64) -> String,
}

pub type LinearChart<'a, DB> = ChartContext<
    'a,
    DB,
    plotters::coord::cartesian::Cartesian2d<
        plotters::coord::types::RangedCoordf64,
        plotters::coord::types::RangedCoordf64,
    >,
>;

/// A linear panel with its caption and labelled axes drawn, ready for series.
pub fn linear_panel<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    axes: Axes,
) -> Result<LinearChart<'a, DB>, Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .caption(title, caption(18))
        .margin(14)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(axes.x, axes.y)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_label_formatter(&axes.x_label)
        .y_label_formatter(&axes.y_label)
        .x_desc(axes.x_desc)
        .y_desc(axes.y_desc)
        .axis_desc_style(label_font())
        .label_style(label_font())
        .draw()?;
    Ok(chart)
}

/// An axis number without needless decimals: "140", "2.5", "0.05".
pub fn axis_number(v: &f64) -> String {
    let v = *v;
    if v == v.round() {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A short horizontal line, the legend mark of a line series.
pub fn legend_line(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(3))
}
