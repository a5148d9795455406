//! A capacity search's margins: each objective's headroom (relative to its limit) at
//! every point probed, against the searched dimension, with the zero line (the limit)
//! and the boundary found marked. Where a line crosses zero, that objective breaks.
//!
//! One chart, drawn from the saved run alone: it imports only the [`Chart`] trait, the
//! shared plotting helpers and the saved data, and writes no file itself.

use super::chart::{Chart, DrawResult};
use super::plotting::{Axes, axis_number, color, draw_legend, legend_line, linear_panel};
use crate::report::saved::SavedRun;
use crate::search::CapacityAnswer;
use plotters::coord::Shift;
use plotters::prelude::*;

/// `capacity-margins`.
pub struct CapacityMargins;

impl Chart for CapacityMargins {
    fn file_stem(&self) -> &'static str {
        "capacity-margins"
    }

    fn title(&self) -> &'static str {
        "SLO margins by load, boundary marked"
    }

    fn applies(&self, run: &SavedRun) -> bool {
        run.summary
            .capacity
            .as_ref()
            .is_some_and(|a| a.probes.iter().any(|p| !p.interrupted))
    }

    fn size(&self, _: &SavedRun) -> (u32, u32) {
        (1100, 560)
    }

    fn draw<DB: DrawingBackend>(&self, run: &SavedRun, area: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        match &run.summary.capacity {
            Some(answer) => draw(answer, area),
            None => Ok(()),
        }
    }
}

/// Margins are drawn in percent, clipped to this band: past saturation they explode.
const CLIP: f64 = 100.0;

fn draw<DB: DrawingBackend>(a: &CapacityAnswer, area: &DrawingArea<DB, Shift>) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let probes: Vec<_> = a.probes.iter().filter(|p| !p.interrupted).collect();
    let x_max = probes.iter().map(|p| p.point).fold(1.0, f64::max) * 1.08;
    let x_desc = format!("{} ({})", a.dimension, a.unit);
    let axes = Axes {
        x: 0.0..x_max,
        y: -CLIP..CLIP,
        x_desc: &x_desc,
        x_label: axis_number,
        y_desc: "margin to the limit (%) — above 0 meets it",
        y_label: axis_number,
    };
    let mut chart = linear_panel(area, "Each objective's margin by load", axes)?;
    let objectives: Vec<String> = probes
        .first()
        .map(|p| p.objectives.iter().map(|o| o.objective.clone()).collect())
        .unwrap_or_default();
    for (i, name) in objectives.iter().enumerate() {
        let mut points: Vec<(f64, f64)> = probes
            .iter()
            .filter_map(|p| {
                let o = p.objectives.iter().find(|o| &o.objective == name)?;
                Some((p.point, (o.margin * 100.0).clamp(-CLIP, CLIP)))
            })
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let style = color(i);
        chart
            .draw_series(LineSeries::new(points.clone(), style.stroke_width(2)))?
            .label(name.clone())
            .legend(legend_line(style));
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 5, style.filled())),
        )?;
    }
    chart.draw_series(LineSeries::new(
        [(0.0, 0.0), (x_max, 0.0)],
        BLACK.stroke_width(1),
    ))?;
    let marks = [
        (a.highest_passing, GREEN.stroke_width(2), "highest passing"),
        (a.lowest_failing, RED.stroke_width(2), "lowest failing"),
    ];
    for (at, style, name) in marks {
        if let Some(x) = at {
            chart
                .draw_series(LineSeries::new([(x, -CLIP), (x, CLIP)], style))?
                .label(format!("{name}: {}", axis_number(&x)))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], style));
        }
    }
    draw_legend(&mut chart, SeriesLabelPosition::LowerLeft)
}
