//! [`OpenAiCompatibleLlm`]: the `Llm` port over the OpenAI chat completions
//! API, which Azure OpenAI, vLLM, llama.cpp's server and Ollama also speak.
//! The report is asked for as a call of one function tool (its JSON schema
//! as the parameters); a text answer holding the JSON object is accepted
//! too.

use async_trait::async_trait;
use firewatch_domain::ports::{Llm, LlmAnswer, LlmError, LlmRequest};
use firewatch_types::TokenUsage;
use serde_json::{json, Value};

/// An OpenAI-compatible chat completions endpoint.
pub struct OpenAiCompatibleLlm {
    client: reqwest::Client,
    /// `OPENAI_BASE_URL`, e.g. `https://api.openai.com/v1`,
    /// `http://localhost:11434/v1` (Ollama).
    base_url: String,
    api_key: Option<String>,
    model: String,
}

impl OpenAiCompatibleLlm {
    pub fn new(base_url: &str, api_key: Option<String>, model: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(std::time::Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.filter(|k| !k.is_empty()),
            model: model.to_owned(),
        }
    }
}

fn excerpt(text: &str) -> String {
    let mut cut = text.len().min(300);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    firewatch_domain::redact::redact_text(&text[..cut])
}

#[async_trait]
impl Llm for OpenAiCompatibleLlm {
    fn provider(&self) -> &'static str {
        "openai_compatible"
    }

    fn model(&self) -> String {
        self.model.clone()
    }

    async fn credentials(&self) -> Result<String, String> {
        match (&self.api_key, self.base_url.starts_with("https://api.openai.com")) {
            (Some(_), _) => Ok("OPENAI_API_KEY is set (not shown)".into()),
            (None, true) => Err("OPENAI_API_KEY is not set, and api.openai.com needs one".into()),
            (None, false) => Ok("no OPENAI_API_KEY is set: fine for a server that asks none (Ollama, llama.cpp, vLLM)".into()),
        }
    }

    async fn complete(&self, req: &LlmRequest) -> Result<LlmAnswer, LlmError> {
        let body = json!({
            "model": self.model,
            "temperature": 0,
            "max_tokens": req.max_tokens,
            "messages": [
                {"role": "system", "content": req.system},
                {"role": "user", "content": req.prompt},
            ],
            "tools": [{"type": "function", "function": {
                "name": req.tool_name,
                "description": "Record the triage report.",
                "parameters": req.schema,
            }}],
            "tool_choice": {"type": "function", "function": {"name": req.tool_name}},
        });
        let mut b = self
            .client
            .post(format!("{}/chat/completions", self.base_url))
            .json(&body);
        if let Some(k) = &self.api_key {
            b = b.bearer_auth(k).header("api-key", k);
        }
        let res = b.send().await.map_err(|e| {
            if e.is_timeout() {
                LlmError::Timeout
            } else {
                LlmError::Unavailable(if e.is_connect() {
                    "could not connect".into()
                } else {
                    "request failed".into()
                })
            }
        })?;
        let status = res.status().as_u16();
        let text = res
            .text()
            .await
            .map_err(|_| LlmError::Server("the answer broke off".into()))?;
        match status {
            200..=299 => {}
            429 => return Err(LlmError::Throttled(excerpt(&text))),
            500..=599 => return Err(LlmError::Server(format!("{status}: {}", excerpt(&text)))),
            _ => return Err(LlmError::Refused(format!("{status}: {}", excerpt(&text)))),
        }
        let v: Value = serde_json::from_str(&text)
            .map_err(|_| LlmError::Invalid("the answer is not JSON".into()))?;
        let message = &v["choices"][0]["message"];
        let usage = TokenUsage {
            input_tokens: v["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
            output_tokens: v["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        };
        let json = message["tool_calls"]
            .as_array()
            .and_then(|calls| {
                calls
                    .iter()
                    .find(|c| c["function"]["name"] == req.tool_name)
            })
            .and_then(|c| c["function"]["arguments"].as_str())
            .and_then(|args| serde_json::from_str(args).ok());
        let text = message["content"].as_str().map(str::to_owned);
        if json.is_none() && text.as_deref().is_none_or(|t| t.trim().is_empty()) {
            return Err(LlmError::Invalid(
                "the answer has neither a tool call nor text".into(),
            ));
        }
        Ok(LlmAnswer { json, text, usage })
    }
}
