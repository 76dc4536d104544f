//! The PNG charts, drawn with `plotters` (bitmap backend, fonts rendered by `ab_glyph` from a
//! TTF read at run time, so no fontconfig or freetype is needed): per-operation costs,
//! read-side throughput vs cores, the mixed workload at each exclusive share, and the update
//! side's latencies.

use super::data::{Data, Rec};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Where the font comes from (Debian's `fonts-dejavu-core`; `QRUN_FONT` overrides it).
pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

const FAMILY: &str = "sans-serif";
type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("drawing a chart: {e:?}")
}

/// One colour per primitive, the same in every chart (Tableau's ten).
fn color(op: &str) -> RGBColor {
    match op {
        "rcu" => RGBColor(44, 160, 44),
        "percpu_rwsem" => RGBColor(31, 119, 180),
        "percpu_ref" => RGBColor(148, 103, 189),
        "rwsem" => RGBColor(255, 127, 14),
        "spin_rwlock" => RGBColor(140, 86, 75),
        "spin_mutex" => RGBColor(214, 39, 40),
        "shared_atomic" => RGBColor(127, 127, 127),
        _ => RGBColor(23, 190, 207),
    }
}

fn register_font() -> Result<(), String> {
    let path = std::env::var("QRUN_FONT").unwrap_or_else(|_| FONT.into());
    let bytes = std::fs::read(&path)
        .map_err(|e| format!("cannot read the chart font {path}: {e} (scripts/setup.sh installs fonts-dejavu-core)"))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FAMILY, FontStyle::Normal, bytes)
        .map_err(|_| format!("{path} is not a usable TTF font"))
}

/// Draws every chart the data allows into `dir`; returns the files written.
pub fn draw_all(d: &Data, dir: &Path) -> Result<Vec<PathBuf>, String> {
    register_font()?;
    let mut out = Vec::new();
    let mut one = |name: &str, draw: &dyn Fn(&Area<'_>, &Data) -> Result<bool, String>| -> Result<(), String> {
        let path = dir.join(name);
        let drawn = {
            let root = BitMapBackend::new(&path, (1200, 720)).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            let drawn = draw(&root, d)?;
            root.present().map_err(err)?;
            drawn
        };
        if drawn {
            out.push(path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
        Ok(())
    };
    one("costs.png", &costs)?;
    one("scaling.png", &scaling)?;
    one("mixed.png", &mixed)?;
    one("sync_rcu.png", &update)?;
    one("gp.png", &grace_periods)?;
    Ok(out)
}

/// x position of a core count: log2, so 1, 2, 4, 8 are evenly spaced.
fn xpos(cores: f64) -> f64 {
    cores.max(1.0).log2()
}

/// Labels the log2 axis with core counts (only at whole powers of two).
fn core_label(x: &f64) -> String {
    let r = x.round();
    if (x - r).abs() < 1e-6 && r >= 0.0 {
        format!("{}", 1u32 << (r as u32))
    } else {
        String::new()
    }
}

/// A number in few characters: 0.25, 2.5, 25, 2500.
fn short(v: f64) -> String {
    let a = v.abs();
    let s = if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A microsecond axis label: `250 µs`, `2.5 ms`.
fn micros(v: &f64) -> String {
    if *v >= 1000.0 {
        format!("{} ms", short(v / 1000.0))
    } else {
        format!("{} µs", short(*v))
    }
}

/// Host core count as the records state it (0: unknown): the lowest core count marked sliced,
/// minus one.
fn host_cores(recs: &[&Rec]) -> Option<f64> {
    recs.iter()
        .filter(|r| r.yes("sliced"))
        .filter_map(|r| r.num("cores"))
        .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.min(c))))
}

/// Shades the part of a core axis where vCPUs outnumber host cores, with a note.
fn shade_sliced<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    first_sliced: Option<f64>,
    y: (f64, f64),
    note: &str,
) -> Result<(), String> {
    let Some(c) = first_sliced else { return Ok(()) };
    let x0 = xpos(c) - 0.5;
    let x1 = chart.x_range().end;
    chart
        .draw_series(std::iter::once(Rectangle::new([(x0, y.0), (x1, y.1)], RGBColor(235, 235, 235).filled())))
        .map_err(err)?;
    chart
        .draw_series(std::iter::once(Text::new(
            note.to_string(),
            (x0 + 0.05, y.1),
            (FAMILY, 15).into_font().color(&RGBColor(90, 90, 90)),
        )))
        .map_err(err)?;
    Ok(())
}

/// A legend entry: label, colour, dashed.
type Entry = (String, RGBColor, bool);

/// Draws a legend as rows of entries across `area` (kept out of the plots, so it hides no data).
fn legend_strip(area: &Area<'_>, items: &[Entry]) -> Result<(), String> {
    let w = area.dim_in_pixel().0 as i32;
    let font: TextStyle<'_> = (FAMILY, 15).into();
    let (mut x, mut y) = (60i32, 8i32);
    for (label, c, dashed) in items {
        let tw = area.estimate_text_size(label, &font).map_err(err)?.0 as i32 + 60;
        if x + tw > w && x > 60 {
            x = 60;
            y += 24;
        }
        let line = |a: i32, b: i32| PathElement::new(vec![(x + a, y + 9), (x + b, y + 9)], c.stroke_width(3));
        if *dashed {
            area.draw(&line(0, 10)).map_err(err)?;
            area.draw(&line(16, 26)).map_err(err)?;
        } else {
            area.draw(&line(0, 26)).map_err(err)?;
        }
        area.draw(&Text::new(label.clone(), (x + 34, y), font.clone())).map_err(err)?;
        x += tw;
    }
    Ok(())
}

fn costs(root: &Area<'_>, d: &Data) -> Result<bool, String> {
    let ops = d.distinct("cost", "op");
    if ops.is_empty() {
        return Ok(false);
    }
    let root = root.titled("Per-operation cost, one core (other cores idle)", (FAMILY, 26)).map_err(err)?;
    let (labels, bars) = root.split_horizontally(430);
    let halves = bars.split_evenly((1, 2));
    let n = ops.len() as f64;
    let mut rows_px: Vec<(String, i32)> = Vec::new();
    for (h, (mode, unit)) in
        halves.iter().zip([("icount", "instructions (icount, exact)"), ("mttcg", "ns (mttcg, real time)")])
    {
        let vals: Vec<(usize, f64)> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| d.find("cost", mode, "op", op).and_then(|r| r.num("value")).map(|v| (i, v)))
            .collect();
        let max = vals.iter().map(|v| v.1).fold(1.0, f64::max) * 1.2;
        let mut chart = ChartBuilder::on(h)
            .margin(12)
            .x_label_area_size(40)
            .caption(unit, (FAMILY, 18))
            .build_cartesian_2d(0f64..max, 0f64..n)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_labels(6)
            .x_label_formatter(&|v| short(*v))
            .light_line_style(WHITE)
            .label_style((FAMILY, 14))
            .draw()
            .map_err(err)?;
        let y = |i: usize| n - 1.0 - i as f64;
        chart
            .draw_series(vals.iter().map(|&(i, v)| {
                let c = d.find("cost", mode, "op", &ops[i]).map_or("", |r| r.s("group"));
                let fill = match c {
                    "read" => RGBColor(31, 119, 180),
                    "qs" => RGBColor(44, 160, 44),
                    _ => RGBColor(150, 150, 150),
                };
                Rectangle::new([(0.0, y(i) + 0.15), (v, y(i) + 0.85)], fill.filled())
            }))
            .map_err(err)?;
        chart
            .draw_series(vals.iter().map(|&(i, v)| Text::new(short(v), (v + max * 0.01, y(i) + 0.7), (FAMILY, 13))))
            .map_err(err)?;
        if rows_px.is_empty() {
            for (i, op) in ops.iter().enumerate() {
                let label = d.find("cost", "", "op", op).map_or(op.as_str(), |r| r.s("label"));
                rows_px.push((label.to_string(), chart.backend_coord(&(0.0, y(i) + 0.5)).1));
            }
        }
    }
    let top = labels.get_base_pixel().1;
    for (label, py) in rows_px {
        labels.draw(&Text::new(label, (8, py - top - 8), (FAMILY, 15))).map_err(err)?;
    }
    Ok(true)
}

fn scaling(root: &Area<'_>, d: &Data) -> Result<bool, String> {
    let recs: Vec<&Rec> = d.of("scale", "mttcg").collect();
    if recs.is_empty() {
        return Ok(false);
    }
    let vals: Vec<f64> = recs.iter().filter_map(|r| r.num("ops_per_s")).map(|v| v / 1e6).collect();
    let (lo, hi) =
        (vals.iter().copied().fold(f64::MAX, f64::min) / 2.0, vals.iter().copied().fold(0.0, f64::max) * 2.5);
    let root = root.titled("Read-side throughput vs cores (mttcg, real time)", (FAMILY, 26)).map_err(err)?;
    let (plot, strip) = root.split_vertically(root.dim_in_pixel().1 - 60);
    let mut legend: Vec<Entry> = Vec::new();
    let mut chart = ChartBuilder::on(&plot)
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.25f64..3.25f64, (lo.max(0.01)..hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(14)
        .x_label_formatter(&core_label)
        .x_desc("cores")
        .y_desc("million operations per second, all cores (log scale)")
        .y_label_formatter(&|v| short(*v))
        .light_line_style(WHITE)
        .label_style((FAMILY, 15))
        .draw()
        .map_err(err)?;
    let host = host_cores(&recs);
    shade_sliced(&mut chart, host, (lo.max(0.01), hi), "vCPUs > host cores: time-sliced by the host")?;
    for op in d.distinct("scale", "op") {
        let pts: Vec<(f64, f64)> = recs
            .iter()
            .filter(|r| r.s("op") == op)
            .filter_map(|r| Some((xpos(r.num("cores")?), r.num("ops_per_s")? / 1e6)))
            .collect();
        let c = color(&op);
        let label = recs.iter().find(|r| r.s("op") == op).map_or(op.as_str(), |r| r.s("label")).to_string();
        chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(3))).map_err(err)?;
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 5, c.filled()))).map_err(err)?;
        legend.push((label, c, false));
    }
    legend_strip(&strip, &legend)?;
    Ok(true)
}

fn mixed(root: &Area<'_>, d: &Data) -> Result<bool, String> {
    let recs: Vec<&Rec> = d.of("mixed", "mttcg").collect();
    if recs.is_empty() {
        return Ok(false);
    }
    let root = root
        .titled("Seed 004's mixed workload: throughput vs cores at each exclusive share (mttcg)", (FAMILY, 24))
        .map_err(err)?;
    let shares = d.distinct("mixed", "share_permille");
    let host = host_cores(&recs);
    let (plots, strip) = root.split_vertically(root.dim_in_pixel().1 - 34);
    let mut legend: Vec<Entry> = Vec::new();
    for (panel, share) in plots.split_evenly((2, 2)).iter().zip(&shares) {
        let here: Vec<&&Rec> = recs.iter().filter(|r| r.s("share_permille") == share).collect();
        let hi = here.iter().filter_map(|r| r.num("ops_per_s")).fold(1.0, f64::max) / 1e3 * 1.15;
        let pct = share.parse::<f64>().unwrap_or(0.0) / 10.0;
        let mut chart = ChartBuilder::on(panel)
            .margin(12)
            .caption(format!("{pct}% exclusive"), (FAMILY, 19))
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.25f64..3.25f64, 0f64..hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(14)
            .x_label_formatter(&core_label)
            .x_desc("cores")
            .y_desc("thousand ops/s")
            .y_label_formatter(&|v| short(*v))
            .light_line_style(WHITE)
            .label_style((FAMILY, 13))
            .draw()
            .map_err(err)?;
        shade_sliced(&mut chart, host, (0.0, hi), "time-sliced")?;
        for op in d.distinct("mixed", "op") {
            let pts: Vec<(f64, f64)> = here
                .iter()
                .filter(|r| r.s("op") == op)
                .filter_map(|r| Some((xpos(r.num("cores")?), r.num("ops_per_s")? / 1e3)))
                .collect();
            let c = color(&op);
            let label = here.iter().find(|r| r.s("op") == op).map_or(op.as_str(), |r| r.s("label")).to_string();
            chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(3))).map_err(err)?;
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled()))).map_err(err)?;
            if !legend.iter().any(|e| e.0 == label) {
                legend.push((label, c, false));
            }
        }
    }
    legend_strip(&strip, &legend)?;
    Ok(true)
}

/// One latency panel: median (solid) and p99 (dashed) per operation, vs cores (busy + 1).
fn latency_panel(
    area: &Area<'_>,
    title: &str,
    series: &[(&str, &str, &str, RGBColor)],
    recs: &[&Rec],
    legend: &mut Vec<Entry>,
) -> Result<(), String> {
    let pick = |op: &str, label: &str| -> Vec<&Rec> {
        recs.iter().copied().filter(|r| r.s("op") == op && r.s("label").starts_with(label)).collect()
    };
    let all: Vec<f64> = series
        .iter()
        .flat_map(|(op, label, _, _)| pick(op, label))
        .flat_map(|r| [r.num("median_ns"), r.num("p99_ns")])
        .flatten()
        .map(|v| v / 1e3)
        .collect();
    if all.is_empty() {
        return Ok(());
    }
    let lo = all.iter().copied().fold(f64::MAX, f64::min).max(0.01) / 2.0;
    // Only the core counts measured (the update side boots on as many vCPUs as host cores).
    let xmax = recs.iter().filter_map(|r| r.num("busy")).map(|b| xpos(b + 1.0)).fold(1.0, f64::max) + 0.25;
    let hi = all.iter().copied().fold(0.0, f64::max) * 3.0;
    let mut chart = ChartBuilder::on(area)
        .margin(14)
        .caption(title, (FAMILY, 19))
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.25f64..xmax, (lo..hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(14)
        .x_label_formatter(&core_label)
        .x_desc("cores: core 0 measures, the others loop short read sections (1: the others idle)")
        .y_desc("latency (log scale)")
        .y_label_formatter(&micros)
        .light_line_style(WHITE)
        .label_style((FAMILY, 13))
        .draw()
        .map_err(err)?;
    let sliced: Vec<&Rec> = recs.to_vec();
    let first_sliced = sliced
        .iter()
        .filter(|r| r.yes("sliced"))
        .filter_map(|r| r.num("busy"))
        .map(|b| b + 1.0)
        .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.min(c))));
    shade_sliced(&mut chart, first_sliced, (lo, hi), "time-sliced")?;
    for &(op, label, short, c) in series {
        let rows = pick(op, label);
        for (key, dashed) in [("median_ns", false), ("p99_ns", true)] {
            let pts: Vec<(f64, f64)> =
                rows.iter().filter_map(|r| Some((xpos(r.num("busy")? + 1.0), r.num(key)? / 1e3))).collect();
            if pts.is_empty() {
                continue;
            }
            let name = format!("{short}, {}", if dashed { "99th percentile" } else { "median" });
            if dashed {
                chart.draw_series(DashedLineSeries::new(pts.clone(), 8, 6, c.stroke_width(2))).map_err(err)?;
            } else {
                chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(3))).map_err(err)?;
            }
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled()))).map_err(err)?;
            legend.push((name, c, dashed));
        }
    }
    Ok(())
}

fn update(root: &Area<'_>, d: &Data) -> Result<bool, String> {
    let recs: Vec<&Rec> = d.of("update", "mttcg").filter(|r| r.get("median_ns").is_some()).collect();
    if recs.is_empty() {
        return Ok(false);
    }
    let root = root
        .titled("Update side: latency with the other cores idle vs busy in read sections (mttcg)", (FAMILY, 24))
        .map_err(err)?;
    let (plots, strip) = root.split_vertically(root.dim_in_pixel().1 - 60);
    let panels = plots.split_evenly((1, 2));
    let mut legend: Vec<Entry> = Vec::new();
    latency_panel(
        &panels[0],
        "synchronize_rcu",
        &[("sync_rcu", "synchronize_rcu", "synchronize_rcu", RGBColor(44, 160, 44))],
        &recs,
        &mut legend,
    )?;
    latency_panel(
        &panels[1],
        "percpu_down_write + up_write (from idle: one grace period)",
        &[
            ("down_write_idle", "percpu_down_write + up_write, from idle", "from idle", RGBColor(31, 119, 180)),
            ("down_write_b2b", "percpu_down_write + up_write, back to back", "back to back", RGBColor(255, 127, 14)),
        ],
        &recs,
        &mut legend,
    )?;
    legend_strip(&strip, &legend)?;
    Ok(true)
}

/// Grace-period cost against the core count (log-log), one colour per measure and a dash per
/// leaf size, with linear and quadratic reference lines through the first "all cores" point.
fn grace_periods(root: &Area<'_>, d: &Data) -> Result<bool, String> {
    let recs: Vec<&Rec> = d.of("gp", "").collect();
    if recs.is_empty() {
        return Ok(false);
    }
    let ops = [
        ("gp_busy", "all cores, one grace period, none idle", RGBColor(214, 39, 40)),
        ("gp_idle", "synchronize_rcu, others idle", RGBColor(44, 160, 44)),
        ("report", "one report", RGBColor(31, 119, 180)),
    ];
    let vals: Vec<f64> = recs.iter().filter_map(|r| r.num("value")).filter(|v| *v > 0.0).collect();
    let cores: Vec<f64> = recs.iter().filter_map(|r| r.num("cores")).collect();
    if vals.is_empty() || cores.is_empty() {
        return Ok(false);
    }
    let (cmin, cmax) = (cores.iter().copied().fold(f64::MAX, f64::min), cores.iter().copied().fold(0.0, f64::max));
    let (lo, hi) =
        (vals.iter().copied().fold(f64::MAX, f64::min) / 2.0, vals.iter().copied().fold(0.0, f64::max) * 4.0);
    let root = root.titled("Grace-period cost vs cores (icount, instructions)", (FAMILY, 26)).map_err(err)?;
    let (plot, strip) = root.split_vertically(root.dim_in_pixel().1 - 110);
    let mut chart = ChartBuilder::on(&plot)
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(xpos(cmin) - 0.25..xpos(cmax) + 0.25, (lo.max(1.0)..hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(20)
        .x_label_formatter(&core_label)
        .x_desc("cores")
        .y_desc("instructions (log scale)")
        .y_label_formatter(&|v| short(*v))
        .light_line_style(WHITE)
        .label_style((FAMILY, 15))
        .draw()
        .map_err(err)?;
    let mut legend: Vec<Entry> = Vec::new();
    let leaves = d.distinct("gp", "leaf");
    for (li, leaf) in leaves.iter().enumerate() {
        for (op, label, c) in ops {
            let mut pts: Vec<(f64, f64)> = recs
                .iter()
                .filter(|r| r.s("op") == op && r.s("leaf") == leaf)
                .filter_map(|r| Some((r.num("cores")?, r.num("value")?)))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let pts: Vec<(f64, f64)> = pts.into_iter().map(|(x, y)| (xpos(x), y.max(1.0))).collect();
            if pts.is_empty() {
                continue;
            }
            // The first leaf size solid, the others dashed (leaf 0, the flat scan, sorts first).
            let dashed = li > 0;
            if dashed {
                chart.draw_series(DashedLineSeries::new(pts.clone(), 8, 6, c.stroke_width(2))).map_err(err)?;
            } else {
                chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(3))).map_err(err)?;
            }
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 5, c.filled()))).map_err(err)?;
            let which = if leaf == "0" { "flat scan (before the tree)".to_string() } else { format!("leaf {leaf}") };
            legend.push((format!("{label}, {which}"), c, dashed));
        }
    }
    // References through the smallest core count's "all cores" figure of the first leaf size.
    let anchor = leaves.first().and_then(|leaf| {
        recs.iter()
            .filter(|r| r.s("op") == "gp_busy" && r.s("leaf") == leaf)
            .filter_map(|r| Some((r.num("cores")?, r.num("value")?)))
            .min_by(|a, b| a.0.total_cmp(&b.0))
    });
    if let Some((c0, v0)) = anchor {
        let grey = RGBColor(127, 127, 127);
        for (pow, label) in [(1.0, "linear in cores (reference)"), (2.0, "quadratic in cores (reference)")] {
            let pts: Vec<(f64, f64)> = (0..=40)
                .map(|i| c0 * (cmax / c0).powf(i as f64 / 40.0))
                .map(|c| (xpos(c), v0 * (c / c0).powf(pow)))
                .filter(|&(_, v)| v <= hi)
                .collect();
            let style = if pow == 1.0 { grey.stroke_width(1) } else { grey.stroke_width(2) };
            chart.draw_series(DashedLineSeries::new(pts, 4, 4, style)).map_err(err)?;
            legend.push((label.to_string(), grey, true));
        }
    }
    legend_strip(&strip, &legend)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::{core_label, micros, short};

    #[test]
    fn labels_are_short() {
        assert_eq!(short(0.25), "0.25");
        assert_eq!(short(2.5), "2.5");
        assert_eq!(short(25.0), "25");
        assert_eq!(short(2500.0), "2500");
        assert_eq!(micros(&2500.0), "2.5 ms");
        assert_eq!(micros(&0.5), "0.5 µs");
        assert_eq!(core_label(&2.0), "4");
        assert_eq!(core_label(&2.5), "");
    }
}
