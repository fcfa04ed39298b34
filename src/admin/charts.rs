//! The status page's charts: inline SVG drawn from a [`SeriesView`], no script and no file of
//! its own, so the page works offline and under `default-src 'none'; style-src
//! 'unsafe-inline'`. Colours are attributes; sizes come from the page's stylesheet (the SVG
//! has a `viewBox` and scales to its column).
//!
//! Each chart has a `<title>` and a `<desc>` that says its numbers in words (latest, average,
//! highest per line, and how long backends were down), for screen readers and for text
//! browsers. Backends that were down or excluded are marked in a band under the time axis.

use std::fmt::Write;

use super::series::{BackendSample, Mark, Range, SeriesView, NO_LATENCY};
use crate::http::html_escape;

/// The drawing's own coordinates; the page scales it to its width.
const WIDTH: f64 = 520.0;
const PLOT_HEIGHT: f64 = 150.0;
const LEFT: f64 = 58.0;
const RIGHT: f64 = WIDTH - 14.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = TOP + PLOT_HEIGHT;
/// The band of down/excluded marks, under the plot.
const BAND_Y: f64 = BOTTOM + 3.0;
const BAND_HEIGHT: f64 = 6.0;
/// Time labels' baseline.
const TIME_Y: f64 = BAND_Y + BAND_HEIGHT + 16.0;
const HEIGHT: f64 = TIME_Y + 8.0;
/// One backend's lane of marks under the latency chart: its name, then its marks.
const LANE_HEIGHT: f64 = 22.0;

/// Status classes 1xx..5xx: quiet for the usual, warm for trouble.
const CLASS_COLOURS: [&str; 5] = ["#9aa5b1", "#3f7cc0", "#70b7a6", "#e0a030", "#c8362f"];
/// Backends, in turn (Okabe–Ito, readable by colour-blind eyes, without the yellow).
const PALETTE: [&str; 7] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#555555",
];
const DOWN_COLOUR: &str = "#c8362f";
const EXCLUDED_COLOUR: &str = "#e0a030";

/// What a chart's numbers are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    PerSecond,
    Millis,
    Percent,
    Count,
}

/// One line (or stacked area) of a chart: its values aligned to the end of the range, `None`
/// where there is nothing to draw.
#[derive(Debug, Clone)]
pub struct Line {
    pub label: String,
    pub colour: &'static str,
    pub dashed: bool,
    pub values: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Style {
    Lines,
    /// Areas stacked bottom up, in the order of the lines.
    Stacked,
}

/// One backend's marks across the range, aligned like the lines' values.
#[derive(Debug, Clone)]
pub struct Lane {
    pub label: String,
    pub marks: Vec<Mark>,
}

#[derive(Debug, Clone)]
pub struct Chart {
    /// The element id, and the prefix of its parts' ids.
    pub id: &'static str,
    pub title: &'static str,
    pub unit: Unit,
    pub style: Style,
    pub lines: Vec<Line>,
    /// A line drawn over the others, never stacked (backend errors over the traffic).
    pub overlay: Option<Line>,
    /// The top of the scale when it is fixed (a ratio); otherwise from the data.
    pub fixed_max: Option<f64>,
    /// Steps across the whole range (the values may cover only its end).
    pub slots: usize,
    pub step_seconds: u64,
    /// The worst state of any backend per step, drawn in the band under the time axis.
    pub band: Vec<Mark>,
    /// Backends with a lane of their own (the ones that were down or excluded).
    pub lanes: Vec<Lane>,
}

/// The four charts of the status page, for one range.
pub fn status_charts(v: &SeriesView) -> [Chart; 4] {
    let slots = v.range.slots();
    let step = v.range.step_seconds();
    let per_second = |n: u32| Some(f64::from(n) / step as f64);
    let band: Vec<Mark> = (0..v.samples.len())
        .map(|i| {
            v.backends
                .iter()
                .filter_map(|b| b.samples.get(i).map(|s| s.mark))
                .filter(|m| matches!(m, Mark::Down | Mark::Excluded))
                .max()
                .unwrap_or(Mark::Up)
        })
        .collect();
    let chart = |id, title, unit, style, lines, fixed_max, lanes| Chart {
        id,
        title,
        unit,
        style,
        lines,
        overlay: None,
        fixed_max,
        slots,
        step_seconds: step,
        band: band.clone(),
        lanes,
    };
    let mut traffic: Vec<Line> = ["1xx", "2xx", "3xx", "4xx", "5xx"]
        .iter()
        .enumerate()
        .map(|(c, label)| Line {
            label: (*label).to_string(),
            colour: CLASS_COLOURS[c],
            dashed: false,
            values: v
                .samples
                .iter()
                .map(|s| per_second(s.responses[c]))
                .collect(),
        })
        .collect();
    // The usual classes first in the legend; 1xx and 3xx only when there were any.
    traffic.retain(|l| {
        matches!(l.label.as_str(), "2xx" | "4xx" | "5xx")
            || l.values.iter().any(|x| x.is_some_and(|x| x > 0.0))
    });
    let errors = Line {
        label: "backend errors".into(),
        colour: "#7a1d17",
        dashed: true,
        values: v.samples.iter().map(|s| per_second(s.errors)).collect(),
    };
    let ms = |us: u32| (us != NO_LATENCY).then(|| f64::from(us) / 1000.0);
    let mut latency = Vec::new();
    for (i, b) in v.backends.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let line = |suffix: &str, dashed, pick: fn(&BackendSample) -> u32| Line {
            label: format!("{} {suffix}", b.label()),
            colour,
            dashed,
            values: b.samples.iter().map(|s| ms(pick(s))).collect(),
        };
        latency.push(line("p50", false, |s| s.p50_us));
        latency.push(line("p99", true, |s| s.p99_us));
    }
    let lanes = v
        .backends
        .iter()
        .filter(|b| {
            b.samples
                .iter()
                .any(|s| matches!(s.mark, Mark::Down | Mark::Excluded))
        })
        .map(|b| Lane {
            label: b.label(),
            marks: b.samples.iter().map(|s| s.mark).collect(),
        })
        .collect();
    let hit_ratio = Line {
        label: "hit ratio".into(),
        colour: "#009e73",
        dashed: false,
        values: v
            .samples
            .iter()
            .map(|s| {
                let lookups = u64::from(s.cache_hits) + u64::from(s.cache_misses);
                (lookups > 0).then(|| 100.0 * f64::from(s.cache_hits) / lookups as f64)
            })
            .collect(),
    };
    let connections = Line {
        label: if v.range == Range::Hour {
            "open (most in 10 s)".into()
        } else {
            "open".into()
        },
        colour: "#3f7cc0",
        dashed: false,
        values: v
            .samples
            .iter()
            .map(|s| Some(f64::from(s.connections)))
            .collect(),
    };
    [
        chart(
            "chart-traffic",
            "Requests per second by status",
            Unit::PerSecond,
            Style::Stacked,
            traffic,
            None,
            Vec::new(),
        )
        .with_overlay(errors),
        chart(
            "chart-latency",
            "Backend latency (p50 solid, p99 dashed)",
            Unit::Millis,
            Style::Lines,
            latency,
            None,
            lanes,
        ),
        chart(
            "chart-cache",
            "Cache hit ratio",
            Unit::Percent,
            Style::Lines,
            vec![hit_ratio],
            Some(100.0),
            Vec::new(),
        ),
        chart(
            "chart-connections",
            "Client connections",
            Unit::Count,
            Style::Lines,
            vec![connections],
            None,
            Vec::new(),
        ),
    ]
}

impl Chart {
    /// A line drawn over a stacked chart, not stacked itself (errors over traffic).
    fn with_overlay(mut self, line: Line) -> Chart {
        self.overlay = Some(line);
        self
    }
}

/// A number as axis labels and words show it: short, at most three significant digits.
pub fn compact(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let a = v.abs();
    if a < 1000.0 {
        let s = if a >= 100.0 || a == a.trunc() {
            format!("{v:.0}")
        } else if a >= 10.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.2}")
        };
        return trim_zeros(s);
    }
    for (k, suffix) in ["k", "M", "G", "T", "P", "E"].iter().enumerate() {
        let scaled = v / 1000f64.powi(k as i32 + 1);
        if scaled.abs() < 999.5 {
            return format!("{}{suffix}", compact(scaled));
        }
    }
    format!("{v:.1e}")
}

fn trim_zeros(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn with_unit(v: f64, unit: Unit) -> String {
    match unit {
        Unit::PerSecond => format!("{}/s", compact(v)),
        Unit::Millis if v >= 1000.0 => format!("{} s", compact(v / 1000.0)),
        Unit::Millis => format!("{} ms", compact(v)),
        Unit::Percent => format!("{}%", compact(v)),
        Unit::Count => compact(v),
    }
}

/// A scale for values up to `max`: a round step (1, 2 or 5 times a power of ten) and a top
/// that is a whole number of steps, at most five.
fn scale(max: f64) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let rough = max / 4.0;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| max / s <= 5.0)
        .unwrap_or(10.0 * power);
    let top = (max / step).ceil() * step;
    if top.is_finite() && step > 0.0 {
        (step, top)
    } else {
        (max, max)
    }
}

struct Geometry {
    slots: usize,
    /// Index of the first value's slot (values cover the end of the range).
    offset: usize,
    top: f64,
}

impl Geometry {
    /// Where sample `i` is drawn: at its end, the range's start being the left edge.
    fn x(&self, i: usize) -> f64 {
        let span = self.slots.max(1) as f64;
        LEFT + (RIGHT - LEFT) * ((self.offset + i + 1) as f64 / span).min(1.0)
    }

    fn y(&self, v: f64) -> f64 {
        BOTTOM - PLOT_HEIGHT * (v / self.top).clamp(0.0, 1.0)
    }

    /// Half the distance between two steps: how wide a lone sample is drawn.
    fn half_step(&self) -> f64 {
        (RIGHT - LEFT) / self.slots.max(1) as f64 / 2.0
    }
}

/// Runs of consecutive values present: (first index, values).
fn runs(values: &[Option<f64>]) -> Vec<(usize, Vec<f64>)> {
    let mut out: Vec<(usize, Vec<f64>)> = Vec::new();
    let mut current: Option<(usize, Vec<f64>)> = None;
    for (i, v) in values.iter().enumerate() {
        match v.filter(|v| v.is_finite()) {
            Some(v) => current.get_or_insert_with(|| (i, Vec::new())).1.push(v),
            None => out.extend(current.take()),
        }
    }
    out.extend(current);
    out
}

/// Latest, average and highest of a line, in words; `None` without values.
fn in_words(line: &Line, unit: Unit) -> Option<String> {
    let present: Vec<f64> = line
        .values
        .iter()
        .filter_map(|v| v.filter(|v| v.is_finite()))
        .collect();
    let latest = *present.last()?;
    let avg = present.iter().sum::<f64>() / present.len() as f64;
    let max = present.iter().copied().fold(f64::MIN, f64::max);
    Some(format!(
        "{}: latest {}, average {}, highest {}.",
        line.label,
        with_unit(latest, unit),
        with_unit(avg, unit),
        with_unit(max, unit)
    ))
}

/// How long a lane was down and excluded, in words.
fn lane_in_words(lane: &Lane, step: u64) -> Option<String> {
    let count = |m: Mark| lane.marks.iter().filter(|&&x| x == m).count() as u64 * step;
    let (down, excluded) = (count(Mark::Down), count(Mark::Excluded));
    let mut parts = Vec::new();
    if down > 0 {
        parts.push(format!("down for {down} s"));
    }
    if excluded > 0 {
        parts.push(format!("excluded for {excluded} s"));
    }
    (!parts.is_empty()).then(|| format!("{} was {}.", lane.label, parts.join(" and ")))
}

/// The chart as an inline `<svg>`.
pub fn svg(c: &Chart, range: Range) -> String {
    let mut o = String::with_capacity(4096);
    let values = c.lines.iter().map(|l| l.values.len()).max().unwrap_or(0);
    let slots = c.slots.max(values).max(1);
    let stacked_top = |i: usize| -> f64 {
        c.lines
            .iter()
            .filter_map(|l| l.values.get(i).copied().flatten())
            .filter(|v| v.is_finite())
            .sum()
    };
    let data_max = match c.style {
        Style::Stacked => (0..values).map(stacked_top).fold(0.0, f64::max),
        Style::Lines => 0.0,
    }
    .max(
        c.lines
            .iter()
            .chain(&c.overlay)
            .flat_map(|l| l.values.iter().flatten())
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max),
    );
    let (step, top) = match c.fixed_max {
        Some(m) => (m / 4.0, m),
        // Whole connections: no 0.2 steps.
        None if c.unit == Unit::Count => scale(data_max.max(4.0)),
        None => scale(data_max),
    };
    let g = Geometry {
        slots,
        offset: slots - values,
        top,
    };
    let height = HEIGHT + LANE_HEIGHT * c.lanes.len() as f64;
    let id = c.id;
    let _ = write!(
        o,
        "<svg class=\"chart\" id=\"{id}-svg\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" \
         aria-labelledby=\"{id}-title {id}-desc\" font-size=\"13\" \
         font-family=\"system-ui,sans-serif\"><title id=\"{id}-title\">{}, last {}</title>\
         <desc id=\"{id}-desc\">",
        html_escape(c.title),
        range.words()
    );
    let mut words: Vec<String> = c
        .lines
        .iter()
        .chain(&c.overlay)
        .filter_map(|l| in_words(l, c.unit))
        .collect();
    words.extend(
        c.lanes
            .iter()
            .filter_map(|l| lane_in_words(l, c.step_seconds)),
    );
    if words.is_empty() {
        words.push("No data yet.".into());
    }
    o.push_str(&html_escape(&words.join(" ")));
    o.push_str("</desc>");
    // Grid and value labels.
    let mut v = 0.0;
    while v <= top * 1.0001 {
        let y = g.y(v);
        let _ = write!(
            o,
            "<line x1=\"{LEFT}\" x2=\"{RIGHT}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{}\" \
             stroke-width=\"1\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" \
             fill=\"#666\">{}</text>",
            if v == 0.0 { "#999" } else { "#e6e6e6" },
            LEFT - 5.0,
            y + 4.0,
            html_escape(&with_unit(v, c.unit).replace("/s", ""))
        );
        v += step;
    }
    // Time labels: every minute (5 minutes) or ten minutes (hour), "now" at the right.
    let every = if range == Range::Hour { 600 } else { 60 };
    let span = slots as u64 * c.step_seconds.max(1);
    for ago in (0..=span).step_by(every) {
        let x = RIGHT - (RIGHT - LEFT) * ago as f64 / span as f64;
        let label = if ago == 0 {
            "now".to_string()
        } else {
            format!("\u{2212}{}m", ago / 60)
        };
        let anchor = match ago {
            0 => "end",
            _ if ago == span => "start",
            _ => "middle",
        };
        let _ = write!(
            o,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{BOTTOM}\" y2=\"{:.1}\" stroke=\"#999\"/>\
             <text x=\"{x:.1}\" y=\"{TIME_Y}\" text-anchor=\"{anchor}\" fill=\"#666\">{label}</text>",
            BOTTOM + 3.0
        );
    }
    if values == 0 || words == ["No data yet."] {
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#888\">no data yet</text>",
            (LEFT + RIGHT) / 2.0,
            TOP + PLOT_HEIGHT / 2.0
        );
    }
    // The data.
    match c.style {
        Style::Stacked => {
            let mut below = vec![0.0f64; values];
            for line in &c.lines {
                let above: Vec<f64> = (0..values)
                    .map(|i| {
                        below[i]
                            + line
                                .values
                                .get(i)
                                .copied()
                                .flatten()
                                .filter(|v| v.is_finite())
                                .unwrap_or(0.0)
                    })
                    .collect();
                for (first, run) in runs(&line.values) {
                    let idx = first..first + run.len();
                    area(&mut o, &g, idx, &above, &below, line.colour);
                }
                below = above;
            }
        }
        Style::Lines => {
            for line in &c.lines {
                draw_line(&mut o, &g, line);
            }
        }
    }
    if let Some(line) = &c.overlay {
        draw_line(&mut o, &g, line);
    }
    // Down and excluded backends, under the time axis.
    marks(&mut o, &g, &c.band, BAND_Y);
    for (k, lane) in c.lanes.iter().enumerate() {
        let y = HEIGHT + LANE_HEIGHT * k as f64;
        let _ = write!(
            o,
            "<text x=\"{LEFT}\" y=\"{:.1}\" fill=\"#444\">{}</text>\
             <rect x=\"{LEFT}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{BAND_HEIGHT}\" \
             fill=\"#f1f1f1\"/>",
            y + 10.0,
            html_escape(&lane.label),
            y + 13.0,
            RIGHT - LEFT
        );
        marks(&mut o, &g, &lane.marks, y + 13.0);
    }
    o.push_str("</svg>");
    o
}

/// A stacked area over `idx`, between `below` and `above`.
fn area(
    o: &mut String,
    g: &Geometry,
    idx: std::ops::Range<usize>,
    above: &[f64],
    below: &[f64],
    colour: &str,
) {
    let lone = idx.len() == 1;
    let x = |i: usize, side: f64| g.x(i) + if lone { side * g.half_step() } else { 0.0 };
    let _ = write!(o, "<path fill=\"{colour}\" fill-opacity=\"0.85\" d=\"M");
    for i in idx.clone() {
        let _ = write!(o, "{:.1},{:.1} ", x(i, -1.0), g.y(above[i]));
        if lone {
            let _ = write!(o, "{:.1},{:.1} ", x(i, 1.0), g.y(above[i]));
        }
    }
    for i in idx.rev() {
        if lone {
            let _ = write!(o, "{:.1},{:.1} ", x(i, 1.0), g.y(below[i]));
        }
        let _ = write!(o, "{:.1},{:.1} ", x(i, -1.0), g.y(below[i]));
    }
    o.push_str("Z\"/>");
}

fn draw_line(o: &mut String, g: &Geometry, line: &Line) {
    // A dashed line (p99, errors) is drawn lighter: it is the second look, not the first.
    let (dash, width) = if line.dashed {
        (" stroke-dasharray=\"5 3\" stroke-opacity=\"0.75\"", "1.3")
    } else {
        ("", "1.8")
    };
    for (first, run) in runs(&line.values) {
        if run.len() == 1 {
            let _ = write!(
                o,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{}\"/>",
                g.x(first),
                g.y(run[0]),
                line.colour
            );
            continue;
        }
        let _ = write!(
            o,
            "<path fill=\"none\" stroke=\"{}\" stroke-width=\"{width}\" stroke-linejoin=\"round\"{dash} d=\"M",
            line.colour
        );
        for (k, v) in run.iter().enumerate() {
            let _ = write!(o, "{:.1},{:.1} ", g.x(first + k), g.y(*v));
        }
        o.truncate(o.trim_end().len());
        o.push_str("\"/>");
    }
}

/// Rectangles where `marks` are down or excluded, one per run of the same mark.
fn marks(o: &mut String, g: &Geometry, marks: &[Mark], y: f64) {
    let mut i = 0;
    while i < marks.len() {
        let m = marks[i];
        let run = marks[i..].iter().take_while(|&&x| x == m).count();
        let colour = match m {
            Mark::Down => Some(DOWN_COLOUR),
            Mark::Excluded => Some(EXCLUDED_COLOUR),
            Mark::Up | Mark::Absent => None,
        };
        if let Some(colour) = colour {
            let x0 = (g.x(i) - g.half_step()).max(LEFT);
            let x1 = (g.x(i + run - 1) + g.half_step()).min(RIGHT);
            let _ = write!(
                o,
                "<rect class=\"mark {}\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" \
                 height=\"{BAND_HEIGHT}\" fill=\"{colour}\"><title>{}</title></rect>",
                m.as_str(),
                (x1 - x0).max(1.0),
                m.as_str()
            );
        }
        i += run;
    }
}

/// The legend of a chart, as HTML (it wraps on a phone, the drawing does not).
pub fn legend(c: &Chart) -> String {
    let mut o = String::from("<p class=\"legend\">");
    let mut seen = Vec::new();
    for line in c.lines.iter().chain(&c.overlay) {
        // Latency lines come in pairs (p50, p99) of one colour: one entry per backend.
        let label = match c.unit {
            Unit::Millis => line
                .label
                .trim_end_matches(" p50")
                .trim_end_matches(" p99")
                .to_string(),
            _ => line.label.clone(),
        };
        if seen.contains(&label) {
            continue;
        }
        let _ = write!(
            o,
            "<span class=\"key\"><span class=\"sw{}\" style=\"background:{}\"></span>{}</span> ",
            if line.dashed { " dashed" } else { "" },
            line.colour,
            html_escape(&label)
        );
        seen.push(label);
    }
    o.push_str("</p>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::series::{BackendSeriesView, Sample};

    fn chart(lines: Vec<Vec<Option<f64>>>) -> Chart {
        Chart {
            id: "t",
            title: "Test",
            unit: Unit::PerSecond,
            style: Style::Lines,
            lines: lines
                .into_iter()
                .map(|values| Line {
                    label: "x".into(),
                    colour: "#000",
                    dashed: false,
                    values,
                })
                .collect(),
            overlay: None,
            fixed_max: None,
            slots: 300,
            step_seconds: 1,
            band: Vec::new(),
            lanes: Vec::new(),
        }
    }

    fn paths(svg: &str) -> Vec<&str> {
        svg.split("<path ").skip(1).collect()
    }

    #[test]
    fn backend_names_are_escaped_everywhere() {
        let name = "<b>\"x\"&'</b>";
        let samples = vec![
            BackendSample {
                requests: 1,
                errors: 0,
                p50_us: 1000,
                p99_us: 5000,
                mark: Mark::Down,
            };
            3
        ];
        let v = SeriesView {
            range: Range::FiveMinutes,
            end_second: 3,
            samples: vec![Sample::default(); 3],
            backends: vec![BackendSeriesView {
                pool: Some("p<".into()),
                name: name.into(),
                samples,
            }],
        };
        let [_, latency, _, _] = status_charts(&v);
        let out = svg(&latency, Range::FiveMinutes) + &legend(&latency);
        assert!(!out.contains("<b>") && !out.contains("p<"), "{out}");
        assert!(
            out.contains("p&lt;/&lt;b&gt;&quot;x&quot;&amp;&#39;&lt;/b&gt;"),
            "{out}"
        );
        assert!(out.contains("was down for 3 s"), "{out}");
        assert!(out.contains("class=\"mark down\""), "{out}");
    }

    #[test]
    fn an_empty_series_draws_axes_and_says_so() {
        let out = svg(&chart(vec![vec![]]), Range::FiveMinutes);
        assert!(paths(&out).is_empty());
        assert!(
            out.contains("no data yet") && out.contains("No data yet."),
            "{out}"
        );
        assert!(
            out.contains(">now</text>") && out.contains(">\u{2212}5m</text>"),
            "{out}"
        );
        let empty = status_charts(&SeriesView::default());
        for c in &empty {
            assert!(svg(c, Range::FiveMinutes).contains("No data yet."));
        }
    }

    #[test]
    fn one_point_is_drawn_as_a_dot_or_a_sliver() {
        let out = svg(&chart(vec![vec![Some(3.0)]]), Range::FiveMinutes);
        assert!(out.contains("<circle"), "{out}");
        assert!(
            out.contains("latest 3/s, average 3/s, highest 3/s."),
            "{out}"
        );
        let mut stacked = chart(vec![vec![Some(3.0)]]);
        stacked.style = Style::Stacked;
        let out = svg(&stacked, Range::FiveMinutes);
        let p = paths(&out);
        assert_eq!(p.len(), 1, "{out}");
        assert!(p[0].matches(',').count() == 4, "a quadrilateral: {out}");
    }

    #[test]
    fn all_zero_and_huge_values_stay_finite() {
        let out = svg(&chart(vec![vec![Some(0.0); 20]]), Range::FiveMinutes);
        assert_eq!(paths(&out).len(), 1);
        assert!(!out.contains("NaN") && !out.contains("inf"), "{out}");
        for huge in [1e12, 1.7e308, f64::INFINITY, f64::NAN] {
            let out = svg(
                &chart(vec![vec![Some(1.0), Some(huge), Some(2.0)]]),
                Range::Hour,
            );
            assert!(
                !out.contains("NaN") && !out.contains("inf"),
                "{huge}: {out}"
            );
            assert!(out.contains("<path") || out.contains("<circle"), "{out}");
        }
        assert_eq!(compact(1e12), "1T");
        assert_eq!(compact(1234.0), "1.23k");
        assert_eq!(compact(0.5), "0.5");
        assert_eq!(compact(12.0), "12");
        assert_eq!(compact(1e30), "1.0e30");
        assert_eq!(scale(7.0), (2.0, 8.0));
        assert_eq!(scale(0.0), (0.2, 1.0));
    }

    #[test]
    fn gaps_split_lines() {
        let out = svg(
            &chart(vec![vec![Some(1.0), Some(2.0), None, Some(1.0), Some(1.0)]]),
            Range::FiveMinutes,
        );
        assert_eq!(paths(&out).len(), 2, "{out}");
    }
}
