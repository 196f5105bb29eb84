//! [`BedrockLlm`] (feature `bedrock`): the `Llm` port over Amazon Bedrock's
//! Converse API (aws-sdk-bedrockruntime). The report is requested as a call
//! of one tool whose input schema is the report's JSON schema
//! (`toolConfig`, with `toolChoice` naming it); a text answer holding the
//! JSON object is accepted too. The SDK's own retries are off: the domain's
//! policy (`ASSISTED_RETRY_MAX_ATTEMPTS`) decides what is retried.

use async_trait::async_trait;
use aws_sdk_bedrockruntime::error::{DisplayErrorContext, SdkError};
use aws_sdk_bedrockruntime::operation::converse::ConverseError;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, ConverseOutput, InferenceConfiguration, Message,
    SpecificToolChoice, SystemContentBlock, Tool, ToolChoice, ToolConfiguration, ToolInputSchema,
    ToolSpecification,
};
use aws_smithy_types::{Document, Number};
use firewatch_domain::ports::{Llm, LlmAnswer, LlmError, LlmRequest};
use firewatch_types::TokenUsage;
use serde_json::Value;

pub use aws_sdk_bedrockruntime::Client as BedrockClient;

/// A model on Bedrock, by id (`anthropic.claude-3-5-sonnet-20240620-v1:0`,
/// an inference profile id or ARN).
pub struct BedrockLlm {
    client: BedrockClient,
    model_id: String,
    /// The SDK configuration's credentials, checked by
    /// `GET /v1/triage/provider` without calling the model.
    credentials: Option<aws_sdk_bedrockruntime::config::SharedCredentialsProvider>,
}

impl BedrockLlm {
    pub fn new(client: BedrockClient, model_id: impl Into<String>) -> Self {
        Self {
            client,
            model_id: model_id.into(),
            credentials: None,
        }
    }

    /// The credentials provider to check (the SDK configuration's).
    pub fn with_credentials(
        mut self,
        credentials: Option<aws_sdk_bedrockruntime::config::SharedCredentialsProvider>,
    ) -> Self {
        self.credentials = credentials;
        self
    }
}

/// A Bedrock Runtime client in `region` (default the SDK's), at `endpoint`
/// when given (tests), without SDK retries.
pub fn bedrock_client(
    sdk: &aws_config::SdkConfig,
    region: Option<&str>,
    endpoint: Option<&str>,
) -> BedrockClient {
    let mut b = aws_sdk_bedrockruntime::config::Builder::from(sdk)
        .retry_config(aws_config::retry::RetryConfig::disabled());
    if let Some(r) = region {
        b = b.region(aws_config::Region::new(r.to_owned()));
    }
    if let Some(e) = endpoint {
        b = b.endpoint_url(e);
    }
    BedrockClient::from_conf(b.build())
}

fn to_document(v: &Value) -> Document {
    match v {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => Document::Number(match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Number::PosInt(u),
            (None, Some(i)) => Number::NegInt(i),
            _ => Number::Float(n.as_f64().unwrap_or(0.0)),
        }),
        Value::String(s) => Document::String(s.clone()),
        Value::Array(a) => Document::Array(a.iter().map(to_document).collect()),
        Value::Object(m) => {
            Document::Object(m.iter().map(|(k, v)| (k.clone(), to_document(v))).collect())
        }
    }
}

fn from_document(d: &Document) -> Value {
    match d {
        Document::Null => Value::Null,
        Document::Bool(b) => Value::Bool(*b),
        Document::Number(Number::PosInt(u)) => Value::from(*u),
        Document::Number(Number::NegInt(i)) => Value::from(*i),
        Document::Number(Number::Float(f)) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        Document::String(s) => Value::String(s.clone()),
        Document::Array(a) => Value::Array(a.iter().map(from_document).collect()),
        Document::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), from_document(v)))
                .collect(),
        ),
    }
}

fn classify(e: SdkError<ConverseError>) -> LlmError {
    let text = DisplayErrorContext(&e).to_string();
    match &e {
        SdkError::TimeoutError(_) => LlmError::Timeout,
        SdkError::DispatchFailure(d) if d.is_timeout() => LlmError::Timeout,
        SdkError::DispatchFailure(_) => LlmError::Unavailable(text),
        SdkError::ServiceError(s) => match s.err() {
            ConverseError::ThrottlingException(_) => LlmError::Throttled(text),
            ConverseError::InternalServerException(_)
            | ConverseError::ServiceUnavailableException(_)
            | ConverseError::ModelNotReadyException(_) => LlmError::Server(text),
            ConverseError::ModelTimeoutException(_) => LlmError::Timeout,
            _ => LlmError::Refused(text),
        },
        SdkError::ResponseError(_) => LlmError::Server(text),
        _ => LlmError::Refused(text),
    }
}

#[async_trait]
impl Llm for BedrockLlm {
    fn provider(&self) -> &'static str {
        "bedrock"
    }

    fn model(&self) -> String {
        self.model_id.clone()
    }

    async fn credentials(&self) -> Result<String, String> {
        use aws_sdk_bedrockruntime::config::ProvideCredentials;
        let Some(p) = &self.credentials else {
            return Err("no AWS credentials provider is configured".into());
        };
        match p.provide_credentials().await {
            Ok(_) => Ok("AWS credentials resolve (not shown)".into()),
            Err(e) => Err(format!("AWS credentials do not resolve: {e}")),
        }
    }

    async fn complete(&self, req: &LlmRequest) -> Result<LlmAnswer, LlmError> {
        let bad = |e: aws_sdk_bedrockruntime::error::BuildError| LlmError::Refused(e.to_string());
        let message = Message::builder()
            .role(ConversationRole::User)
            .content(ContentBlock::Text(req.prompt.clone()))
            .build()
            .map_err(bad)?;
        let spec = ToolSpecification::builder()
            .name(req.tool_name)
            .description("Record the triage report.")
            .input_schema(ToolInputSchema::Json(to_document(&req.schema)))
            .build()
            .map_err(bad)?;
        let tools = ToolConfiguration::builder()
            .tools(Tool::ToolSpec(spec))
            .tool_choice(ToolChoice::Tool(
                SpecificToolChoice::builder()
                    .name(req.tool_name)
                    .build()
                    .map_err(bad)?,
            ))
            .build()
            .map_err(bad)?;
        let out = self
            .client
            .converse()
            .model_id(&self.model_id)
            .system(SystemContentBlock::Text(req.system.clone()))
            .messages(message)
            .inference_config(
                InferenceConfiguration::builder()
                    .max_tokens(i32::try_from(req.max_tokens).unwrap_or(i32::MAX))
                    .temperature(0.0)
                    .build(),
            )
            .tool_config(tools)
            .send()
            .await
            .map_err(classify)?;
        let usage = out
            .usage()
            .map(|u| TokenUsage {
                input_tokens: u64::try_from(u.input_tokens()).unwrap_or(0),
                output_tokens: u64::try_from(u.output_tokens()).unwrap_or(0),
            })
            .unwrap_or_default();
        let Some(ConverseOutput::Message(m)) = out.output() else {
            return Err(LlmError::Invalid("the answer holds no message".into()));
        };
        let mut answer = LlmAnswer {
            usage,
            ..Default::default()
        };
        for block in m.content() {
            match block {
                ContentBlock::ToolUse(t) if t.name() == req.tool_name => {
                    answer.json = Some(from_document(t.input()));
                }
                ContentBlock::Text(t) => {
                    answer.text.get_or_insert_with(String::new).push_str(t);
                }
                _ => {}
            }
        }
        if answer.json.is_none() && answer.text.as_deref().is_none_or(|t| t.trim().is_empty()) {
            return Err(LlmError::Invalid(
                "the answer has neither a tool call nor text".into(),
            ));
        }
        Ok(answer)
    }
}
