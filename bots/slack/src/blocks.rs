//! Cards as Slack Block Kit.

use firewatch_types::{Card, Severity};
use serde_json::{json, Value};

fn severity_emoji(s: Severity) -> &'static str {
    match s {
        Severity::Sev1 => ":red_circle:",
        Severity::Sev2 => ":large_orange_circle:",
        Severity::Sev3 => ":large_yellow_circle:",
        Severity::Sev4 => ":white_circle:",
    }
}

/// The card's blocks: a header, the facts, links, and the buttons. Each
/// button carries the card's opaque payload as `value`.
pub fn card_blocks(c: &Card) -> Vec<Value> {
    let mut fields = vec![
        json!({"type": "mrkdwn", "text": format!("*Severity*\n{} {}", severity_emoji(c.severity), c.severity)}),
        json!({"type": "mrkdwn", "text": format!("*State*\n{}", c.state)}),
        json!({"type": "mrkdwn", "text": format!("*Source*\n{}", c.source)}),
        json!({"type": "mrkdwn", "text": format!("*Seen*\n{}×", c.occurrences)}),
    ];
    for (k, v) in c.key_labels.iter().take(4) {
        fields.push(json!({"type": "mrkdwn", "text": format!("*{k}*\n{v}")}));
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&c.title, 150), "emoji": true}}),
        json!({"type": "section", "fields": fields}),
    ];
    let links: Vec<String> = c
        .links
        .iter()
        .map(|l| format!("<{}|{}>", l.href, l.text.as_deref().unwrap_or("link")))
        .collect();
    let mut context = vec![
        json!({"type": "mrkdwn", "text": format!("`{}` · opened <!date^{}^{{date_short_pretty}} {{time}}|{}>", c.incident_id, c.opened_at.timestamp(), c.opened_at.to_rfc3339())}),
    ];
    if !links.is_empty() {
        context.push(json!({"type": "mrkdwn", "text": links.join(" · ")}));
    }
    blocks.push(json!({"type": "context", "elements": context}));
    if !c.buttons.is_empty() {
        let elements: Vec<Value> = c
            .buttons
            .iter()
            .map(|b| {
                let mut e = json!({
                    "type": "button",
                    "text": {"type": "plain_text", "text": b.label},
                    "action_id": format!("fw_{}", b.action.as_str()),
                    "value": b.payload,
                });
                if b.action == firewatch_types::ButtonAction::Ack {
                    e["style"] = json!("primary");
                }
                e
            })
            .collect();
        blocks.push(json!({"type": "actions", "block_id": "fw_actions", "elements": elements}));
    }
    blocks
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}
