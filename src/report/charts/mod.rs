//! Charts drawn with plotters from a saved run, each written as SVG (for the HTML
//! report) and PNG (for Markdown and documents). Adding a chart means one file with a
//! `draw` function plus a variant and match arms in [`ChartKind`].

mod cdf;
mod spectrum;
mod sweep;
mod timeline;
mod tradeoff;

use super::saved::SavedRun;
use anyhow::Context;
use plotters::prelude::*;
use std::path::PathBuf;
use std::sync::Once;

/// Folder of the charts inside a results folder.
pub const DIR: &str = "charts";
/// The font every chart uses, registered from the bundled DejaVu Sans so that no
/// system font library is needed.
const FONT: &str = "sans-serif";

pub type DrawResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    SpectrumE2e,
    SpectrumTtft,
    LatencyCdf,
    Timeline,
    Tradeoff,
    Sweep,
}

impl ChartKind {
    pub const ALL: [ChartKind; 6] = [
        ChartKind::SpectrumE2e,
        ChartKind::SpectrumTtft,
        ChartKind::LatencyCdf,
        ChartKind::Timeline,
        ChartKind::Tradeoff,
        ChartKind::Sweep,
    ];

    pub fn file_stem(self) -> &'static str {
        match self {
            ChartKind::SpectrumE2e => "latency-spectrum-e2e",
            ChartKind::SpectrumTtft => "latency-spectrum-ttft",
            ChartKind::LatencyCdf => "latency-cdf",
            ChartKind::Timeline => "timeline",
            ChartKind::Tradeoff => "throughput-vs-p99",
            ChartKind::Sweep => "concurrency-sweep",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ChartKind::SpectrumE2e => "End-to-end latency by percentile",
            ChartKind::SpectrumTtft => "Time to first token by percentile",
            ChartKind::LatencyCdf => "Latency distributions",
            ChartKind::Timeline => "Timeline per strategy",
            ChartKind::Tradeoff => "Throughput against p99 latency",
            ChartKind::Sweep => "Throughput and latency by concurrency limit",
        }
    }

    /// Whether the run has the data this chart shows (no TTFT without streaming).
    fn applies(self, run: &SavedRun) -> bool {
        let has = |metric: &str| {
            run.strategies
                .iter()
                .any(|s| s.spectra.contains_key(metric))
        };
        match self {
            ChartKind::SpectrumE2e | ChartKind::LatencyCdf | ChartKind::Tradeoff => has("e2e"),
            ChartKind::SpectrumTtft => has("ttft"),
            ChartKind::Timeline => !run.strategies.is_empty(),
            ChartKind::Sweep => !sweep::sweeps(run).is_empty(),
        }
    }

    fn size(self, run: &SavedRun) -> (u32, u32) {
        match self {
            ChartKind::SpectrumE2e | ChartKind::SpectrumTtft => (1000, 560),
            ChartKind::LatencyCdf => (1500, 480),
            ChartKind::Timeline => (1400, 40 + 260 * run.strategies.len() as u32),
            ChartKind::Tradeoff | ChartKind::Sweep => (1400, 520),
        }
    }

    fn draw<DB: DrawingBackend>(
        self,
        run: &SavedRun,
        area: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        match self {
            ChartKind::SpectrumE2e => {
                spectrum::draw(run, area, "e2e", "End-to-end latency (sent → last byte)")
            }
            ChartKind::SpectrumTtft => spectrum::draw(run, area, "ttft", "Time to first token"),
            ChartKind::LatencyCdf => cdf::draw(run, area),
            ChartKind::Timeline => timeline::draw(run, area),
            ChartKind::Tradeoff => tradeoff::draw(run, area),
            ChartKind::Sweep => sweep::draw(run, area),
        }
    }
}

/// A chart written to disk.
pub struct ChartFile {
    pub kind: ChartKind,
    pub svg: PathBuf,
    pub png: PathBuf,
}

/// Draws every chart that applies to `run` into `<run>/charts/`.
pub fn render_all(run: &SavedRun) -> anyhow::Result<Vec<ChartFile>> {
    register_font();
    let dir = run.dir.join(DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    ChartKind::ALL
        .into_iter()
        .filter(|kind| kind.applies(run))
        .map(|kind| {
            let file = ChartFile {
                kind,
                svg: dir.join(format!("{}.svg", kind.file_stem())),
                png: dir.join(format!("{}.png", kind.file_stem())),
            };
            let failed = |e: Box<dyn std::error::Error>| {
                anyhow::anyhow!("cannot draw {}: {e}", kind.file_stem())
            };
            let size = kind.size(run);
            draw_on(
                SVGBackend::new(&file.svg, size).into_drawing_area(),
                kind,
                run,
            )
            .map_err(failed)?;
            draw_on(
                BitMapBackend::new(&file.png, size).into_drawing_area(),
                kind,
                run,
            )
            .map_err(failed)?;
            Ok(file)
        })
        .collect()
}

fn draw_on<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    kind: ChartKind,
    run: &SavedRun,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    kind.draw(run, &root)?;
    root.present()?;
    Ok(())
}

fn register_font() {
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
fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn caption(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().style(FontStyle::Bold).into()
}

fn label_font() -> TextStyle<'static> {
    (FONT, 15).into()
}

/// Legend in a framed box, for a chart whose series carry labels.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
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
struct Line<'a> {
    index: usize,
    label: &'a str,
    points: Vec<(f64, f64)>,
}

/// A line per strategy that has samples of `metric`, each point mapped by `point`
/// (`None` leaves it out).
fn spectrum_lines<'a>(
    run: &'a SavedRun,
    metric: &str,
    point: impl Fn(&super::hgrm::SpectrumPoint) -> Option<(f64, f64)>,
) -> Vec<Line<'a>> {
    run.strategies
        .iter()
        .enumerate()
        .filter_map(|(index, s)| {
            let points = s.spectra.get(metric)?.iter().filter_map(&point).collect();
            Some(Line {
                index,
                label: s.label(),
                points,
            })
        })
        .collect()
}

/// The largest coordinate (by `axis`) over all lines, at least `floor`.
fn max_of(lines: &[Line], axis: fn(&(f64, f64)) -> f64, floor: f64) -> f64 {
    lines
        .iter()
        .flat_map(|l| l.points.iter().map(axis))
        .fold(floor, f64::max)
}

/// Draws each line in its strategy's colour, with a legend entry.
fn draw_lines<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate<From = (f64, f64)>>(
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
struct Axes<'a> {
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    x_desc: &'a str,
    y_desc: &'a str,
    /// How the axes' labels read.
    x_label: fn(&f64) -> String,
    y_label: fn(&f64) -> String,
}

type LinearChart<'a, DB> = ChartContext<
    'a,
    DB,
    plotters::coord::cartesian::Cartesian2d<
        plotters::coord::types::RangedCoordf64,
        plotters::coord::types::RangedCoordf64,
    >,
>;

/// A linear panel with its caption and labelled axes drawn, ready for series.
fn linear_panel<'a, DB: DrawingBackend + 'a>(
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
fn axis_number(v: &f64) -> String {
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
fn legend_line(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(3))
}
