//! Confirms SNS subscriptions by fetching the `SubscribeURL` with reqwest.
//! The domain has already checked the topic and that the URL is an SNS host.

use async_trait::async_trait;
use firewatch_domain::ports::SnsConfirmer;
use std::time::Duration;

/// The real confirmer.
pub struct HttpSnsConfirmer {
    client: reqwest::Client,
}

impl HttpSnsConfirmer {
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            // Never follow a redirect away from the SNS host we checked.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self { client }
    }
}

impl Default for HttpSnsConfirmer {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl SnsConfirmer for HttpSnsConfirmer {
    async fn confirm(&self, subscribe_url: &str) -> Result<(), String> {
        let res = self
            .client
            .get(subscribe_url)
            .send()
            .await
            .map_err(|e| format!("request failed: {}", e.without_url()))?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(format!("SNS answered {}", res.status()))
        }
    }
}
