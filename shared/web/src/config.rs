//! Process configuration from environment variables, validated at start with
//! a message naming the variable that is missing or wrong.

use firewatch_domain::Settings;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (Lambda, CloudWatch Logs Insights).
    Json,
    /// Human-readable lines (`firewatch dev`).
    Pretty,
}

/// Configuration shared by every binary.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    /// `FIREWATCH_LOG` (targets and levels, `firewatch_ingest=debug,info`;
    /// default `info`).
    pub log_filter: String,
    /// `FIREWATCH_LOG_FORMAT` = `json` | `pretty`.
    pub log_format: LogFormat,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env(default_format: LogFormat) -> Result<Self, String> {
        Self::from_vars(|k| std::env::var(k).ok(), default_format)
    }

    /// Reads through `var`; for tests.
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
        default_format: LogFormat,
    ) -> Result<Self, String> {
        let log_format = match var("FIREWATCH_LOG_FORMAT").as_deref() {
            None | Some("") => default_format,
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(format!(
                    "FIREWATCH_LOG_FORMAT must be json or pretty, got {other:?}"
                ))
            }
        };
        Ok(Self {
            settings: Settings::from_vars(&var)?,
            log_filter: var("FIREWATCH_LOG").unwrap_or_else(|| "info".into()),
            log_format,
        })
    }
}

/// Installs the global tracing subscriber once; later calls do nothing.
/// `FIREWATCH_LOG` is a list of targets and levels (`info`,
/// `firewatch_ingest=debug,info`); one that does not parse means `info`.
pub fn init_tracing(config: &Config) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    // Targets, not EnvFilter: no regex engine in every Lambda for a filter
    // that never needs one.
    let filter: Targets = config
        .log_filter
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO));
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => tracing_subscriber::registry()
            .with(
                layer
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_filter(filter),
            )
            .try_init(),
        LogFormat::Pretty => {
            use std::io::IsTerminal;
            tracing_subscriber::registry()
                .with(
                    layer
                        .compact()
                        .with_ansi(std::io::stderr().is_terminal())
                        .with_filter(filter),
                )
                .try_init()
        }
    };
}
