//! Small SVG pieces shared by the page's sections: the hatch patterns every chart refers
//! to, horizontal bar charts, inline bars, and number formatting for coordinates.
//!
//! SVG elements are always written with an explicit end tag (`line ... {}`): inside `<svg>`
//! the HTML parser treats a start tag without `/>` as open, so a void-style `<line>` would
//! swallow the elements after it.

use maud::{html, Markup};

/// A coordinate with at most one decimal, no trailing ".0" (keeps big pages small).
pub fn c(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r.fract() == 0.0 {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

/// `[a-z0-9-]` only: a report string used as part of a CSS class name.
pub fn class_part(s: &str) -> String {
    s.chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() {
                ch.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// The patterns charts fill with (`url(#hatch)`...): one hidden, zero-size SVG at the top of
/// the body, so every inline SVG of the page can refer to them by id.
pub fn defs() -> Markup {
    html! {
        svg.defs width="0" height="0" aria-hidden="true" focusable="false" {
            defs {
                pattern #hatch width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)" {
                    rect width="6" height="6" fill="#fff" {}
                    line x1="0" y1="0" x2="0" y2="6" stroke="#D55E00" stroke-width="3" {}
                }
                pattern #dots width="6" height="6" patternUnits="userSpaceOnUse" {
                    rect width="6" height="6" fill="#fff" {}
                    circle cx="3" cy="3" r="1.6" fill="#CC79A7" {}
                }
                // Segment/message maps: coalescing segments, split messages, gaps.
                pattern #p-coal width="7" height="7" patternUnits="userSpaceOnUse" patternTransform="rotate(45)" {
                    rect width="7" height="7" fill="#fbe3b0" {}
                    line x1="0" y1="0" x2="0" y2="7" stroke="#E69F00" stroke-width="3" {}
                }
                pattern #p-split width="6" height="6" patternUnits="userSpaceOnUse" {
                    rect width="6" height="6" fill="#e6f4fc" {}
                    line x1="1.5" y1="0" x2="1.5" y2="6" stroke="#56B4E9" stroke-width="3" {}
                }
                pattern #p-gap width="8" height="8" patternUnits="userSpaceOnUse" {
                    rect width="8" height="8" fill="#eee" {}
                    path d="M0 0L8 8M8 0L0 8" stroke="#888" stroke-width="1" {}
                }
                pattern #vstripe width="5" height="5" patternUnits="userSpaceOnUse" {
                    rect width="5" height="5" fill="#fff" {}
                    line x1="1" y1="0" x2="1" y2="5" stroke="#56B4E9" stroke-width="2" {}
                }
            }
        }
    }
}

/// A horizontal bar chart: one row per `(label, count, extra class)`, bars scaled to the
/// largest count, each labelled with its count and its share of `total`.
pub fn bar_chart(kind: &str, rows: &[(&str, u64, &str)], total: u64) -> Markup {
    const ROW: f64 = 20.0;
    const LABEL_W: f64 = 150.0;
    const BAR_W: f64 = 230.0;
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let h = ROW * rows.len().max(1) as f64 + 4.0;
    let w = LABEL_W + BAR_W + 130.0;
    let total = total.max(1);
    html! {
        svg class=(format!("bars bars-{}", class_part(kind))) viewBox=(format!("0 0 {} {}", c(w), c(h))) width=(c(w)) height=(c(h)) role="img" aria-label=(format!("{kind} counts")) {
            @for (i, (label, count, extra)) in rows.iter().enumerate() {
                @let y = 2.0 + ROW * i as f64;
                @let bw = if *count == 0 { 0.0 } else { (BAR_W * *count as f64 / max as f64).max(1.5) };
                g class=(format!("bar b-{} {}", class_part(label), extra)) {
                    title { (label) ": " (super::n(*count)) }
                    text.lbl x=(c(LABEL_W - 6.0)) y=(c(y + 14.0)) text-anchor="end" { (label) }
                    rect x=(c(LABEL_W)) y=(c(y + 3.0)) width=(c(bw)) height=(c(ROW - 6.0)) {}
                    text.cnt x=(c(LABEL_W + bw + 5.0)) y=(c(y + 14.0)) {
                        (super::n(*count)) " (" (format!("{:.1}", *count as f64 * 100.0 / total as f64)) "%)"
                    }
                }
            }
        }
    }
}

/// A small bar for a table cell, `v` out of `max`.
pub fn inline_bar(v: u64, max: u64) -> Markup {
    let w = 120.0 * v as f64 / max.max(1) as f64;
    html! {
        svg.ibar width="120" height="10" viewBox="0 0 120 10" aria-hidden="true" {
            rect x="0" y="1" width=(c(w)) height="8" {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_and_classes() {
        assert_eq!(c(3.0), "3");
        assert_eq!(c(12.34), "12.3");
        assert_eq!(c(12.36), "12.4");
        assert_eq!(c(-0.04), "0");
        assert_eq!(class_part("SYN|ACK <x>"), "syn-ack--x-");
    }

    #[test]
    fn svg_elements_are_closed() {
        let s = bar_chart("t", &[("a", 1, ""), ("b", 0, "")], 1).into_string();
        assert!(s.contains("<rect "));
        assert_eq!(s.matches("<rect").count(), s.matches("</rect>").count());
    }
}
