//! Size limits for everything a webhook can put into an item, and the
//! functions that hold values to them.
//!
//! A sender is never refused for the size of what fits the body cap: long
//! fields are cut with a visible [`TRUNCATED`] marker, long fingerprints are
//! hashed, and counts past a limit are summarised. That keeps every key under
//! DynamoDB's 1,024-byte sort-key limit and every item well under its 400 KB
//! item limit, so a large alert can never become a 500 that its sender
//! retries forever. The limits are documented in docs/STORAGE.md.

use firewatch_types::{Alert, Link};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Appended to anything cut short, so a reader knows there was more.
pub const TRUNCATED: &str = "…[truncated]";

/// Fingerprints longer than this are replaced by `sha256:<hex>` of
/// themselves (the original stays in the stored envelope).
pub const MAX_FINGERPRINT_BYTES: usize = 255;
/// Alert and incident titles.
pub const MAX_TITLE_BYTES: usize = 1024;
/// Labels (and annotations) kept per alert; the rest are counted.
pub const MAX_LABELS: usize = 64;
pub const MAX_LABEL_KEY_BYTES: usize = 128;
pub const MAX_LABEL_VALUE_BYTES: usize = 512;
pub const MAX_ANNOTATION_VALUE_BYTES: usize = 2048;
/// All annotations of an alert together (keys and values): 64 of the
/// largest would not fit an incident's item.
pub const MAX_ANNOTATIONS_TOTAL_BYTES: usize = 24 * 1024;
/// Links kept per alert.
pub const MAX_LINKS: usize = 16;
pub const MAX_LINK_HREF_BYTES: usize = 1024;
pub const MAX_LINK_TEXT_BYTES: usize = 256;
/// The label that says how many labels were not kept.
pub const TRUNCATED_LABEL: &str = "firewatch_truncated";

/// A name a caller sent (a field, a parameter, a query key), as an error
/// may show it: itself when it is a plain word (letters and `_`, 1 to 32
/// of them), else `?`. Errors never echo what was sent: a token used as a
/// key stays out of them.
pub fn shown_name(name: &str) -> &str {
    let plain = (1..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_');
    if plain {
        name
    } else {
        "?"
    }
}

/// `s` cut to at most `max` bytes (marker included) at a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub(TRUNCATED.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{TRUNCATED}", &s[..end])
}

/// Cuts `s` in place; true when it was cut.
pub fn truncate_in_place(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    *s = truncate(s, max);
    true
}

/// A fingerprint that fits a sort key: itself when short, else its hash.
pub fn bound_fingerprint(fp: &str) -> String {
    if fp.len() <= MAX_FINGERPRINT_BYTES {
        fp.to_owned()
    } else {
        format!("sha256:{}", hex::encode(Sha256::digest(fp.as_bytes())))
    }
}

/// Holds a label or annotation map to `MAX_LABELS` entries of bounded keys
/// and values; what is dropped is counted under [`TRUNCATED_LABEL`].
pub fn bound_map(map: &mut BTreeMap<String, String>, max_value: usize) {
    let needs_work = map.len() > MAX_LABELS
        || map
            .iter()
            .any(|(k, v)| k.len() > MAX_LABEL_KEY_BYTES || v.len() > max_value);
    if !needs_work {
        return;
    }
    let total = map.len();
    let mut out = BTreeMap::new();
    for (k, v) in std::mem::take(map) {
        if out.len() == MAX_LABELS - 1 && total > MAX_LABELS {
            break;
        }
        out.insert(truncate(&k, MAX_LABEL_KEY_BYTES), truncate(&v, max_value));
    }
    if total > out.len() {
        out.insert(
            TRUNCATED_LABEL.to_owned(),
            format!("{} more not kept", total - out.len()),
        );
    }
    *map = out;
}

fn bound_links(links: &mut Vec<Link>) {
    links.truncate(MAX_LINKS);
    for l in links {
        truncate_in_place(&mut l.href, MAX_LINK_HREF_BYTES);
        if let Some(t) = &mut l.text {
            truncate_in_place(t, MAX_LINK_TEXT_BYTES);
        }
    }
}

/// Holds every field of a normalised alert to its limit.
pub fn bound_alert(alert: &mut Alert) {
    alert.fingerprint = bound_fingerprint(&alert.fingerprint);
    truncate_in_place(&mut alert.title, MAX_TITLE_BYTES);
    bound_map(&mut alert.labels, MAX_LABEL_VALUE_BYTES);
    bound_map(&mut alert.annotations, MAX_ANNOTATION_VALUE_BYTES);
    bound_total(&mut alert.annotations, MAX_ANNOTATIONS_TOTAL_BYTES);
    bound_links(&mut alert.links);
}

/// Holds a map (already [`bound_map`]ped) to `max_total` bytes of keys and
/// values, in key order; what is dropped is counted under
/// [`TRUNCATED_LABEL`] with what `bound_map` dropped.
fn bound_total(map: &mut BTreeMap<String, String>, max_total: usize) {
    let size: usize = map.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size <= max_total {
        return;
    }
    let mut dropped: usize = map
        .remove(TRUNCATED_LABEL)
        .and_then(|v| v.split(' ').next().and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    // Room for the count itself.
    let mut room = max_total.saturating_sub(TRUNCATED_LABEL.len() + 32);
    map.retain(|k, v| {
        let n = k.len() + v.len();
        if n <= room {
            room -= n;
            true
        } else {
            dropped += 1;
            false
        }
    });
    map.insert(
        TRUNCATED_LABEL.to_owned(),
        format!("{dropped} more not kept"),
    );
}

/// True for names usable as `secrets.NAME` (and `params.NAME`): 1-64
/// letters, digits and `_`, not starting with a digit.
pub fn is_identifier(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && s.len() <= 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_a_char_boundary_and_shows_the_marker() {
        let s = "é".repeat(1000);
        let t = truncate(&s, 101);
        assert!(t.len() <= 101 && t.ends_with(TRUNCATED), "{t}");
        assert_eq!(truncate("short", 10), "short");
    }

    #[test]
    fn long_fingerprints_become_stable_hashes_that_fit_a_sort_key() {
        let fp = "f".repeat(5000);
        let a = bound_fingerprint(&fp);
        assert_eq!(a, bound_fingerprint(&fp));
        assert!(a.starts_with("sha256:") && a.len() <= MAX_FINGERPRINT_BYTES);
        assert_eq!(bound_fingerprint("abc"), "abc");
        assert_ne!(bound_fingerprint(&"g".repeat(5000)), a);
    }

    #[test]
    fn annotations_are_held_to_a_total_and_counted() {
        let mut a = Alert {
            source: firewatch_types::SourceKind::Generic,
            fingerprint: "f".into(),
            status: firewatch_types::AlertStatus::Firing,
            severity: firewatch_types::Severity::Sev3,
            title: "t".into(),
            labels: BTreeMap::new(),
            annotations: (0..200)
                .map(|i| (format!("note{i:03}"), "n".repeat(3000)))
                .collect(),
            links: vec![],
            starts_at: None,
            ends_at: None,
        };
        bound_alert(&mut a);
        let size: usize = a.annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(size <= MAX_ANNOTATIONS_TOTAL_BYTES, "{size}");
        let kept = a.annotations.len() - 1;
        assert_eq!(
            a.annotations[TRUNCATED_LABEL],
            format!("{} more not kept", 200 - kept)
        );
    }

    #[test]
    fn oversized_label_sets_are_cut_and_counted() {
        let mut m: BTreeMap<String, String> = (0..500)
            .map(|i| (format!("k{i:03}{}", "x".repeat(300)), "v".repeat(4000)))
            .collect();
        bound_map(&mut m, MAX_LABEL_VALUE_BYTES);
        assert_eq!(m.len(), MAX_LABELS);
        assert_eq!(m[TRUNCATED_LABEL], "437 more not kept");
        assert!(m
            .iter()
            .all(|(k, v)| k.len() <= MAX_LABEL_KEY_BYTES && v.len() <= MAX_LABEL_VALUE_BYTES));
    }
}
