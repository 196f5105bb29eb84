//! The domain's shape, checked on its source: rules a reviewer would
//! otherwise have to catch by eye.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn domain_sources() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let name = p.strip_prefix(&src).unwrap().display().to_string();
            (name, text)
        })
        .collect()
}

/// The header of the innermost loop around byte `at`, found by walking
/// back over balanced braces.
fn enclosing_loop(text: &str, at: usize) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut depth = 0i32;
    let mut i = at;
    while i > 0 {
        i -= 1;
        match bytes[i] {
            b'}' => depth += 1,
            b'{' if depth > 0 => depth -= 1,
            b'{' => {
                let line_start = text[..i].rfind('\n').map_or(0, |n| n + 1);
                let header = text[line_start..=i].trim();
                if header.starts_with("for ")
                    || header.starts_with("while ")
                    || header.ends_with("loop {")
                {
                    return Some(header);
                }
            }
            _ => {}
        }
    }
    None
}

#[test]
fn every_lost_race_is_retried_by_the_one_helper() {
    let mut found = Vec::new();
    for (name, text) in domain_sources() {
        if name == "retry.rs" {
            continue;
        }
        for banned in ["back_off(", "for attempt in"] {
            if text.contains(banned) {
                found.push(format!("{name}: `{banned}` (use crate::retry)"));
            }
        }
        // A lost race answered by `continue` must be inside a loop the
        // helper's `Tries` drives; everything else uses `until_won!`.
        for (at, _) in text.match_indices("=> continue") {
            let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
            let arm = &text[line_start..at];
            let lost = ["ConditionFailed", "is_lost_race", "Conflict"]
                .iter()
                .any(|p| arm.contains(p));
            if !lost {
                continue;
            }
            let header = enclosing_loop(&text, at).unwrap_or("");
            if header != "while tries.next().await {" {
                let line = text[..at].lines().count();
                found.push(format!("{name}:{line}: a lost race retried by `{header}`"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "retry loops outside crate::retry:\n{}",
        found.join("\n")
    );
}

/// A module of the domain: its path (`routing::links`) and its text without
/// comments and unit tests.
struct Module {
    path: String,
    /// True for `x/mod.rs` (and `lib.rs`): `super` is the parent's parent.
    folder: bool,
    code: String,
}

fn modules() -> Vec<Module> {
    domain_sources()
        .into_iter()
        .filter(|(name, _)| name != "lib.rs")
        .map(|(name, text)| {
            let stem = name.trim_end_matches(".rs");
            let (path, folder) = match stem.strip_suffix("/mod") {
                Some(p) => (p.to_owned(), true),
                None => (stem.to_owned(), false),
            };
            let text = without_unit_tests(&text);
            let code = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            Module {
                path: path.replace('/', "::"),
                folder,
                code,
            }
        })
        .collect()
}

/// The source without its `#[cfg(test)] mod tests { … }` block (what
/// follows the block is kept).
fn without_unit_tests(text: &str) -> String {
    let Some(start) = text.find("#[cfg(test)]\nmod tests") else {
        return text.to_owned();
    };
    let open = start + text[start..].find('{').unwrap_or(0);
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return format!("{}{}", &text[..start], &text[open + i + 1..]);
                }
            }
            _ => {}
        }
    }
    text[..start].to_owned()
}

/// Every path a `use` tree names: `a::{b, c::{d, e}}` gives `a::b`,
/// `a::c::d`, `a::c::e`.
fn expand_use(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim().trim_end_matches("::");
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let base = join(prefix, head);
        let (mut depth, mut start) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand_use(&inner[start..i], &base, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand_use(&inner[start..], &base, out);
    } else if !tree.is_empty() {
        let name = tree.split(" as ").next().unwrap_or(tree).trim();
        out.push(if name == "self" {
            prefix.to_owned()
        } else {
            join(prefix, name)
        });
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a}::{b}"),
    }
}

/// The domain's module graph: which modules each module uses, through
/// `crate::`, `super::`, `self::` or a child module's name.
fn module_graph() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    use std::collections::{BTreeMap, BTreeSet};
    let mods = modules();
    let names: BTreeSet<String> = mods.iter().map(|m| m.path.clone()).collect();
    let resolve = |p: &str| -> Option<String> {
        let segs: Vec<&str> = p.split("::").collect();
        (1..=segs.len())
            .rev()
            .map(|n| segs[..n].join("::"))
            .find(|c| names.contains(c))
    };
    let path_re = regex_lite::Regex::new(r"\b(crate|super|self)((?:::[A-Za-z_0-9]+)+)").unwrap();
    let use_re = regex_lite::Regex::new(r"(?s)\buse\s+((?:crate|super|self)[^;]*);").unwrap();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in &mods {
        // What `super` and `self` stand for in this file.
        let here = m.path.clone();
        let parent = |p: &str| {
            p.rsplit_once("::")
                .map_or(String::new(), |(a, _)| a.to_owned())
        };
        let anchor = |root: &str| -> String {
            match root {
                "crate" => String::new(),
                "self" => here.clone(),
                _ if m.folder => parent(&here),
                _ => parent(&here),
            }
        };
        let mut paths = Vec::new();
        for c in use_re.captures_iter(&m.code) {
            let tree = c[1].split_whitespace().collect::<Vec<_>>().join(" ");
            let (root, rest) = tree.split_once("::").unwrap_or((&tree, ""));
            expand_use(rest, &anchor(root), &mut paths);
        }
        for c in path_re.captures_iter(&m.code) {
            paths.push(join(&anchor(&c[1]), c[2].trim_start_matches("::")));
        }
        // A child module named bare (`sla::Memo` in `pipelines`).
        for child in names.iter().filter(|n| parent(n) == here) {
            let short = child.rsplit("::").next().unwrap_or(child);
            let re = regex_lite::Regex::new(&format!(r"(^|[^:A-Za-z_0-9]){short}::")).unwrap();
            if re.is_match(&m.code) {
                paths.push(child.clone());
            }
        }
        let edges = graph.entry(here.clone()).or_default();
        for p in paths {
            if let Some(target) = resolve(&p) {
                if target != here {
                    edges.insert(target);
                }
            }
        }
    }
    graph
}

/// The strongly connected groups of more than one module (Tarjan).
fn cycles(
    graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
) -> Vec<Vec<String>> {
    use std::collections::HashMap;
    struct T<'a> {
        g: &'a std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        index: HashMap<&'a str, usize>,
        low: HashMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: std::collections::HashSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        t.on.insert(v);
        if let Some(ws) = t.g.get(v) {
            for w in ws {
                let w = w.as_str();
                if !t.index.contains_key(w) {
                    visit(t, w);
                    let l = t.low[v].min(t.low[w]);
                    t.low.insert(v, l);
                } else if t.on.contains(w) {
                    let l = t.low[v].min(t.index[w]);
                    t.low.insert(v, l);
                }
            }
        }
        if t.low[v] == t.index[v] {
            let mut group = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                group.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                t.out.push(group);
            }
        }
    }
    let mut t = T {
        g: graph,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on: Default::default(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// The base layer, as `lib.rs` lists it: it imports no capability.
const BASE: &[&str] = &[
    "auth",
    "cadence",
    "change",
    "config",
    "due",
    "egress",
    "error",
    "keys",
    "limits",
    "outbox",
    "ports",
    "recording",
    "redact",
    "retry",
    "secrets",
    "settings",
    "throttle",
    "units",
    "work",
];

#[test]
fn the_base_layer_imports_no_capability() {
    let graph = module_graph();
    let mut found = Vec::new();
    for (from, tos) in &graph {
        if !BASE.contains(&from.as_str()) {
            continue;
        }
        for to in tos {
            let top = to.split("::").next().unwrap_or(to);
            if !BASE.contains(&top) && top != "contract" {
                found.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the base layer imports capabilities:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_module_cycle_in_the_domain() {
    let graph = module_graph();
    let found: Vec<String> = cycles(&graph)
        .into_iter()
        .map(|group| {
            let edges: Vec<String> = group
                .iter()
                .flat_map(|m| {
                    graph[m]
                        .iter()
                        .filter(|t| group.contains(t))
                        .map(move |t| format!("  {m} -> {t}"))
                })
                .collect();
            format!(
                "{} modules: {}\n{}",
                group.len(),
                group.join(", "),
                edges.join("\n")
            )
        })
        .collect();
    assert!(found.is_empty(), "module cycles:\n{}", found.join("\n\n"));
}

#[test]
fn writes_are_built_by_the_unit_of_work() {
    // Raw write operations and the store's write calls belong to
    // `crate::work` (and the contract suite, which tests the store itself).
    let patterns = [
        "WriteOp::Put{",
        "WriteOp::Delete{",
        "WriteOp::Check{",
        "store.put(",
        "store.delete(",
        "store.transact(",
    ];
    let mut found = Vec::new();
    for m in modules() {
        if m.path == "work" || m.path == "contract" {
            continue;
        }
        let squeezed: String = m.code.split_whitespace().collect();
        for p in patterns {
            let n = squeezed.matches(p).count();
            if n > 0 {
                found.push(format!("{}: {n} x `{p}`", m.path));
            }
        }
    }
    assert!(
        found.is_empty(),
        "writes built outside crate::work (use work::Work):\n{}",
        found.join("\n")
    );
}

#[test]
fn no_cycle_between_capabilities() {
    // The same graph with each module folded into its top-level module
    // (`chat::links` into `chat`): capabilities depend one way only.
    let mut folded: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for (from, tos) in module_graph() {
        let top = |m: &str| m.split("::").next().unwrap_or(m).to_owned();
        let edges = folded.entry(top(&from)).or_default();
        for to in tos {
            if top(&to) != top(&from) {
                edges.insert(top(&to));
            }
        }
    }
    let found: Vec<String> = cycles(&folded)
        .into_iter()
        .map(|group| {
            let edges: Vec<String> = module_graph()
                .into_iter()
                .flat_map(|(m, tos)| {
                    let group = group.clone();
                    tos.into_iter().filter_map(move |t| {
                        let (a, b) = (
                            m.split("::").next().unwrap_or(&m).to_owned(),
                            t.split("::").next().unwrap_or(&t).to_owned(),
                        );
                        (a != b && group.contains(&a) && group.contains(&b))
                            .then(|| format!("  {m} -> {t}"))
                    })
                })
                .collect();
            format!("{}\n{}", group.join(", "), edges.join("\n"))
        })
        .collect();
    assert!(
        found.is_empty(),
        "capabilities that depend on each other:\n{}",
        found.join("\n\n")
    );
}

#[test]
fn every_partition_key_is_laid_out_in_keys_rs() {
    // A partition key starts with the tenant (`{t}#…`) or `_#` (global);
    // only `keys.rs` spells one out.
    let mut found = Vec::new();
    for m in modules() {
        if m.path == "keys" || m.path == "contract" {
            continue;
        }
        for p in ["\"{t}#", "\"{tenant}#", "\"_#"] {
            if m.code.contains(p) {
                found.push(format!("{}: {p}…", m.path));
            }
        }
    }
    assert!(
        found.is_empty(),
        "partition keys laid out outside keys.rs:\n{}",
        found.join("\n")
    );
}
