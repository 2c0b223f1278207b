//! "Did you mean …?": finds known names close to a misspelt one.

/// Names people reach for from other languages, and the function they mean here.
const FUNCTION_ALIASES: &[(&str, &str)] = &[
    ("length", "len"),
    ("size", "len"),
    ("count", "len"),
    ("includes", "contains"),
    ("has", "contains"),
    ("lowercase", "lower"),
    ("to_lower", "lower"),
    ("uppercase", "upper"),
    ("to_upper", "upper"),
    ("strip", "trim"),
    ("str", "string"),
    ("to_string", "string"),
    ("int", "number"),
    ("float", "number"),
    ("to_number", "number"),
    ("parse_number", "number"),
    ("empty", "is_empty"),
    ("coalesce", "default"),
    ("fallback", "default"),
    ("filter", "where"),
    ("map", "pluck"),
];

/// Up to three of `candidates` that `name` is probably a misspelling of, best first.
pub(super) fn close_names<'c>(
    name: &str,
    candidates: impl IntoIterator<Item = &'c str>,
    is_function: bool,
) -> Vec<&'c str> {
    let lower = name.to_ascii_lowercase();
    let alias = if is_function {
        FUNCTION_ALIASES
            .iter()
            .find(|(from, _)| *from == lower)
            .map(|(_, to)| *to)
    } else {
        None
    };
    let threshold = (lower.chars().count() / 3).max(1);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|candidate| {
            let c = candidate.to_ascii_lowercase();
            let distance = edit_distance(&lower, &c);
            let shorter = lower.len().min(c.len());
            let prefix = shorter >= 3 && (lower.starts_with(&c) || c.starts_with(&lower));
            if Some(candidate) == alias {
                Some((0, candidate))
            } else if distance <= threshold || prefix {
                Some((distance, candidate))
            } else {
                None
            }
        })
        .collect();
    scored.sort_unstable();
    scored.dedup();
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// " (did you mean `a`?)", " (did you mean `a` or `b`?)", or nothing.
pub(super) fn did_you_mean(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => format!(" (did you mean `{one}`?)"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|n| format!("`{n}`")).collect();
            format!(" (did you mean {} or `{last}`?)", init.join(", "))
        }
    }
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbouring characters each cost 1.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for (i, cell) in d.iter_mut().step_by(width).enumerate() {
        *cell = i;
    }
    for (j, cell) in d.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}
