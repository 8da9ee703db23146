//! Server-side SVG line charts for the web console, so pages need no charting JavaScript.

/// Canvas width in SVG user units; the element itself scales to its container via `width="100%"`.
const WIDTH: f64 = 640.0;
/// Canvas height in SVG user units.
const HEIGHT: f64 = 220.0;
/// Left edge of the plot area, leaving room for y tick labels such as `1,200/s`.
const LEFT: f64 = 64.0;
/// Right edge of the plot area.
const RIGHT: f64 = 628.0;
/// Top edge of the plot area, below the title and the legend.
const TOP: f64 = 48.0;
/// Bottom edge of the plot area, above the time labels.
const BOTTOM: f64 = 192.0;

/// Okabe–Ito colours for series, without the green and vermillion reserved for marker tones so a
/// good/bad marker is never mistaken for a series; yellow is last because it is faint on white.
const PALETTE: [&str; 6] = ["#0072B2", "#E69F00", "#CC79A7", "#56B4E9", "#000000", "#F0E442"];

/// One line on a chart.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    /// Legend name; also the `data-series` attribute of the drawn element.
    pub(crate) name: String,
    /// `(unix ms, value)` samples in any order; NaN and infinite values are skipped.
    pub(crate) points: Vec<(u64, f64)>,
}

/// A moment marked with a vertical line and a label: a rollout step, a guard decision.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Marker {
    /// When it happened, in unix ms.
    pub(crate) at_ms: u64,
    /// Text drawn next to the line; also the `data-marker` attribute.
    pub(crate) label: String,
    /// Colour of the line and label.
    pub(crate) tone: Tone,
}

/// What a marker means, which decides its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    /// Something happened, neither good nor bad: a rollout step.
    Neutral,
    /// A healthy outcome: a guard let the rollout advance.
    Good,
    /// A failure: a guard breach or a kill.
    Bad,
}

impl Tone {
    /// Colour and the `data-tone` attribute value.
    fn style(self) -> (&'static str, &'static str) {
        match self {
            Tone::Neutral => ("#6B6B6B", "neutral"),
            Tone::Good => ("#009E73", "good"),
            Tone::Bad => ("#D55E00", "bad"),
        }
    }
}

/// A chart ready to render; it borrows so callers can render straight from their own state.
#[derive(Debug, Clone)]
pub(crate) struct Chart<'a> {
    /// Heading, also used as the accessible name.
    pub(crate) title: &'a str,
    /// Suffix for values: `%`, `/s`, `ms`; may be empty.
    pub(crate) unit: &'a str,
    /// Lines to draw, coloured in order from a fixed palette that repeats after six.
    pub(crate) series: &'a [Series],
    /// Moments to mark.
    pub(crate) markers: &'a [Marker],
}

impl Chart<'_> {
    /// Renders a self-contained inline `<svg>` element.
    pub(crate) fn to_svg(&self) -> String {
        let title = escape(self.title);
        let mut out = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"100%\" \
             role=\"img\" aria-label=\"{title}\" font-family=\"system-ui, sans-serif\" font-size=\"11\">\
             <title>{title}</title>\
             <text x=\"8\" y=\"18\" font-size=\"13\" font-weight=\"600\" fill=\"#222\">{title}</text>"
        );
        // Polylines join points in the given order, so unsorted input would zigzag back in time.
        let lines: Vec<(&Series, Vec<(u64, f64)>)> = self
            .series
            .iter()
            .map(|s| {
                let mut pts: Vec<(u64, f64)> = s.points.iter().copied().filter(|p| p.1.is_finite()).collect();
                pts.sort_by_key(|p| p.0);
                (s, pts)
            })
            .collect();
        let all = || lines.iter().flat_map(|l| l.1.iter());
        let (Some(t_min), Some(t_max)) = (all().map(|p| p.0).min(), all().map(|p| p.0).max()) else {
            out.push_str("<text x=\"320\" y=\"120\" text-anchor=\"middle\" fill=\"#777\">no data yet</text>");
            out.push_str("</svg>");
            return out;
        };
        let (t_lo, t_hi) = widen(t_min, t_max);
        // Zero is always on the axis: rates and percentages read wrongly from a truncated baseline.
        let v_lo = all().map(|p| p.1).fold(0.0, f64::min);
        let v_hi = all().map(|p| p.1).fold(0.0, f64::max);
        let (step, ticks) = nice_ticks(v_lo, v_hi);
        let y_lo = ticks.first().copied().unwrap_or(v_lo);
        let y_hi = ticks.last().copied().filter(|&h| h > y_lo).unwrap_or(y_lo + 1.0);
        let x = |t: u64| LEFT + (t - t_lo) as f64 / (t_hi - t_lo) as f64 * (RIGHT - LEFT);
        let y = |v: f64| BOTTOM - (v - y_lo) / (y_hi - y_lo) * (BOTTOM - TOP);

        for &v in &ticks {
            let (yy, label) = (y(v), escape(&fmt_num(v, step, self.unit)));
            out.push_str(&format!(
                "<line x1=\"{LEFT}\" x2=\"{RIGHT}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#E5E5E5\"/>\
                 <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">{label}</text>",
                LEFT - 6.0,
                yy + 3.5
            ));
        }
        out.push_str(&format!(
            "<line x1=\"{LEFT}\" x2=\"{RIGHT}\" y1=\"{BOTTOM}\" y2=\"{BOTTOM}\" stroke=\"#999\"/>"
        ));
        for t in time_ticks(t_lo, t_hi) {
            let (tx, label) = (x(t), hh_mm(t));
            out.push_str(&format!(
                "<text x=\"{tx:.1}\" y=\"208\" text-anchor=\"middle\" fill=\"#555\">{label}</text>"
            ));
        }

        let mut legend_x = 8.0;
        for (i, (series, pts)) in lines.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let name = escape(&series.name);
            match pts.as_slice() {
                [] => {}
                // A polyline of one point has no length and would be invisible.
                [(t, v)] => out.push_str(&format!(
                    "<circle data-series=\"{name}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/>",
                    x(*t),
                    y(*v)
                )),
                _ => {
                    let coords: Vec<String> =
                        pts.iter().map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v))).collect();
                    out.push_str(&format!(
                        "<polyline data-series=\"{name}\" points=\"{}\" fill=\"none\" stroke=\"{colour}\" \
                         stroke-width=\"2\" stroke-linejoin=\"round\"/>",
                        coords.join(" ")
                    ));
                }
            }
            let latest = pts.last().map_or_else(|| "–".to_owned(), |p| fmt_num(p.1, sig3(p.1), self.unit));
            let text = format!("{} {}", series.name, latest);
            out.push_str(&format!(
                "<g data-legend=\"{name}\"><line x1=\"{legend_x:.1}\" x2=\"{:.1}\" y1=\"31\" y2=\"31\" \
                 stroke=\"{colour}\" stroke-width=\"3\"/><text x=\"{:.1}\" y=\"35\" fill=\"#333\">{}</text></g>",
                legend_x + 14.0,
                legend_x + 18.0,
                escape(&text)
            ));
            // A rough glyph width is enough here: SVG cannot measure text server-side.
            legend_x += 32.0 + 6.2 * text.chars().count() as f64;
        }

        // Markers outside the plotted time range are dropped, not clamped: a line pinned to the
        // edge would claim the event happened at that moment.
        let visible = self.markers.iter().filter(|m| (t_lo..=t_hi).contains(&m.at_ms));
        for (i, m) in visible.enumerate() {
            let (colour, tone) = m.tone.style();
            let (mx, label) = (x(m.at_ms), escape(&m.label));
            // Alternate rows so labels of nearby markers do not print over each other.
            let ly = TOP + 10.0 + 11.0 * (i % 2) as f64;
            let near_right = mx + 6.0 * m.label.chars().count() as f64 > RIGHT;
            let (lx, anchor) = if near_right { (mx - 3.0, "end") } else { (mx + 3.0, "start") };
            out.push_str(&format!(
                "<g data-marker=\"{label}\" data-tone=\"{tone}\"><line x1=\"{mx:.1}\" x2=\"{mx:.1}\" \
                 y1=\"{TOP}\" y2=\"{BOTTOM}\" stroke=\"{colour}\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>\
                 <text x=\"{lx:.1}\" y=\"{ly:.1}\" text-anchor=\"{anchor}\" font-size=\"10\" \
                 fill=\"{colour}\">{label}</text></g>"
            ));
        }
        out.push_str("</svg>");
        out
    }
}

/// Escapes text for use both as element content and inside a double- or single-quoted attribute.
fn escape(s: &str) -> String {
    // `&` goes first so the entities added after it are not escaped again.
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Widens spans under two minutes around their centre, because HH:MM labels cannot resolve less
/// and a single timestamp would otherwise divide by zero.
fn widen(lo: u64, hi: u64) -> (u64, u64) {
    const MIN_SPAN: u64 = 120_000;
    if hi - lo >= MIN_SPAN {
        return (lo, hi);
    }
    let lo = lo.saturating_sub((MIN_SPAN - (hi - lo)) / 2);
    (lo, lo.saturating_add(MIN_SPAN))
}

/// Picks the smallest 1/2/2.5/5×10ⁿ step that covers `lo..=hi` in at most four intervals, which
/// always yields 3–5 ticks; returns the step and the ticks from below `lo` to above `hi`.
fn nice_ticks(lo: f64, hi: f64) -> (f64, Vec<f64>) {
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let mut decade = 10f64.powi(((hi - lo) / 4.0).log10().floor() as i32 - 1);
    // Bounded so absurd inputs (a range near f64::MAX) end in the fallback rather than spin.
    for _ in 0..40 {
        for m in [1.0, 2.0, 2.5, 5.0] {
            let step = decade * m;
            // The epsilon keeps float noise such as 100/25 = 4.000000001 from adding an interval.
            let (a, b) = ((lo / step + 1e-9).floor(), (hi / step - 1e-9).ceil());
            if b - a <= 4.0 {
                return (step, (a as i64..=b as i64).map(|i| i as f64 * step).collect());
            }
        }
        decade *= 10.0;
    }
    (hi - lo, vec![lo, hi])
}

/// A precision that shows about three significant digits of `v`, for legend values.
fn sig3(v: f64) -> f64 {
    if v == 0.0 { 1.0 } else { 10f64.powi(v.abs().log10().floor() as i32 - 2) }
}

/// Formats `v` to the decimals `precision` needs, with thousands separators, an `M` suffix from a
/// million up, and the unit: glued on for symbols (`0.5%`, `1,200/s`), spaced for words (`250 ms`).
fn fmt_num(v: f64, precision: f64, unit: &str) -> String {
    let (scale, suffix) = if v.abs() >= 1e6 { (1e6, "M") } else { (1.0, "") };
    let p = precision / scale;
    let decimals = (0..9)
        .find(|&d| {
            let x = p * 10f64.powi(d);
            (x - x.round()).abs() < 1e-6 * x.max(1.0)
        })
        .unwrap_or(9) as usize;
    let digits = format!("{:.*}", decimals, (v / scale).abs());
    let (int, frac) = digits.split_once('.').unwrap_or((&digits, ""));
    let frac = frac.trim_end_matches('0');
    // Checked on the rounded digits so that -0.0001 shown as "0" does not print as "-0".
    let negative = v < 0.0 && digits.bytes().any(|b| (b'1'..=b'9').contains(&b));
    let mut out = String::from(if negative { "-" } else { "" });
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    let dot = if frac.is_empty() { "" } else { "." };
    let space = if unit.starts_with(char::is_alphabetic) { " " } else { "" };
    format!("{out}{dot}{frac}{suffix}{space}{unit}")
}

/// Picks a whole-minute step giving at most five labels, aligned to UTC so they read as round times.
fn time_ticks(lo: u64, hi: u64) -> Vec<u64> {
    const MINUTES: [u64; 12] = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440];
    const DAY: u64 = 86_400_000;
    let span = hi - lo;
    let step = MINUTES
        .iter()
        .map(|m| m * 60_000)
        .find(|s| span / s <= 4)
        .unwrap_or_else(|| DAY * (span / DAY / 4 + 1));
    std::iter::successors(Some(lo.div_ceil(step) * step), |t| t.checked_add(step))
        .take_while(|&t| t <= hi)
        .collect()
}

/// Formats unix ms as `HH:MM` in UTC.
fn hh_mm(ms: u64) -> String {
    let minutes = ms / 60_000;
    format!("{:02}:{:02}", minutes / 60 % 24, minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-12-01T12:00:00Z.
    const NOON: u64 = 1_764_590_400_000;

    /// Fails unless every opened tag is closed in order, so malformed SVG fails the test using it.
    fn assert_balanced(svg: &str) {
        let mut stack: Vec<&str> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').map(|e| start + e).expect("unterminated tag");
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "'<' inside tag: {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name), "mismatched close in {svg}");
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().expect("empty tag"));
            }
            let text = &rest[end + 1..];
            rest = text;
            let text_end = text.find('<').unwrap_or(text.len());
            assert!(!text[..text_end].contains('>'), "raw '>' in text");
        }
        assert!(stack.is_empty(), "unclosed {stack:?}");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "bad number in {svg}");
    }

    /// A series sampled every minute from noon.
    fn series(name: &str, values: &[f64]) -> Series {
        let points = values.iter().enumerate().map(|(i, &v)| (NOON + i as u64 * 60_000, v)).collect();
        Series { name: name.to_owned(), points }
    }

    /// Renders and checks the markup is well formed.
    fn render(series: &[Series], markers: &[Marker], unit: &str) -> String {
        let svg = Chart { title: "Errors 'p99'", unit, series, markers }.to_svg();
        assert_balanced(&svg);
        svg
    }

    #[test]
    fn escapes_names_and_title() {
        let svg = render(&[series("a<b&\"c\"", &[1.0, 2.0])], &[], "");
        assert!(svg.contains("data-series=\"a&lt;b&amp;&quot;c&quot;\""));
        assert!(svg.contains("aria-label=\"Errors &apos;p99&apos;\""));
        assert!(!svg.contains("a<b"));
        assert!(escape("<&>\"'") == "&lt;&amp;&gt;&quot;&apos;");
    }

    #[test]
    fn balance_checker_rejects_malformed() {
        for bad in ["<svg><g></svg>", "<svg><text>a<b</text></svg>", "<svg><g></g>"] {
            assert!(std::panic::catch_unwind(|| assert_balanced(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_polyline_per_non_empty_series() {
        let mut nan = series("nan", &[1.0, f64::NAN, 3.0, f64::INFINITY, 5.0]);
        nan.points.reverse();
        let all_nan = series("all-nan", &[f64::NAN, f64::NAN]);
        let svg = render(
            &[series("a", &[1.0, 2.0, 3.0]), Series { name: "e".into(), points: vec![] }, nan, all_nan],
            &[],
            "",
        );
        let lines: Vec<&str> = svg.split("<polyline").skip(1).collect();
        assert_eq!(lines.len(), 2);
        let count = |l: &str| {
            l.split("points=\"").nth(1).and_then(|p| p.split('"').next()).map(|p| p.split(' ').count())
        };
        assert_eq!(count(lines[0]), Some(3));
        assert_eq!(count(lines[1]), Some(3));
        assert!(lines[1].starts_with(" data-series=\"nan\""));
        assert!(!svg.contains("<circle"));
    }

    #[test]
    fn legend_shows_latest_value() {
        let mut s = series("req", &[5.0, 900.0]);
        s.points.insert(0, (NOON + 120_000, 1200.0));
        let svg = render(&[s, series("pct", &[0.25, 0.5])], &[], "/s");
        assert!(svg.contains(">req 1,200/s</text>"), "{svg}");
        assert!(svg.contains(">pct 0.5/s</text>"));
        assert_eq!(fmt_num(0.5, sig3(0.5), "%"), "0.5%");
        assert_eq!(fmt_num(250.0, 1.0, "ms"), "250 ms");
        assert_eq!(fmt_num(-0.0001, 1.0, ""), "0");
        assert_eq!(fmt_num(-1_234_567.0, sig3(1_234_567.0), ""), "-1.23M");
    }

    #[test]
    fn y_ticks_are_nice_and_cover_max() {
        for max in [0.0, 0.0037, 0.37, 1.0, 7.0, 97.0, 100.0, 1234.0, 2.5e6] {
            let (step, ticks) = nice_ticks(0.0, max);
            assert!((3..=5).contains(&ticks.len()), "{max}: {ticks:?}");
            assert!(ticks[0] <= 0.0 && *ticks.last().unwrap() >= max, "{max}: {ticks:?}");
            let mantissa = step / 10f64.powi(step.log10().floor() as i32);
            assert!([1.0, 2.0, 2.5, 5.0].iter().any(|m| (m - mantissa).abs() < 1e-9), "{step}");
        }
        let svg = render(&[series("a", &[10.0, 97.0])], &[], "%");
        for label in [">0%<", ">25%<", ">50%<", ">75%<", ">100%<"] {
            assert!(svg.contains(label), "{label}");
        }
        assert_eq!(nice_ticks(-3.0, 0.0).1.first(), Some(&-3.0));
    }

    #[test]
    fn flat_values_get_a_sensible_range() {
        assert_eq!(nice_ticks(0.0, 0.0).1.last(), Some(&1.0));
        let svg = render(&[series("zero", &[0.0, 0.0]), series("five", &[5.0, 5.0])], &[], "");
        assert!(svg.contains(">5<") || svg.contains(">6<"));
    }

    #[test]
    fn hh_mm_labels_are_utc() {
        assert_eq!(hh_mm(NOON), "12:00");
        assert_eq!(hh_mm(NOON + 3_723_000), "13:02");
        assert_eq!(hh_mm(NOON + 12 * 3_600_000 - 1), "23:59");
        let svg = render(&[series("a", &[1.0; 31])], &[], "");
        for label in [">12:00<", ">12:10<", ">12:20<", ">12:30<"] {
            assert!(svg.contains(label), "{label}");
        }
        assert_eq!(time_ticks(0, 10 * 86_400_000).len(), 4);
    }

    #[test]
    fn empty_says_no_data_yet() {
        for series in
            [vec![], vec![Series { name: "e".into(), points: vec![] }], vec![series("n", &[f64::NAN])]]
        {
            let svg = render(&series, &[], "");
            assert!(svg.contains("no data yet") && svg.contains("<title>Errors &apos;p99&apos;</title>"));
            assert!(!svg.contains("<polyline"));
        }
    }

    #[test]
    fn marker_tones_differ_and_outside_markers_drop() {
        let marker = |at_ms, label: &str, tone| Marker { at_ms, label: label.into(), tone };
        let markers = [
            marker(NOON + 60_000, "step 10%", Tone::Neutral),
            marker(NOON + 120_000, "advance", Tone::Good),
            marker(NOON + 180_000, "breach <5%", Tone::Bad),
            marker(NOON + 86_400_000, "later", Tone::Bad),
        ];
        let svg = render(&[series("a", &[1.0, 2.0, 3.0, 4.0])], &markers, "");
        let colour = |label: &str| {
            let g = svg.split(&format!("data-marker=\"{label}\"")).nth(1).expect(label);
            g.split("stroke=\"").nth(1).and_then(|s| s.split('"').next()).map(str::to_owned)
        };
        let colours = [colour("step 10%"), colour("advance"), colour("breach &lt;5%")];
        assert!(colours.iter().all(Option::is_some));
        assert!(colours[0] != colours[1] && colours[1] != colours[2] && colours[0] != colours[2]);
        assert!(!svg.contains("later") && svg.contains("stroke-dasharray"));
    }

    #[test]
    fn single_point_is_a_circle() {
        let svg = render(&[series("one", &[42.0])], &[], "");
        assert!(svg.contains("<circle data-series=\"one\""));
        assert!(!svg.contains("<polyline") && svg.contains(">12:00<"));
    }
}
