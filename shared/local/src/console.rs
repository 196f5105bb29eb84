//! [`ConsoleChat`]: the chat destination of `firewatch dev` when no chat
//! platform is configured. Cards and thread replies are printed readably to
//! standard output, so a new user sees the whole flow in the terminal.

use async_trait::async_trait;
use firewatch_domain::chat::{card_text, ChatClient, ChatError};
use firewatch_types::{Card, ChatMessage, Destination, ThreadRef};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Prints to standard output.
#[derive(Default)]
pub struct ConsoleChat {
    seq: AtomicU64,
}

fn print(text: &str) {
    // A closed stdout must not take the server down.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
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
        print(&format!(
            "\n┌─ new incident thread ─────────────\n{}",
            indent(&card_text(card), "│ ")
        ));
        Ok(ThreadRef {
            destination: dest.clone(),
            root_id: format!("console-{n}"),
            thread_id: None,
        })
    }

    async fn update_root(&self, _t: &ThreadRef, card: &Card) -> Result<(), ChatError> {
        print(&format!(
            "│ card now: [{}] {} · seen {}× · {}",
            card.severity, card.state, card.occurrences, card.incident_id
        ));
        Ok(())
    }

    async fn reply(&self, _t: &ThreadRef, text: &str) -> Result<(), ChatError> {
        // Later lines of a multi-line reply (a triage report) stay in the thread.
        let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
        if rest.is_empty() {
            print(&format!("├─ {first}"));
        } else {
            print(&format!("├─ {first}\n{}", indent(rest, "│  ")));
        }
        Ok(())
    }

    async fn post_message(&self, t: &ThreadRef, m: &ChatMessage) -> Result<String, ChatError> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        print(&format!(
            "├─┬─ message {n}\n{}",
            indent(&message_text(m), "│ │ ")
        ));
        let _ = t;
        Ok(format!("console-message-{n}"))
    }

    async fn edit_message(
        &self,
        _t: &ThreadRef,
        id: &str,
        m: &ChatMessage,
    ) -> Result<(), ChatError> {
        let n = id.trim_start_matches("console-message-");
        print(&format!(
            "├─┬─ message {n} now\n{}",
            indent(&message_text(m), "│ │ ")
        ));
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
