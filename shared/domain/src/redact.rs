//! Removes secrets from anything firewatch stores or shows: raw envelopes,
//! headers, labels, annotations, titles, fingerprints, links, comments and
//! error messages.
//!
//! A value is a secret when its key names one (token, password, ...), when it
//! is the credential of an `Authorization` header of any scheme, a
//! bearer/basic credential, the userinfo of a URL, a secret-named query
//! parameter (`key=`, `sig=`, `token=` ...) or `key=value` pair anywhere in a
//! text, a Slack incoming-webhook path, or a well-known token format found
//! wherever it appears ([`TOKEN_FORMATS`]: AWS access key ids, Slack,
//! GitHub, GitLab, JWTs, Stripe live keys, Google API keys, PEM private
//! keys). Terminal control
//! characters and bidirectional overrides are removed too, so no alert can
//! rewrite an operator's terminal.

use regex_lite::{Captures, Regex};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::LazyLock;

pub const REDACTED: &str = "[REDACTED]";

const SECRET_KEY_PARTS: &[&str] = &[
    "token",
    "password",
    "passwd",
    "secret",
    "authorization",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "routing_key",
    "integration_key",
    "signature",
    "cookie",
    "private_key",
    "credential",
    "session",
];

/// True when a field or header of this name holds a secret.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_KEY_PARTS.iter().any(|p| k.contains(p))
        // `X-Auth`, `x_auth_key`, `auth`: "auth" as a word, not "author".
        || k.split(['-', '_', '.', ' ']).any(|w| w == "auth" || w == "pwd")
}

/// Words that make a `key=value` or `key: value` pair secret when the key
/// ends with one of them.
const SECRET_SUFFIXES: &str = r"password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credentials?|session|signature|sig|cookie|authorization|auth";

/// Well-known token formats, redacted wherever they appear, with no key
/// naming them. One table, after the rules of gitleaks' published rule set
/// (`slack-bot-token` and kin, `github-pat`, `github-oauth`,
/// `github-app-token`, `github-fine-grained-pat`, `gitlab-pat`, `jwt`,
/// `stripe-access-token`, `gcp-api-key`, `aws-access-token`), and proven by
/// the corpus test below. Each row: its name, the lowercase prefixes one of
/// which must appear for the pattern to be tried, and the pattern.
pub const TOKEN_FORMATS: &[(&str, &[&str], &str)] = &[
    ("slack", &["xox"], r"\bxox[abposre]-[0-9A-Za-z-]{10,}"),
    (
        "github",
        &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        r"\bgh[pousr]_[0-9A-Za-z]{36,}",
    ),
    (
        "github-fine-grained",
        &["github_pat_"],
        r"\bgithub_pat_[0-9A-Za-z_]{22,}",
    ),
    ("gitlab", &["glpat-"], r"\bglpat-[0-9A-Za-z_-]{20,}"),
    (
        "jwt",
        &["eyj"],
        r"\beyJ[0-9A-Za-z_-]{8,}\.eyJ[0-9A-Za-z_-]{8,}\.[0-9A-Za-z_-]{8,}",
    ),
    ("stripe", &["_live_"], r"\b[rs]k_live_[0-9A-Za-z]{20,}"),
    ("google-api-key", &["aiza"], r"\bAIza[0-9A-Za-z_-]{35}"),
    (
        "aws-access-key-id",
        &["akia", "asia", "agpa", "aida", "aroa", "anpa", "aipa"],
        r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|AIPA)[A-Z0-9]{16}\b",
    ),
];

/// The lowercase 3- and 4-byte starts of [`TOKEN_FORMATS`] that send a text
/// past [`plainly_clean`].
const TOKEN_STARTS: [&[u8]; 17] = [
    b"xox", b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_", b"gith", b"glpa", b"eyj", b"_liv",
    b"aiza", b"akia", b"asia", b"agpa", b"aida", b"aroa", b"anpa",
];

/// HTTP authentication schemes (IANA's registry and common vendor ones):
/// kept in front of a redacted credential.
const AUTH_SCHEMES: &[&str] = &[
    "basic",
    "bearer",
    "digest",
    "hoba",
    "mutual",
    "negotiate",
    "ntlm",
    "oauth",
    "scram-sha-1",
    "scram-sha-256",
    "vapid",
    "token",
    "apikey",
    "api-key",
    "key",
    "ssws",
    "splunk",
    "geniekey",
    "aws4-hmac-sha256",
    "hmac",
    "signature",
];

/// True for what is already hidden: [`REDACTED`] or a `***NAME***` mask.
fn is_mask(v: &str) -> bool {
    v == REDACTED || (v.len() > 6 && v.starts_with("***") && v.ends_with("***"))
}

struct Rule {
    /// A cheap test on the lowercased text; the regex runs only when it holds.
    applies: fn(&str) -> bool,
    re: Regex,
    replace: fn(&Captures<'_>) -> String,
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let rule = |applies, pattern: &str, replace| Rule {
        applies,
        re: Regex::new(pattern).expect("redaction patterns are valid"),
        replace,
    };
    vec![
        rule(
            |l| l.contains("-----begin") && l.contains("private key"),
            r"(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)",
            |_| REDACTED.to_owned(),
        ),
        // scheme://user:password@host keeps the user; scheme://TOKEN@host
        // (a token as the user) loses it.
        rule(
            |l| l.contains("://") && l.contains('@'),
            r"(?i)\b([a-z][a-z0-9+.-]*://)([^\s/@:?#]*)(:[^\s/@?#]*)?@",
            |c| match c.get(3) {
                Some(_) => format!("{}{}:{REDACTED}@", &c[1], &c[2]),
                None => format!("{}{REDACTED}@", &c[1]),
            },
        ),
        rule(
            |l| l.contains("hooks.slack.com"),
            r"(?i)(hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_-]+",
            |c| format!("{}{REDACTED}", &c[1]),
        ),
        // `Authorization: <any scheme> <credential>` keeps the scheme.
        rule(
            |l| l.contains("authorization"),
            r#"(?i)\b((?:proxy-)?authorization["']?\s*[:=]\s*["']?)([A-Za-z][A-Za-z0-9._-]*)(\s+)([^\s"',;]+)"#,
            |c| format!("{}{}{}{REDACTED}", &c[1], &c[2], &c[3]),
        ),
        // Query parameters that carry credentials by convention.
        rule(
            |l| l.contains('?') || l.contains('&'),
            r"(?i)([?&](?:key|sig|signature|token|access_token|id_token|code|secret|password|apikey|api_key|x-amz-signature|x-amz-credential|auth)=)([^&#\s;]+)",
            |c| {
                if is_mask(&c[2]) {
                    c[0].to_owned()
                } else {
                    format!("{}{REDACTED}", &c[1])
                }
            },
        ),
        rule(
            |l| l.contains("bearer") || l.contains("basic"),
            r"(?i)\b(bearer|basic)(\s+)([A-Za-z0-9._~+/=-]{8,})",
            |c| {
                let token = &c[3];
                // "Basic configuration" is prose; a Basic credential is
                // base64: a digit, `+`, `/`, `=` or mixed case inside it.
                let credential = c[1].eq_ignore_ascii_case("bearer")
                    || token
                        .bytes()
                        .any(|b| b.is_ascii_digit() || b"+/=".contains(&b))
                    || (token.bytes().skip(1).any(|b| b.is_ascii_uppercase())
                        && token.bytes().any(|b| b.is_ascii_lowercase()));
                if credential {
                    format!("{}{}{REDACTED}", &c[1], &c[2])
                } else {
                    c[0].to_owned()
                }
            },
        ),
        rule(
            |l| {
                (l.contains('=') || l.contains(':'))
                    && [
                        "pass",
                        "pwd",
                        "secret",
                        "token",
                        "key",
                        "credential",
                        "session",
                        "sig",
                        "cookie",
                        "auth",
                    ]
                    .iter()
                    .any(|w| l.contains(w))
            },
            &format!(
                r#"(?i)\b([a-z0-9_.-]*(?:{SECRET_SUFFIXES}))(["']?\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s&;,"']+)"#
            ),
            |c| {
                // Already masked, or the scheme the Authorization rule kept
                // before a redacted credential.
                let auth_scheme = c[1].to_ascii_lowercase().ends_with("authorization")
                    && AUTH_SCHEMES.iter().any(|s| c[3].eq_ignore_ascii_case(s));
                if is_mask(&c[3]) || auth_scheme {
                    c[0].to_owned()
                } else {
                    format!("{}{}{REDACTED}", &c[1], &c[2])
                }
            },
        ),
    ]
});

/// [`TOKEN_FORMATS`], compiled once.
static TOKENS: LazyLock<Vec<(&'static [&'static str], Regex)>> = LazyLock::new(|| {
    TOKEN_FORMATS
        .iter()
        .map(|(_, starts, re)| (*starts, Regex::new(re).expect("token formats are valid")))
        .collect()
});

/// True for characters that must never reach a terminal or a chat message:
/// C0/C1 controls other than newline and tab, and bidirectional overrides.
fn is_unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// True when no rule can apply to `s`: no `:`, `=` or `@`, no `-----`,
/// and none of the words a credential starts with. Most label values and
/// titles pass this without an allocation.
fn plainly_clean(s: &str) -> bool {
    const WORDS: [&[u8]; 3] = [b"bear", b"basi", b"aipa"];
    let b = s.as_bytes();
    !b.iter()
        .any(|c| matches!(c, b':' | b'=' | b'@') || !c.is_ascii())
        && !s.contains("-----")
        && !b
            .windows(11)
            .any(|w| w.eq_ignore_ascii_case(b"hooks.slack"))
        && !(0..b.len()).any(|i| {
            WORDS.iter().chain(TOKEN_STARTS.iter()).any(|word| {
                b.get(i..i + word.len())
                    .is_some_and(|w| w.eq_ignore_ascii_case(word))
            })
        })
        && !b
            .iter()
            .any(|c| c.is_ascii_control() && *c != b'\n' && *c != b'\t')
}

/// `s` with every secret it carries replaced by [`REDACTED`] and unsafe
/// control characters removed.
pub fn redact_text(s: &str) -> String {
    if plainly_clean(s) {
        return s.to_owned();
    }
    let mut out = if s.chars().any(is_unsafe_char) {
        s.chars().filter(|c| !is_unsafe_char(*c)).collect()
    } else {
        s.to_owned()
    };
    let mut lower = out.to_ascii_lowercase();
    for rule in RULES.iter() {
        if (rule.applies)(&lower) {
            let replaced = rule
                .re
                .replace_all(&out, |c: &Captures<'_>| (rule.replace)(c));
            if let std::borrow::Cow::Owned(r) = replaced {
                out = r;
                lower = out.to_ascii_lowercase();
            }
        }
    }
    for (starts, re) in TOKENS.iter() {
        if starts.iter().any(|p| lower.contains(p)) {
            if let std::borrow::Cow::Owned(r) = re.replace_all(&out, REDACTED) {
                out = r;
                lower = out.to_ascii_lowercase();
            }
        }
    }
    out
}

/// Returns a cleaned copy when `s` carries a credential, else `None`.
pub fn redact_str(s: &str) -> Option<String> {
    if plainly_clean(s) {
        return None;
    }
    let clean = redact_text(s);
    (clean != s).then_some(clean)
}

/// Redacts `s` in place.
pub fn redact_in_place(s: &mut String) {
    if let Some(clean) = redact_str(s) {
        *s = clean;
    }
}

/// Redacts a JSON value in place.
pub fn redact_json(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if is_secret_key(k) && !child.is_null() {
                    *child = Value::String(REDACTED.into());
                } else {
                    redact_json(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        Value::String(s) => redact_in_place(s),
        _ => {}
    }
}

/// Redacts a label/annotation map in place: values under secret keys, and
/// secrets inside any key or value.
pub fn redact_map(map: &mut BTreeMap<String, String>) {
    let needs_key_work = map.keys().any(|k| redact_str(k).is_some());
    if needs_key_work {
        *map = std::mem::take(map)
            .into_iter()
            .map(|(k, v)| (redact_text(&k), v))
            .collect();
    }
    for (k, v) in map.iter_mut() {
        if is_secret_key(k) {
            *v = REDACTED.into();
        } else {
            redact_in_place(v);
        }
    }
}

/// A parser's error message without the input values it quotes: serde says
/// ``invalid type: integer `987654321`, expected a string``, and that value
/// may be a password. Field names and what was expected stay.
pub fn error_without_values(message: &str) -> String {
    // A missing field's name is the schema's: it stays. An unknown or
    // duplicate one is the caller's: shown only when it is a plain word.
    if message.starts_with("missing field") {
        return message.to_owned();
    }
    for prefix in ["unknown field `", "duplicate field `"] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (name, tail) = rest.split_once('`').unwrap_or((rest, ""));
            return format!("{prefix}{}`{tail}", crate::limits::shown_name(name));
        }
    }
    let (head, tail) = match message.find(", expected") {
        Some(i) => message.split_at(i),
        None => (message, ""),
    };
    let mut out = String::with_capacity(message.len());
    let mut quote = None;
    for c in head.chars() {
        match (quote, c) {
            (None, '`' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) => out.push(c),
            _ => {}
        }
    }
    let out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("{out}{tail}")
}

#[cfg(any(test, feature = "contract"))]
/// The corpus: one sample of every token format and credential shape,
/// each in the places text reaches (prose, a header line, a URL, JSON).
/// Samples are the formats' documented examples or made up in their
/// shape; none is a live credential.
pub const SAMPLE_TOKENS: &[&str] = &[
    "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
    "xoxp-1234567890-1234567890-1234567890-0123456789abcdef",
    "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "gho_16C7e42F292c6912E7710c838347Ae178B4a",
    "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJK",
    "glpat-xxxxxxxxxxxxxxxxxxxx",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "rk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "AIzaSyA-1234567890abcdefghijklmnopqrstu",
    "AKIAIOSFODNN7EXAMPLE",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_fields_are_replaced_at_any_depth() {
        let mut v = json!({
            "routing_key": "R0UT1NG",
            "payload": {"custom_details": {"db_password": "hunter2", "ok": "fine"}},
            "list": [{"Authorization": "Bearer abc"}]
        });
        redact_json(&mut v);
        let s = v.to_string();
        for leaked in ["R0UT1NG", "hunter2", "Bearer abc"] {
            assert!(!s.contains(leaked), "{leaked} leaked in {s}");
        }
        assert!(s.contains("fine"));
    }

    #[test]
    fn url_passwords_and_secret_query_parameters_are_removed() {
        let clean = redact_str("https://bob:pa55@grafana.example/d/x?token=t0k&orgId=1").unwrap();
        assert!(!clean.contains("pa55") && !clean.contains("t0k"), "{clean}");
        assert!(clean.contains("bob") && clean.contains("orgId=1"));
        assert_eq!(redact_str("https://grafana.example/d/x?orgId=1"), None);
    }

    #[test]
    fn every_kind_of_secret_in_free_text_is_redacted() {
        let cases = [
            ("see https://user:pa55w0rd@db.internal/x now", "pa55w0rd"),
            (
                "clone https://ghp_T0KEN1234@github.com/o/r",
                "ghp_T0KEN1234",
            ),
            (
                "two: https://a.example/ok and https://u:s3cr3t@b.example/",
                "s3cr3t",
            ),
            (
                "curl -H 'Authorization: Bearer eyJhbGciOi.J9x'",
                "eyJhbGciOi",
            ),
            ("login failed with password=hunter22 for bob", "hunter22"),
            ("db_password: 'c0rrect horse'", "c0rrect"),
            (
                "posted to https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX",
                "XXXXsecretXXXX",
            ),
            ("key AKIAIOSFODNN7EXAMPLE leaked", "AKIAIOSFODNN7EXAMPLE"),
            ("hooks.slack.com/services/T0/B0/XsecretX", "XsecretX"),
            ("X-Auth: 9f8e7d6c5b", "9f8e7d6c5b"),
            ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
            ("{\"api_key\": \"k-123456\"}", "k-123456"),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
                "MIIEow",
            ),
        ];
        for (text, secret) in cases {
            let clean = redact_text(text);
            assert!(!clean.contains(secret), "{secret} survived in {clean:?}");
            assert!(clean.contains(REDACTED), "{clean:?}");
        }
    }

    #[test]
    fn every_token_format_is_redacted_wherever_it_appears() {
        for token in SAMPLE_TOKENS {
            for text in [
                format!("the deploy leaked {token} into the log"),
                format!("Authorization: Token {token}"),
                format!("https://api.example.com/v1/x?key={token}&page=2"),
                format!("{{\"detail\": \"{token}\"}}"),
                token.to_string(),
            ] {
                let clean = redact_text(&text);
                assert!(!clean.contains(token), "{token} survived in {clean:?}");
                assert!(clean.contains(REDACTED), "{clean:?}");
            }
        }
    }

    #[test]
    fn any_authorization_scheme_and_credential_query_parameters_lose_their_value() {
        for (text, secret, kept) in [
            (
                "Authorization: Token 9f8e7d6c5b4a",
                "9f8e7d6c5b4a",
                "Authorization: Token",
            ),
            (
                "authorization=Digest abc123def456",
                "abc123def456",
                "Digest",
            ),
            (
                "Proxy-Authorization: Negotiate YIIabc",
                "YIIabc",
                "Negotiate",
            ),
            ("GET /maps?key=abcd1234&zoom=3", "abcd1234", "zoom=3"),
            (
                "https://s3.example/x?X-Amz-Signature=deadbeef&a=1",
                "deadbeef",
                "a=1",
            ),
            (
                "https://blob.example/x?sv=2020&sig=c2lnbmF0dXJl",
                "c2lnbmF0dXJl",
                "sv=2020",
            ),
        ] {
            let clean = redact_text(text);
            assert!(!clean.contains(secret), "{secret} survived in {clean:?}");
            assert!(clean.contains(kept), "{kept} lost in {clean:?}");
        }
    }

    #[test]
    fn ordinary_prose_is_left_alone() {
        for text in [
            "Basic configuration drift on db-1",
            "High token usage: 93%",
            "author: bob",
            "CPU above 90% for 5m",
            "mailto:ops@example.com",
        ] {
            assert_eq!(redact_text(text), text);
        }
    }

    #[test]
    fn terminal_control_characters_and_bidi_overrides_are_removed() {
        let clean = redact_text("db\u{1b}[2J down\u{0}\u{202E}gnp.exe\nline two\tok");
        assert_eq!(clean, "db[2J downgnp.exe\nline two\tok");
    }

    #[test]
    fn credential_strings_are_redacted_wherever_they_appear() {
        let mut m = BTreeMap::from([
            ("note".to_string(), "Bearer xyz12345678".to_string()),
            ("api_key".to_string(), "k".to_string()),
            ("X-Auth".to_string(), "k".to_string()),
            ("team".to_string(), "db".to_string()),
        ]);
        redact_map(&mut m);
        assert!(!m["note"].contains("xyz12345678"));
        assert_eq!(m["api_key"], REDACTED);
        assert_eq!(m["X-Auth"], REDACTED);
        assert_eq!(m["team"], "db");
    }

    #[test]
    fn parser_errors_keep_the_shape_and_lose_the_values() {
        assert_eq!(
            error_without_values(
                "invalid type: integer `987654321`, expected a string at line 1 column 40"
            ),
            "invalid type: integer, expected a string at line 1 column 40"
        );
        assert_eq!(
            error_without_values("invalid type: string \"hunter2\", expected u64"),
            "invalid type: string, expected u64"
        );
        assert_eq!(
            error_without_values("missing field `title` at line 1 column 2"),
            "missing field `title` at line 1 column 2"
        );
        // A field the caller named: shown when it is a plain word only.
        assert_eq!(
            error_without_values("unknown field `colour`, expected `value`"),
            "unknown field `colour`, expected `value`"
        );
        assert_eq!(
            error_without_values("unknown field `xoxb-123-abc`, expected `value`"),
            "unknown field `?`, expected `value`"
        );
        assert_eq!(
            error_without_values("duplicate field `AKIAIOSFODNN7EXAMPLE` at line 1"),
            "duplicate field `?` at line 1"
        );
    }
}
