//! The evidence lines `check --explain` prints under a finding.

use crate::report::ReportFinding;

/// Appends `expected`, `observed` and one `consulted` line per object to a finding's line.
pub fn append(text: &mut String, f: &ReportFinding, colour: bool) {
    let label = |s: &str| {
        if colour {
            format!("\x1b[2m{s:<9}\x1b[0m")
        } else {
            format!("{s:<9}")
        }
    };
    let e = &f.evidence;
    let indent = " ".repeat(15);
    text.push_str(&format!("\n{indent}{} {}", label("expected"), e.expected));
    text.push_str(&format!("\n{indent}{} {}", label("observed"), e.observed));
    for o in &e.objects {
        let rv = o
            .resource_version
            .as_ref()
            .map(|rv| format!(" (resourceVersion {rv})"))
            .unwrap_or_default();
        text.push_str(&format!(
            "\n{indent}{} {} {}{rv}",
            label("consulted"),
            o.api_version,
            o.describe()
        ));
    }
    if let Some(x) = &f.exemption {
        let mut terms = vec![format!("exemption {}", x.state.as_str())];
        terms.extend(x.until.as_ref().map(|u| format!("until {u}")));
        terms.extend(x.reason.as_ref().map(|r| format!("reason: {r}")));
        text.push_str(&format!("\n{indent}{} {}", label("exempt"), terms.join(", ")));
    }
}
