//! A triage report as Markdown, ready to paste into a ticket or a chat
//! (`GET /v1/incidents/{id}/triage/latest?format=markdown`,
//! `firewatch incidents triage --markdown`).

use firewatch_types::{Incident, TriageReport};

/// Keeps a value on one line and out of Markdown's way: line breaks become
/// spaces, and characters that would start markup are escaped.
fn inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' => {
                out.push('\\');
                out.push(ch);
            }
            c => out.push(c),
        }
    }
    out
}

/// The Markdown of report `r` on incident `inc`.
pub fn render(inc: &Incident, r: &TriageReport) -> String {
    let how = match (r.degraded, r.mode.as_str()) {
        (true, _) => "deterministic rules (assisted triage failed)".to_owned(),
        (false, "assisted_bedrock_v1") => {
            "assisted (Bedrock), checked against the rules' facts".to_owned()
        }
        (false, "assisted_openai_v1") => {
            "assisted (OpenAI-compatible model), checked against the rules' facts".to_owned()
        }
        _ => "deterministic rules".to_owned(),
    };
    let mut md = format!("## Triage: {} ({})\n\n", inline(&inc.title), inc.id);
    md.push_str(&format!(
        "**{}** · {} · {} · fired {}× · {} confidence · {how}\n\n",
        inc.severity, inc.state, inc.source, inc.occurrences, r.confidence
    ));
    if !r.summary.is_empty() {
        md.push_str(&format!("**Summary:** {}\n\n", inline(&r.summary)));
    }
    md.push_str(&format!(
        "**Likely cause:** {}\n\n",
        inline(&r.likely_cause)
    ));
    let impact = if r.impact_summary.is_empty() {
        &r.impact
    } else {
        &r.impact_summary
    };
    md.push_str(&format!("**Impact:** {}\n\n", inline(impact)));
    if !r.impacted_consumers.is_empty() {
        let c: Vec<String> = r.impacted_consumers.iter().map(|c| inline(c)).collect();
        md.push_str(&format!("**Impacted:** {}\n\n", c.join(", ")));
    }
    md.push_str("### Next actions\n\n");
    for (n, a) in r.next_actions.iter().enumerate() {
        md.push_str(&format!("{}. {}\n", n + 1, inline(a)));
    }
    if !r.runbook_references.is_empty() {
        md.push_str("\n### Runbooks\n\n");
        for u in &r.runbook_references {
            md.push_str(&format!("- <{}>\n", u.replace(['<', '>', ' '], "")));
        }
    }
    md.push_str(&format!(
        "\n### Facts used\n\n_Confidence: {}_\n\n",
        inline(&r.confidence_reason)
    ));
    if r.facts_used.is_empty() {
        for f in &r.facts {
            md.push_str(&format!("- {}\n", inline(f)));
        }
    } else {
        for f in &r.facts_used {
            md.push_str(&format!(
                "- **{}** ({}, {}): {}\n",
                f.id,
                inline(&f.source),
                inline(&f.field),
                inline(&f.value)
            ));
        }
    }
    if !r.warnings.is_empty() {
        md.push_str("\n### Warnings\n\n");
        for w in &r.warnings {
            md.push_str(&format!("- {}\n", inline(w)));
        }
    }
    let mut footer = format!("\n---\nmode `{}`", r.mode);
    if let Some(id) = &r.id {
        footer.push_str(&format!(" · report `{id}`"));
    }
    if let Some(at) = r.generated_at {
        footer.push_str(&format!(" · {}", at.format("%Y-%m-%d %H:%M UTC")));
    }
    if let Some(u) = r.usage {
        footer.push_str(&format!(
            " · {} tokens in, {} out",
            u.input_tokens, u.output_tokens
        ));
    }
    md.push_str(&footer);
    md.push('\n');
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_alert_text_is_escaped_and_kept_on_one_line() {
        assert_eq!(inline("a *b*\n[c](d) `e`"), "a \\*b\\* \\[c\\](d) \\`e\\`");
    }
}
