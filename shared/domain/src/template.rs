//! Templates of playbook steps and smoke checks (minijinja): undefined
//! variables are errors, every render is bounded by fuel, and templates see
//! only `incident`, `params` and `secrets`; smoke checks from the API get
//! plain substitution only ([`substitute`]). Secrets are named `secrets.NAME`; a masked render puts
//! `***NAME***` in their place, a real one their value.

use std::collections::{BTreeMap, HashMap, HashSet};

use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};

/// Enough for any sane template; a loop that runs away stops here.
const FUEL: u64 = 50_000;
/// Longest rendered string.
const MAX_RENDERED: usize = 16 * 1024;

/// The variables a template may use.
const ROOTS: [&str; 3] = ["incident", "params", "secrets"];

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env
}

pub use crate::limits::is_identifier;

fn variables(text: &str) -> Result<HashSet<String>, String> {
    let env = env();
    let t = env
        .template_from_str(text)
        .map_err(|e| format!("template error: {}", e.detail().unwrap_or("syntax error")))?;
    Ok(t.undeclared_variables(true))
}

fn check_variables(vars: &HashSet<String>) -> Result<(), String> {
    let mut sorted: Vec<_> = vars.iter().collect();
    sorted.sort();
    for v in sorted {
        let root = v.split('.').next().unwrap_or(v);
        if !ROOTS.contains(&root) {
            return Err(format!(
                "unknown variable `{root}`: templates see incident, params and secrets"
            ));
        }
        if root == "secrets" && !v.strip_prefix("secrets.").is_some_and(is_identifier) {
            return Err("name a secret as secrets.NAME".into());
        }
    }
    Ok(())
}

/// Checks a template's syntax and the variables it uses.
pub fn check(text: &str) -> Result<(), String> {
    check_variables(&variables(text)?)
}

/// Checks an expression (`approval.when`).
pub fn check_expression(expr: &str) -> Result<(), String> {
    let env = env();
    let e = env
        .compile_expression(expr)
        .map_err(|e| format!("expression error: {}", e.detail().unwrap_or("syntax error")))?;
    let vars = e.undeclared_variables(true);
    if vars.iter().any(|v| v.starts_with("secrets")) {
        return Err("an approval rule cannot read secrets".into());
    }
    check_variables(&vars)
}

/// The secret names the templates in `text` refer to, sorted.
pub fn secret_names(text: &str) -> Vec<String> {
    let mut out: Vec<String> = variables(text)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.strip_prefix("secrets.").map(str::to_owned))
        .filter(|n| is_identifier(n))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The secret names of a template that must be plain substitution (those
/// that come from the API, such as smoke checks): only `{{ secrets.NAME }}`
/// may be written; any other `{{ … }}`, `{% … %}` or `{# … #}` is refused.
/// Nothing is evaluated, and the output is capped at 16 KB while it is
/// built, so a value named ten thousand times stops early.
pub fn substitution_names(text: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    substitute_with(text, &mut |name| {
        names.push(name.to_owned());
        Some(String::new())
    })?;
    names.sort();
    names.dedup();
    Ok(names)
}

/// Fills a plain-substitution template (see [`substitution_names`]) with
/// `value(name)` for each `{{ secrets.NAME }}`.
pub fn substitute(
    text: &str,
    value: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<String, String> {
    substitute_with(text, value)
}

fn substitute_with(
    text: &str,
    value: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<String, String> {
    const ONLY: &str =
        "only `{{ secrets.NAME }}` may be written here: these templates are plain substitution";
    if text.contains("{%") || text.contains("{#") {
        return Err(ONLY.into());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find("}}").ok_or(ONLY)?;
        let name = after[..end]
            .trim()
            .strip_prefix("secrets.")
            .filter(|n| is_identifier(n))
            .ok_or(ONLY)?;
        out.push_str(&value(name).ok_or_else(|| format!("secret {name} has no value"))?);
        if out.len() > MAX_RENDERED {
            return Err(format!("renders to over {} KB", MAX_RENDERED / 1024));
        }
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        return Err(ONLY.into());
    }
    out.push_str(rest);
    Ok(out)
}

/// Calls `f(path, string)` for every string in a JSON value.
pub fn walk_strings(v: &serde_json::Value, path: &str, f: &mut dyn FnMut(&str, &str)) {
    match v {
        serde_json::Value::String(s) => f(path, s),
        serde_json::Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                walk_strings(x, &format!("{path}[{i}]"), f);
            }
        }
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                walk_strings(x, &format!("{path}.{k}"), f);
            }
        }
        _ => {}
    }
}

/// What templates see.
#[derive(Debug, Clone)]
pub struct Scope {
    pub incident: serde_json::Value,
    pub params: BTreeMap<String, String>,
    /// Secret name → what a template gets for it: its value, or the mask.
    pub secrets: HashMap<String, String>,
}

/// The text a masked render shows for a secret.
pub fn mask(name: &str) -> String {
    format!("***{name}***")
}

impl Scope {
    /// A scope whose secrets are masked: `***NAME***` for each name.
    pub fn masked(
        incident: serde_json::Value,
        params: BTreeMap<String, String>,
        names: &[String],
    ) -> Self {
        Self {
            incident,
            params,
            secrets: names.iter().map(|n| (n.clone(), mask(n))).collect(),
        }
    }

    fn value(&self) -> Value {
        minijinja::context! {
            incident => Value::from(Serde(&self.incident)),
            params => Value::from(Serde(&self.params)),
            secrets => Value::from(Serde(&self.secrets)),
        }
    }

    /// Renders one template string.
    pub fn render(&self, text: &str) -> Result<String, String> {
        if !text.contains("{{") && !text.contains("{%") {
            return Ok(text.to_owned());
        }
        let out = env().render_str(text, self.value()).map_err(render_error)?;
        if out.len() > MAX_RENDERED {
            return Err(format!("renders to over {} KB", MAX_RENDERED / 1024));
        }
        Ok(out)
    }

    /// Renders the part of a request URL after its origin: every value a
    /// template puts there is percent-encoded
    /// ([`encode_value`](crate::egress::encode_value)), so a value is one
    /// literal path segment or query value, never a `/`, `?`, `#` or `..`
    /// that walks elsewhere.
    pub fn render_url_rest(&self, text: &str) -> Result<String, String> {
        if !text.contains("{{") && !text.contains("{%") {
            return Ok(text.to_owned());
        }
        let mut env = env();
        env.set_formatter(|out, _state, value| {
            let text = if value.is_none() {
                String::new()
            } else {
                value.to_string()
            };
            out.write_str(&crate::egress::encode_value(&text))
                .map_err(|_| {
                    minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "write failed")
                })
        });
        let out = env.render_str(text, self.value()).map_err(render_error)?;
        if out.len() > MAX_RENDERED {
            return Err(format!("renders to over {} KB", MAX_RENDERED / 1024));
        }
        Ok(out)
    }

    /// True when `value` is what a masked render shows for secret `name`.
    pub fn is_masked(&self, name: &str, value: &str) -> bool {
        value == mask(name)
    }

    /// Renders every string of a JSON value.
    pub fn render_json(&self, v: &serde_json::Value) -> Result<serde_json::Value, String> {
        Ok(match v {
            serde_json::Value::String(s) => serde_json::Value::String(self.render(s)?),
            serde_json::Value::Array(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|x| self.render_json(x))
                    .collect::<Result<_, _>>()?,
            ),
            serde_json::Value::Object(m) => serde_json::Value::Object(
                m.iter()
                    .map(|(k, x)| Ok((k.clone(), self.render_json(x)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Evaluates an expression (`approval.when`) to true or false.
    pub fn truthy(&self, expr: &str) -> Result<bool, String> {
        let env = env();
        let e = env.compile_expression(expr).map_err(render_error)?;
        e.eval(self.value())
            .map(|v| v.is_true())
            .map_err(render_error)
    }
}

/// A template error without the values it was rendering: the kind and the
/// detail minijinja gives (which names variables, never their values).
fn render_error(e: minijinja::Error) -> String {
    match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// Masks every secret value in `text` and redacts what looks like one.
pub fn scrub(text: &str, secrets: &std::collections::HashMap<String, String>) -> String {
    let mut out = text.to_owned();
    let mut values: Vec<_> = secrets.iter().filter(|(_, v)| v.len() >= 4).collect();
    // Longest first, so a secret containing another is masked whole.
    values.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    for (name, value) in values {
        // As sent in a URL too: a target echoing its request back quotes
        // the percent-encoded form.
        for form in [value.clone(), crate::egress::encode_value(value)] {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), &mask(name));
            }
        }
    }
    crate::redact::redact_text(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_variables_are_errors_and_only_three_roots_exist() {
        let s = Scope::masked(serde_json::json!({"labels": {}}), BTreeMap::new(), &[]);
        assert!(s.render("{{ params.nope }}").is_err());
        assert!(s.render("{{ incident.labels.service }}").is_err());
        assert!(check("{{ env.HOME }}")
            .unwrap_err()
            .contains("unknown variable `env`"));
        assert!(check("{{ secrets }}").is_err());
        assert!(check("{{ secrets.ADMIN_TOKEN }}/x").is_ok());
        assert!(check("{{ params.x").is_err());
    }

    #[test]
    fn masked_renders_never_hold_the_value_and_real_ones_do() {
        let names = secret_names("{{ secrets.B }} {{ secrets.A }}/{{ secrets.B }}");
        assert_eq!(names, ["A", "B"]);
        let masked = Scope::masked(serde_json::json!({}), BTreeMap::new(), &names);
        assert_eq!(
            masked.render("Bearer {{ secrets.A }}").unwrap(),
            "Bearer ***A***"
        );
        let mut real = masked.clone();
        real.secrets.insert("A".into(), "s3cr3t".into());
        assert_eq!(
            real.render("Bearer {{ secrets.A }}").unwrap(),
            "Bearer s3cr3t"
        );
    }

    #[test]
    fn a_runaway_template_stops() {
        let s = Scope::masked(serde_json::json!({}), BTreeMap::new(), &[]);
        let err = s
            .render(
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            )
            .unwrap_err();
        assert!(!err.is_empty());
    }

    #[test]
    fn plain_substitution_fills_secrets_and_evaluates_nothing() {
        assert_eq!(
            substitution_names("Bearer {{ secrets.B }}/{{secrets.A}}{{ secrets.B }}").unwrap(),
            ["A", "B"]
        );
        let many = "{{ secrets.A }}".repeat(10_000);
        let e = substitute(&many, &mut |_| Some("x".repeat(8 * 1024))).unwrap_err();
        assert!(e.contains("over 16 KB"), "{e}");
        let out = substitute("k={{ secrets.A }}&x=1", &mut |n| Some(format!("<{n}>"))).unwrap();
        assert_eq!(out, "k=<A>&x=1");
        for refused in [
            "{{ [1, 2, 3, 4]|tojson(indent=50000000) }}",
            "{{ 'a' * 99999999 }}",
            "{% for i in range(9) %}x{% endfor %}",
            "{{ params.x }}",
            "{{ secrets.A|upper }}",
            "{{ secrets.A ",
            "x }}",
            "{# c #}",
        ] {
            assert!(substitution_names(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn approval_rules_are_expressions_over_params() {
        let mut params = BTreeMap::new();
        params.insert("mode".to_owned(), "hard".to_owned());
        let s = Scope::masked(serde_json::json!({}), params, &[]);
        assert!(s.truthy("params.mode == 'hard'").unwrap());
        assert!(!s.truthy("params.mode == 'graceful'").unwrap());
        assert!(check_expression("secrets.X == '1'").is_err());
    }

    #[test]
    fn a_secret_is_masked_raw_and_percent_encoded() {
        let secrets = std::collections::HashMap::from([("T".to_owned(), "ab+c/d=".to_owned())]);
        let echoed = "no route /x?key=ab%2Bc%2Fd%3D; body ab+c/d=";
        assert_eq!(
            scrub(echoed, &secrets),
            "no route /x?key=***T***; body ***T***"
        );
    }
}
