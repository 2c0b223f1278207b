//! A caller's view of an entity: a department's data sandbox (`policy::Sandbox`) bound to the
//! person asking — which rows they see and which fields they see masked.
//!
//! SQL drivers apply a view in the statement itself ([`crate::sql`]): the row filter becomes
//! part of the `WHERE` (over a derived table, so every operation keeps its own conditions,
//! order and limit) and masks of text fields become SQL expressions in the `SELECT`, so rows
//! outside the view and unmasked values never leave the database. Other drivers answer whole
//! (through the cache as usual) and [`View::apply`] filters and masks their rows before the
//! registry returns them.

use std::collections::BTreeMap;

use flows::Value;
use policy::{MaskKind, RowFilter, Subject};

use crate::model::Rows;

/// What one caller may see of one entity.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    /// Rows for which this is not known to be true are not answered. Agent attributes are
    /// already replaced by the caller's values ([`RowFilter::bind`]).
    pub rows: Option<RowFilter>,
    /// Field name → how it is masked.
    pub masks: BTreeMap<String, MaskKind>,
}

impl View {
    /// The view of `sandbox` for `subject`.
    pub fn of(sandbox: &policy::Sandbox, subject: &Subject) -> View {
        View {
            rows: sandbox.rows.as_ref().map(|f| f.bind(subject)),
            masks: sandbox.masks.clone(),
        }
    }

    /// Filters and masks rows in memory: the same answer a SQL driver gives in its query.
    pub fn apply(&self, rows: Rows) -> Rows {
        // A bound filter has no agent attribute left: any subject reads the same.
        let nobody = Subject::new("");
        rows.into_iter()
            .filter_map(|fields| {
                let mut row = Value::Map(fields);
                if let Some(filter) = &self.rows
                    && !filter.matches(&row, &nobody)
                {
                    return None;
                }
                policy::sandbox::mask::mask_fields(&self.masks, &mut row);
                match row {
                    Value::Map(fields) => Some(fields),
                    _ => None,
                }
            })
            .collect()
    }
}
