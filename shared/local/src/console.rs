//! [`ConsoleChat`]: the chat destination of `firewatch dev` when no chat
//! platform is configured. Cards and thread replies are printed readably to
//! standard output, so a new user sees the whole flow in the terminal.
//!
//! Every line starts with its incident's short id (the last six characters
//! of `inc_…`), so two threads that interleave stay apart. A message that
//! is edited in place on a platform (a playbook run's) prints whole once,
//! then one line per edit. A card is printed again only when what it shows
//! changed (its state, severity or count), not after every reply.

use async_trait::async_trait;
use firewatch_domain::chat::{card_text, ChatClient, ChatError};
use firewatch_types::{Card, ChatMessage, Destination, ThreadRef};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Prints to standard output.
#[derive(Default)]
pub struct ConsoleChat {
    seq: AtomicU64,
    /// The card line each thread last showed, by root id.
    cards: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// The one line that says what a card shows now.
fn card_line(card: &Card) -> String {
    format!(
        "│ card now: [{}] {} · seen {}× · {}",
        card.severity, card.state, card.occurrences, card.incident_id
    )
}

impl ConsoleChat {
    /// Remembers `line` as the thread's card; false when it already was.
    fn card_changed(&self, root_id: &str, line: String) -> bool {
        let mut cards = self.cards.lock().unwrap_or_else(|p| p.into_inner());
        cards.insert(root_id.to_owned(), line.clone()).as_ref() != Some(&line)
    }
}

/// Prints `text`, each line tagged with the thread's short id.
fn print(tag: &str, text: &str) {
    // A closed stdout must not take the server down.
    let mut out = std::io::stdout().lock();
    for line in text.lines() {
        let _ = writeln!(out, "{tag} {line}");
    }
    let _ = out.flush();
}

/// The short id of an incident: the last six characters of its id.
fn short(id: &str) -> &str {
    &id[id.len().saturating_sub(6)..]
}

/// The short id a thread was posted with (`console-<n>-<short id>`).
fn tag_of(t: &ThreadRef) -> &str {
    t.root_id
        .strip_prefix("console-")
        .and_then(|r| r.split_once('-'))
        .map_or("??????", |(_, tag)| tag)
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| format!("{prefix}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[async_trait]
impl ChatClient for ConsoleChat {
    async fn post_root(&self, dest: &Destination, card: &Card) -> Result<ThreadRef, ChatError> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let tag = short(card.incident_id.as_str());
        print(
            tag,
            &format!(
                "┌─ new incident thread ─────────────\n{}",
                indent(&card_text(card), "│ ")
            ),
        );
        let root_id = format!("console-{n}-{tag}");
        self.card_changed(&root_id, card_line(card));
        Ok(ThreadRef {
            destination: dest.clone(),
            root_id,
            thread_id: None,
        })
    }

    async fn update_root(&self, t: &ThreadRef, card: &Card) -> Result<(), ChatError> {
        let line = card_line(card);
        if self.card_changed(&t.root_id, line.clone()) {
            print(tag_of(t), &line);
        }
        Ok(())
    }

    async fn reply(&self, t: &ThreadRef, text: &str) -> Result<(), ChatError> {
        // Later lines of a multi-line reply (a triage report) stay in the thread.
        let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
        if rest.is_empty() {
            print(tag_of(t), &format!("├─ {first}"));
        } else {
            print(tag_of(t), &format!("├─ {first}\n{}", indent(rest, "│  ")));
        }
        Ok(())
    }

    async fn post_message(&self, t: &ThreadRef, m: &ChatMessage) -> Result<String, ChatError> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        print(
            tag_of(t),
            &format!("├─┬─ message {n}\n{}", indent(&message_text(m), "│ │ ")),
        );
        Ok(format!("console-message-{n}"))
    }

    async fn edit_message(
        &self,
        t: &ThreadRef,
        id: &str,
        m: &ChatMessage,
    ) -> Result<(), ChatError> {
        // The thread's reply already says what changed: one line, not the
        // whole message again.
        let n = id.trim_start_matches("console-message-");
        let first = m.text.lines().next().unwrap_or("");
        let buttons: Vec<String> = m.buttons.iter().map(|b| format!("[{}]", b.label)).collect();
        print(
            tag_of(t),
            format!("├─ message {n} now: {first} {}", buttons.join(" ")).trim_end(),
        );
        Ok(())
    }
}

/// A message as text, its buttons on the last line as in a card.
fn message_text(m: &ChatMessage) -> String {
    if m.buttons.is_empty() {
        return m.text.clone();
    }
    let buttons: Vec<String> = m.buttons.iter().map(|b| format!("[{}]", b.label)).collect();
    format!("{}\n{}", m.text, buttons.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_is_told_apart_by_its_incident_s_short_id() {
        let t = ThreadRef {
            destination: Destination::Console,
            root_id: "console-3-S3KRXG".into(),
            thread_id: None,
        };
        assert_eq!(tag_of(&t), "S3KRXG");
        assert_eq!(short("inc_01M857S83EPTFJ121N1AS3KRXG"), "S3KRXG");
        let old = ThreadRef {
            root_id: "console-3".into(),
            ..t
        };
        assert_eq!(
            tag_of(&old),
            "??????",
            "a thread from before tags were kept"
        );
    }

    #[test]
    fn a_card_prints_again_only_when_what_it_shows_changed() {
        let chat = ConsoleChat::default();
        assert!(chat.card_changed("console-1-A", "open 1×".into()));
        assert!(!chat.card_changed("console-1-A", "open 1×".into()));
        assert!(
            chat.card_changed("console-2-B", "open 1×".into()),
            "another thread"
        );
        assert!(chat.card_changed("console-1-A", "acknowledged 1×".into()));
    }
}
