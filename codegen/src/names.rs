//! Rust names for flow ids: snake_case for functions and modules, CamelCase for types and
//! variants, each unique within the generated module.

use std::collections::BTreeSet;

use proc_macro2::Ident;
use quote::format_ident;

/// Hands out names, never the same one twice.
#[derive(Default)]
pub struct Names {
    taken: BTreeSet<String>,
}

impl Names {
    /// A fresh snake_case name from `parts` (joined with `_`).
    pub fn snake(&mut self, parts: &[&str]) -> Ident {
        let base = parts
            .iter()
            .map(|p| snake(p))
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("_");
        self.fresh(if base.is_empty() { "node" } else { &base }, "_")
    }

    /// Keeps `name` from being handed out.
    pub fn reserve(&mut self, name: &str) {
        self.taken.insert(name.to_owned());
    }

    /// A fresh CamelCase name from `id`.
    pub fn camel(&mut self, id: &str) -> Ident {
        let mut name = camel(id);
        if name == "Self" {
            name.push_str("Node");
        }
        self.fresh(&name, "")
    }

    fn fresh(&mut self, base: &str, separator: &str) -> Ident {
        let mut name = base.to_owned();
        let mut n = 2;
        while self.taken.contains(&name) || is_keyword(&name) {
            name = format!("{base}{separator}{n}");
            n += 1;
        }
        self.taken.insert(name.clone());
        format_ident!("{}", name)
    }
}

/// `ask-budget` → `ask_budget`; a leading digit gets an `n`.
pub fn snake(id: &str) -> String {
    let mut out = String::new();
    let mut gap = false;
    for c in id.chars() {
        if c.is_ascii_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.push(c.to_ascii_lowercase());
        } else {
            gap = true;
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'n');
    }
    out
}

/// `ask-budget` → `AskBudget`; a leading digit gets an `N`.
pub fn camel(id: &str) -> String {
    let mut out = String::new();
    for word in id.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars.map(|c| c.to_ascii_lowercase()));
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'N');
    }
    out
}

fn is_keyword(name: &str) -> bool {
    matches!(
        name,
        "as" | "async"
            | "await"
            | "break"
            | "const"
            | "continue"
            | "crate"
            | "dyn"
            | "else"
            | "enum"
            | "extern"
            | "false"
            | "fn"
            | "for"
            | "gen"
            | "if"
            | "impl"
            | "in"
            | "let"
            | "loop"
            | "match"
            | "mod"
            | "move"
            | "mut"
            | "pub"
            | "ref"
            | "return"
            | "self"
            | "static"
            | "struct"
            | "super"
            | "trait"
            | "true"
            | "type"
            | "unsafe"
            | "use"
            | "where"
            | "while"
            | "abstract"
            | "become"
            | "box"
            | "do"
            | "final"
            | "macro"
            | "override"
            | "priv"
            | "try"
            | "typeof"
            | "unsized"
            | "virtual"
            | "yield"
            | "union"
    )
}
