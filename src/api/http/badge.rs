//! Shields-style SVG badges: this month's availability (green when the target is met so far,
//! red when not, grey without evidence) and the current state.

use crate::{model::State, query::monthly::ProbeMonth};

const GREEN: &str = "#2e7d32";
const RED: &str = "#c62828";
const AMBER: &str = "#ef6c00";
const GREY: &str = "#757575";

/// The availability badge of `probe`.
pub fn availability(probe: &str, month: Option<&ProbeMonth>) -> String {
    let (value, colour) = match month.and_then(|m| m.availability.map(|a| (a, m))) {
        Some((availability, month)) => (
            format!("{availability:.3}%"),
            if availability >= month.target {
                GREEN
            } else {
                RED
            },
        ),
        None => ("no data".to_owned(), GREY),
    };
    render(&format!("{probe} this month"), &value, colour)
}

/// The state badge of `probe`.
pub fn state(probe: &str, state: Option<State>) -> String {
    let state = state.unwrap_or(State::Unknown);
    let colour = match state {
        State::Up => GREEN,
        State::Degraded | State::Maintenance => AMBER,
        State::Down => RED,
        State::Unknown => GREY,
    };
    render(probe, state.as_str(), colour)
}

/// A two-part badge; text widths are estimated (7 px a character at 11 px Verdana).
fn render(label: &str, value: &str, colour: &str) -> String {
    let label = escape(label);
    let value = escape(value);
    let width = |text: &str| 10 + 7 * text.chars().count();
    let (left, right) = (width(&label), width(&value));
    let total = left + right;
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" aria-label="{label}: {value}"><title>{label}: {value}</title><rect width="{left}" height="20" fill="#555"/><rect x="{left}" width="{right}" height="20" fill="{colour}"/><g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11"><text x="{lx}" y="14">{label}</text><text x="{rx}" y="14">{value}</text></g></svg>"##,
        lx = left / 2,
        rx = left + right / 2,
    )
}

/// Text escaped for HTML and SVG (one escaper for the page, badges and printable reports).
pub use crate::render::escape;
