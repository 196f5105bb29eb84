//! One chat client per platform, chosen by each call's destination.

use crate::ports::{ChatClient, ChatError};
use firewatch_types::{Card, Destination, ThreadRef};

/// One chat client per platform, chosen by each call's destination.
#[derive(Default, Clone)]
pub struct ChatHub {
    pub console: Option<std::sync::Arc<dyn ChatClient>>,
    pub slack: Option<std::sync::Arc<dyn ChatClient>>,
    pub discord: Option<std::sync::Arc<dyn ChatClient>>,
    pub telegram: Option<std::sync::Arc<dyn ChatClient>>,
}

impl ChatHub {
    fn pick(&self, dest: &Destination) -> Result<&dyn ChatClient, ChatError> {
        let client = match dest {
            Destination::Console => &self.console,
            Destination::Slack { .. } => &self.slack,
            Destination::Discord { .. } => &self.discord,
            Destination::Telegram { .. } => &self.telegram,
        };
        client
            .as_deref()
            .ok_or_else(|| ChatError::Rejected(format!("no chat client is configured for {dest}")))
    }
}

#[async_trait::async_trait]
impl ChatClient for ChatHub {
    async fn post_root(&self, dest: &Destination, card: &Card) -> Result<ThreadRef, ChatError> {
        self.pick(dest)?.post_root(dest, card).await
    }
    async fn update_root(&self, thread: &ThreadRef, card: &Card) -> Result<(), ChatError> {
        self.pick(&thread.destination)?
            .update_root(thread, card)
            .await
    }
    async fn reply(&self, thread: &ThreadRef, text: &str) -> Result<(), ChatError> {
        self.pick(&thread.destination)?.reply(thread, text).await
    }
    async fn reply_mentioning(
        &self,
        thread: &ThreadRef,
        text: &str,
        people: &[String],
    ) -> Result<(), ChatError> {
        self.pick(&thread.destination)?
            .reply_mentioning(thread, text, people)
            .await
    }
    async fn post_message(
        &self,
        thread: &ThreadRef,
        message: &firewatch_types::ChatMessage,
    ) -> Result<String, ChatError> {
        self.pick(&thread.destination)?
            .post_message(thread, message)
            .await
    }
    async fn edit_message(
        &self,
        thread: &ThreadRef,
        id: &str,
        message: &firewatch_types::ChatMessage,
    ) -> Result<(), ChatError> {
        self.pick(&thread.destination)?
            .edit_message(thread, id, message)
            .await
    }
}
