//! Cards as Slack Block Kit, with every piece of alert text escaped for
//! Slack's mrkdwn (so `<!channel>` or `<https://evil|click>` in a label is
//! shown, not obeyed) and cut to the limits Slack documents for each field,
//! so no alert can make a card `invalid_blocks`.

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
        let field = format!("*{}*\n{}", escape(k), escape(v));
        fields.push(json!({"type": "mrkdwn", "text": truncate(&field, FIELD_MAX)}));
    }
    let mut facts = json!({"type": "section", "fields": fields});
    if let Some(s) = &c.summary {
        facts["text"] = json!({"type": "mrkdwn", "text": truncate(&escape(s), SECTION_MAX)});
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&c.title, 150), "emoji": true}}),
        facts,
    ];
    let links: Vec<String> = c
        .links
        .iter()
        .take(MAX_LINKS)
        .map(|l| {
            let text = truncate(l.text.as_deref().unwrap_or("link"), LINK_TEXT_MAX);
            link(&l.href, &text)
        })
        .collect();
    let mut context = vec![
        json!({"type": "mrkdwn", "text": format!("`{}` · opened <!date^{}^{{date_short_pretty}} {{time}}|{}>", c.incident_id, c.opened_at.timestamp(), c.opened_at.to_rfc3339())}),
    ];
    if !links.is_empty() {
        context.push(json!({"type": "mrkdwn", "text": truncate_links(&links)}));
    }
    // A context block holds at most 10 elements.
    for n in c.notices.iter().take(8) {
        context.push(json!({"type": "mrkdwn", "text": truncate(&escape(n), FIELD_MAX)}));
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

/// A message with buttons as blocks: its text in a section, its buttons in
/// one actions block.
pub fn message_blocks(m: &firewatch_types::ChatMessage) -> Vec<Value> {
    let mut blocks = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": escaped_within(&m.text, SECTION_MAX)}
    })];
    if !m.buttons.is_empty() {
        let elements: Vec<Value> = m
            .buttons
            .iter()
            .take(MAX_BUTTONS)
            .enumerate()
            .map(|(i, b)| {
                json!({
                    "type": "button",
                    "text": {"type": "plain_text", "text": truncate(&b.label, BUTTON_TEXT_MAX)},
                    "action_id": format!("fw_{}_{i}", b.action.as_str()),
                    "value": b.payload,
                })
            })
            .collect();
        blocks.push(
            json!({"type": "actions", "block_id": "fw_message_actions", "elements": elements}),
        );
    }
    blocks
}

/// `s` escaped, cut so that the escaped text stays within `max` characters.
fn escaped_within(s: &str, max: usize) -> String {
    let escaped = escape(s);
    if escaped.chars().count() <= max {
        return escaped;
    }
    let mut out = String::new();
    let mut len = 0;
    for c in s.chars() {
        let e = escape(c.encode_utf8(&mut [0; 4]));
        let n = e.chars().count();
        if len + n > max - 1 {
            break;
        }
        out.push_str(&e);
        len += n;
    }
    out.push('…');
    out
}

/// A section's text, a button's text, and the elements of an actions block
/// (Slack's documented limits).
const SECTION_MAX: usize = 3000;
const BUTTON_TEXT_MAX: usize = 75;
const MAX_BUTTONS: usize = 25;

/// Slack's limits: a section field's text, a context element's text, and
/// how many links a card shows.
const FIELD_MAX: usize = 2000;
const CONTEXT_MAX: usize = 2000;
const MAX_LINKS: usize = 8;
const LINK_TEXT_MAX: usize = 100;
/// A message's `text`: Slack truncates past 40,000 characters and advises
/// 4,000; replies and fallbacks are cut there.
pub const TEXT_MAX: usize = 4000;

/// Escapes the three characters Slack's mrkdwn treats as control: `&`, `<`
/// and `>` (as Slack documents in "Escaping text").
pub fn escape(s: &str) -> String {
    if !s.contains(['&', '<', '>']) {
        return s.to_owned();
    }
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Text for a message's `text` field: escaped and cut to [`TEXT_MAX`].
pub fn message_text(s: &str) -> String {
    escape(&truncate(s, TEXT_MAX))
}

/// A URL inside `<url|text>`: the characters that would end or split the
/// link are percent-encoded, `&` escaped as Slack asks.
fn link_target(href: &str) -> String {
    href.replace('&', "&amp;")
        .replace('|', "%7C")
        .replace('<', "%3C")
        .replace('>', "%3E")
        .replace(' ', "%20")
}

/// A link of an alert as mrkdwn: `<url|text>` for a web URL only. Any other
/// target (`!channel`, `@U024BE7LH`, `!subteam^S0`, `#C0`) would make the
/// angle brackets a mention, so it is shown as text instead.
fn link(href: &str, text: &str) -> String {
    let web = ["https://", "http://"]
        .iter()
        .any(|s| href.len() > s.len() && href[..s.len()].eq_ignore_ascii_case(s));
    if web {
        format!("<{}|{}>", link_target(href), escape(text))
    } else {
        format!("{}: {}", escape(text), escape(href))
    }
}

/// Joins links into one context element, dropping whole links past the limit.
fn truncate_links(links: &[String]) -> String {
    let mut out = String::new();
    for l in links {
        let sep = if out.is_empty() { "" } else { " · " };
        if out.chars().count() + sep.len() + l.chars().count() > CONTEXT_MAX {
            break;
        }
        out.push_str(sep);
        out.push_str(l);
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_and_links_in_alert_text_are_shown_not_obeyed() {
        assert_eq!(
            escape("<!channel> see <https://evil|click> & run"),
            "&lt;!channel&gt; see &lt;https://evil|click&gt; &amp; run"
        );
        assert_eq!(link_target("https://x/a|b>c"), "https://x/a%7Cb%3Ec");
        assert_eq!(
            link("https://x/?a=1&b=2", "runbook"),
            "<https://x/?a=1&amp;b=2|runbook>"
        );
        for target in [
            "!channel",
            "@U024BE7LH",
            "!subteam^SAZ94GDB8",
            "#C024BE7LH",
            "mailto:x",
        ] {
            let shown = link(target, "see");
            assert!(!shown.contains('<'), "{target} formed markup: {shown}");
        }
    }

    #[test]
    fn messages_keep_their_buttons_and_stay_within_limits() {
        let m = firewatch_types::ChatMessage {
            text: "<!here> ".repeat(1000),
            buttons: (0..30)
                .map(|i| {
                    firewatch_types::Button::to(
                        firewatch_types::ButtonAction::Approve,
                        &"x".repeat(100),
                        &format!("run_{i}"),
                    )
                })
                .collect(),
        };
        let b = message_blocks(&m);
        let text = b[0]["text"]["text"].as_str().unwrap();
        assert!(text.chars().count() <= SECTION_MAX && !text.contains("<!here>"));
        let elements = b[1]["elements"].as_array().unwrap();
        assert_eq!(elements.len(), MAX_BUTTONS);
        assert!(
            elements[0]["text"]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count()
                <= BUTTON_TEXT_MAX
        );
        assert_eq!(elements[3]["value"], "fw1:approve:run_3");
    }

    #[test]
    fn oversized_text_is_cut_to_slacks_limits() {
        assert_eq!(message_text(&"x".repeat(50_000)).chars().count(), TEXT_MAX);
        let links: Vec<String> = (0..100)
            .map(|i| format!("<https://x/{i}|{}>", "l".repeat(90)))
            .collect();
        assert!(truncate_links(&links).chars().count() <= CONTEXT_MAX);
    }
}
