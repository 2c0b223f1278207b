//! Masks as SQL: the expressions SQL drivers put in their `SELECT` for a masked text field, so
//! that a department's view is masked in the database (`crate::view`). Each is written per
//! dialect to give exactly what `policy::MaskKind::mask_str` gives in memory — characters
//! counted as characters (`char_length`, `CHAR_LENGTH`, SQLite's `length` of text), `NULL`
//! kept — which the connector tests check against the real servers.

use policy::MaskKind;

use crate::model::DriverKind;

/// The SQL of `kind` applied to the text expression `x` (parenthesized by the caller).
pub(crate) fn mask(dialect: DriverKind, kind: MaskKind, x: &str) -> String {
    let d = Dialect(dialect);
    let body = match kind {
        MaskKind::Phone | MaskKind::IdNumber => d.keep_ends(x, 3, 4),
        MaskKind::Name => d.keep_ends(x, 1, 0),
        MaskKind::Email => {
            let domain = d.after_last_at(x);
            let first = format!(
                "CASE WHEN {} - {} = 1 THEN '' ELSE {} END",
                d.len(x),
                d.len(&domain),
                d.left(x, "1")
            );
            format!(
                "CASE WHEN {} AND {} > 0 THEN {} ELSE {} END",
                d.has_at(x),
                d.len(&domain),
                d.concat(&[first, "'***@'".to_owned(), domain.clone()]),
                d.keep_ends(x, 1, 0)
            )
        }
        MaskKind::Address => format!(
            "CASE WHEN {} = 0 THEN '' ELSE {} END",
            d.len(x),
            d.concat(&[d.left(x, &d.half_capped(x)), "'****'".to_owned()])
        ),
        MaskKind::Redact => "'***'".to_owned(),
    };
    format!("CASE WHEN {x} IS NULL THEN NULL ELSE {body} END")
}

struct Dialect(DriverKind);

impl Dialect {
    fn len(&self, x: &str) -> String {
        match self.0 {
            DriverKind::Postgres => format!("char_length({x})"),
            DriverKind::MySql => format!("CHAR_LENGTH({x})"),
            _ => format!("length({x})"),
        }
    }

    fn left(&self, x: &str, n: &str) -> String {
        match self.0 {
            DriverKind::Postgres => format!("left({x}, {n})"),
            DriverKind::MySql => format!("LEFT({x}, {n})"),
            _ => format!("substr({x}, 1, {n})"),
        }
    }

    fn right(&self, x: &str, n: usize) -> String {
        match self.0 {
            DriverKind::Postgres => format!("right({x}, {n})"),
            DriverKind::MySql => format!("RIGHT({x}, {n})"),
            _ => format!("substr({x}, -{n})"),
        }
    }

    /// `n` stars (SQLite has no `repeat`: `n` zero bytes in hex are `n` pairs of `00`).
    fn stars(&self, n: &str) -> String {
        match self.0 {
            DriverKind::Postgres => format!("repeat('*', {n})"),
            DriverKind::MySql => format!("REPEAT('*', {n})"),
            _ => format!("replace(hex(zeroblob({n})), '00', '*')"),
        }
    }

    fn concat(&self, parts: &[String]) -> String {
        match self.0 {
            DriverKind::MySql => format!("CONCAT({})", parts.join(", ")),
            _ => format!("({})", parts.join(" || ")),
        }
    }

    /// What follows the last `@` (the whole text when there is none).
    fn after_last_at(&self, x: &str) -> String {
        match self.0 {
            DriverKind::Postgres => format!("split_part({x}, '@', -1)"),
            DriverKind::MySql => format!("SUBSTRING_INDEX({x}, '@', -1)"),
            // Trimming every character but `@` from the end leaves the text up to its last `@`.
            _ => format!("substr({x}, length(rtrim({x}, replace({x}, '@', ''))) + 1)"),
        }
    }

    fn has_at(&self, x: &str) -> String {
        match self.0 {
            DriverKind::Postgres => format!("strpos({x}, '@') > 0"),
            DriverKind::MySql => format!("LOCATE('@', {x}) > 0"),
            _ => format!("instr({x}, '@') > 0"),
        }
    }

    /// Half the length, at most 6 (an address keeps that much of its start).
    fn half_capped(&self, x: &str) -> String {
        match self.0 {
            DriverKind::Postgres => format!("LEAST(char_length({x}) / 2, 6)"),
            DriverKind::MySql => format!("LEAST(CHAR_LENGTH({x}) DIV 2, 6)"),
            _ => format!("min(length({x}) / 2, 6)"),
        }
    }

    /// `policy::sandbox::mask::keep_ends`: the first `front` and last `back` characters and a
    /// star for each between; too short, only the first character (one character: a star).
    fn keep_ends(&self, x: &str, front: usize, back: usize) -> String {
        let len = self.len(x);
        let mut kept = Vec::new();
        if front > 0 {
            kept.push(self.left(x, &front.to_string()));
        }
        kept.push(self.stars(&format!("{len} - {}", front + back)));
        if back > 0 {
            kept.push(self.right(x, back));
        }
        format!(
            "CASE WHEN {len} > {} THEN {} WHEN {len} = 0 THEN '' WHEN {len} = 1 THEN '*' ELSE {} END",
            front + back,
            self.concat(&kept),
            self.concat(&[self.left(x, "1"), self.stars(&format!("{len} - 1"))])
        )
    }
}
