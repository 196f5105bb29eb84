//! Label matchers as Alertmanager spells them: `name=value`, `name!=value`,
//! `name=~regex`, `name!~regex`, values optionally double-quoted. A regex
//! is anchored at both ends (`^(?:re)$`), as in Alertmanager.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// Most matchers one silence may have.
pub const MAX_MATCHERS: usize = 32;
/// Longest matcher name or value, in bytes.
pub const MAX_MATCHER_BYTES: usize = 512;

/// One matcher, in Alertmanager's API v2 shape (`isEqual` defaults to true).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Matcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl Matcher {
    /// The operator: `=`, `!=`, `=~` or `!~`.
    pub fn op(&self) -> &'static str {
        match (self.is_equal, self.is_regex) {
            (true, false) => "=",
            (false, false) => "!=",
            (true, true) => "=~",
            (false, true) => "!~",
        }
    }

    /// Checks the shape: a label name, a bounded value, a regex that
    /// compiles.
    pub fn validate(&self) -> Result<(), DomainError> {
        let bad = |m: String| DomainError::bad_input("invalid_matcher", m);
        if !is_label_name(&self.name) {
            return Err(bad(format!(
                "matcher name {} is not a label name",
                crate::limits::shown_name(&self.name)
            )));
        }
        if self.value.len() > MAX_MATCHER_BYTES {
            return Err(bad(format!(
                "the value of matcher {} is over {MAX_MATCHER_BYTES} bytes",
                self.name
            )));
        }
        if self.is_regex {
            compile(&self.value).map_err(|e| {
                bad(format!(
                    "matcher {}{}{:?}: not a regex: {e}",
                    self.name,
                    self.op(),
                    crate::limits::truncate(&self.value, 60)
                ))
            })?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op(), self.value)
    }
}

/// True for a label name a matcher may use (letters, digits, `_`, `.`,
/// `-`; not starting with a digit; bounded).
pub fn is_label_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_MATCHER_BYTES
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

fn compile(re: &str) -> Result<regex_lite::Regex, regex_lite::Error> {
    regex_lite::RegexBuilder::new(&format!("^(?:{re})$"))
        .size_limit(1 << 16)
        .build()
}

/// Parses one matcher expression (`env=~"prod|stage"`, `team!=db`).
pub fn parse(expr: &str) -> Result<Matcher, DomainError> {
    let bad = || {
        DomainError::bad_input(
            "invalid_matcher",
            "the expression is not a matcher: use name=value, name!=value, name=~regex or name!~regex",
        )
    };
    let expr = expr.trim();
    let at = expr.find(['=', '!']).ok_or_else(bad)?;
    let (name, rest) = expr.split_at(at);
    let (is_equal, is_regex, raw) = if let Some(v) = rest.strip_prefix("=~") {
        (true, true, v)
    } else if let Some(v) = rest.strip_prefix("!~") {
        (false, true, v)
    } else if let Some(v) = rest.strip_prefix("!=") {
        (false, false, v)
    } else if let Some(v) = rest.strip_prefix('=') {
        (true, false, v)
    } else {
        return Err(bad());
    };
    let raw = raw.trim();
    let value = if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') {
        serde_json::from_str::<String>(raw).map_err(|_| bad())?
    } else {
        raw.to_owned()
    };
    let m = Matcher {
        name: name.trim().to_owned(),
        value,
        is_regex,
        is_equal,
    };
    m.validate()?;
    Ok(m)
}

/// Parses a list of matchers, checking the list's size; a list may also be
/// given as one `{a="b", c=~"d"}` selector.
pub fn parse_all<'a>(
    exprs: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Matcher>, DomainError> {
    let mut out = Vec::new();
    for e in exprs {
        let e = e.trim();
        let inner = e
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .map(|s| s.split(',').map(str::to_owned).collect::<Vec<_>>())
            .unwrap_or_else(|| vec![e.to_owned()]);
        for part in inner.iter().filter(|p| !p.trim().is_empty()) {
            out.push(parse(part)?);
        }
    }
    check_list(&out)?;
    Ok(out)
}

/// A list of matchers a silence may have: one to [`MAX_MATCHERS`], each
/// valid, and not all of them matching the empty string (a silence that
/// would match every alert is refused, as Alertmanager does).
pub fn check_list(ms: &[Matcher]) -> Result<(), DomainError> {
    if ms.is_empty() {
        return Err(DomainError::bad_input(
            "invalid_matcher",
            "a silence needs at least one matcher",
        ));
    }
    if ms.len() > MAX_MATCHERS {
        return Err(DomainError::bad_input(
            "invalid_matcher",
            format!("a silence has at most {MAX_MATCHERS} matchers"),
        ));
    }
    for m in ms {
        m.validate()?;
    }
    let empty = BTreeMap::new();
    if Compiled::new(ms)?.matches(&empty) {
        return Err(DomainError::bad_input(
            "invalid_matcher",
            "at least one matcher must not match the empty string: this silence would match every alert",
        ));
    }
    Ok(())
}

/// A matcher as an API body may give it: the object, or one expression
/// (`"env=~prod|stage"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Given {
    Expr(String),
    Full(Matcher),
}

/// Deserializes a list of matchers given as objects or expressions.
pub fn objects_or_expressions<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<Matcher>, D::Error> {
    let given: Vec<Given> = Vec::deserialize(d)?;
    given
        .into_iter()
        .map(|g| match g {
            Given::Full(m) => Ok(m),
            Given::Expr(e) => parse(&e).map_err(serde::de::Error::custom),
        })
        .collect()
}

/// Matchers ready to test label sets.
pub struct Compiled {
    each: Vec<(Matcher, Option<regex_lite::Regex>)>,
}

impl Compiled {
    pub fn new(ms: &[Matcher]) -> Result<Self, DomainError> {
        let each = ms
            .iter()
            .map(|m| {
                let re = m
                    .is_regex
                    .then(|| compile(&m.value))
                    .transpose()
                    .map_err(|e| DomainError::bad_input("invalid_matcher", e.to_string()))?;
                Ok((m.clone(), re))
            })
            .collect::<Result<_, DomainError>>()?;
        Ok(Self { each })
    }

    /// True when every matcher holds for `labels` (a missing label is the
    /// empty string).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.each.iter().all(|(m, re)| {
            let v = labels.get(&m.name).map(String::as_str).unwrap_or("");
            let hit = match re {
                Some(re) => re.is_match(v),
                None => v == m.value,
            };
            hit == m.is_equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_four_operators_parse_with_and_without_quotes() {
        let m = parse_all([
            "alertname=Foo",
            "env=~\"prod|stage\"",
            "team!=db",
            "pod!~'x'",
        ])
        .unwrap();
        assert_eq!(
            m.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "alertname=\"Foo\"",
                "env=~\"prod|stage\"",
                "team!=\"db\"",
                "pod!~\"'x'\""
            ]
        );
        let sel = parse_all(["{alertname=\"Foo\", env=\"prod\"}"]).unwrap();
        assert_eq!(sel.len(), 2);
        assert_eq!(sel[1].value, "prod");
    }

    #[test]
    fn regexes_are_anchored_and_negations_hold() {
        let c = Compiled::new(&parse_all(["env=~prod|stage", "team!=db"]).unwrap()).unwrap();
        assert!(c.matches(&labels(&[("env", "prod"), ("team", "web")])));
        assert!(!c.matches(&labels(&[("env", "production"), ("team", "web")])));
        assert!(!c.matches(&labels(&[("env", "stage"), ("team", "db")])));
        let absent = Compiled::new(&parse_all(["team!~db|ops", "x=y"]).unwrap()).unwrap();
        assert!(absent.matches(&labels(&[("x", "y")])));
    }

    #[test]
    fn bad_matchers_are_refused_clearly() {
        for (expr, says) in [
            ("alertname", "is not a matcher"),
            ("1bad=x", "is not a label name"),
            ("env=~(", "not a regex"),
        ] {
            let e = parse_all([expr]).unwrap_err().to_string();
            assert!(e.contains(says), "{expr}: {e}");
        }
        let e = parse_all(["env=~.*"]).unwrap_err().to_string();
        assert!(e.contains("would match every alert"), "{e}");
        let e = parse_all(Vec::<&str>::new()).unwrap_err().to_string();
        assert!(e.contains("at least one matcher"), "{e}");
    }
}
