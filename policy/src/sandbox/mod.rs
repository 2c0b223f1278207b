//! Data sandboxes: per department and entity, which rows its people see (a row filter) and
//! which fields they see masked. Declared in the policy file:
//!
//! ```text
//! sandbox {
//!   department = "sales"
//!   entity     = "customers"
//!   rows       = "row.region == agent.region"
//!   mask       = { phone = "phone", email = "email", id_card = "id_number", address = "address" }
//! }
//! ```
//!
//! The runtime applies the row filter in its SQL query and masks the fields of what comes
//! back; this module holds the checked configuration and the pure functions for both.

pub mod mask;
pub mod rows;

use std::collections::BTreeMap;

use flows::Value;

use crate::diagnostic::Location;
use crate::request::Subject;
pub use mask::MaskKind;
pub use rows::{CompareOp, Operand, RowFilter};

/// What one department sees of one entity.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Sandbox {
    /// A team id, or `*` for everyone without a sandbox of their own for this entity.
    pub department: String,
    pub entity: String,
    /// `None`: every row.
    pub rows: Option<RowFilter>,
    /// Field name → how it is masked.
    pub masks: BTreeMap<String, MaskKind>,
    #[serde(skip)]
    pub location: Location,
}

impl Sandbox {
    /// Whether `subject` sees `row` at all (see [`RowFilter::matches`]).
    pub fn shows(&self, row: &Value, subject: &Subject) -> bool {
        self.rows.as_ref().is_none_or(|f| f.matches(row, subject))
    }

    /// Masks the fields of a record (a map of field values) in place; other values are left
    /// as they are.
    pub fn mask_record(&self, record: &mut Value) {
        mask::mask_fields(&self.masks, record);
    }

    /// How the field `name` is masked, if it is.
    pub fn mask_of(&self, name: &str) -> Option<MaskKind> {
        self.masks.get(name).copied()
    }
}

/// Every sandbox of a file, by department and entity.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Sandboxes {
    /// Sorted by department, then entity; at most one per pair (`load` refuses duplicates).
    list: Vec<Sandbox>,
}

impl Sandboxes {
    pub(crate) fn new(mut list: Vec<Sandbox>) -> Sandboxes {
        list.sort_by(|a, b| (&a.department, &a.entity).cmp(&(&b.department, &b.entity)));
        Sandboxes { list }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Sandbox> {
        self.list.iter()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The sandbox of one department for one entity.
    pub fn get(&self, department: &str, entity: &str) -> Option<&Sandbox> {
        self.list
            .binary_search_by(|s| {
                (s.department.as_str(), s.entity.as_str()).cmp(&(department, entity))
            })
            .ok()
            .and_then(|i| self.list.get(i))
    }

    /// The sandbox through which `subject` sees `entity`: that of the first of the subject's
    /// teams that has one, else the `*` sandbox, else none (the subject sees the entity whole,
    /// as far as policies let them see it at all).
    pub fn view(&self, subject: &Subject, entity: &str) -> Option<&Sandbox> {
        subject
            .teams()
            .iter()
            .find_map(|team| self.get(team, entity))
            .or_else(|| self.get("*", entity))
    }
}
