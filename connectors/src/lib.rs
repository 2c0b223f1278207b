//! Connectors: how kefu reads a company's other systems (the seed's "SystemConnector").
//!
//! A `connectors.yaml` file (`docs/connectors.md`) declares connectors — a driver and where to
//! reach it — and, per connector, entities: a table or endpoint, its fields (for SQL drivers,
//! SQL expressions over the table's columns, checked by a real SQL parser at load time) and the
//! operations flows and agents may run on it. [`config`] loads and checks the file, reporting
//! every problem at once with its line and column; [`Registry`] holds the live drivers and
//! answers calls with timeouts, bounded retries of reads and a circuit breaker per connector.
//!
//! Values cross this crate as [`flows::Value`]s: a call takes named parameters and answers rows
//! (maps from field name to value), which is exactly what a flow's `lookup` node gives and
//! receives.

pub mod cache;
pub mod config;
mod dsn;
pub mod http;
pub mod model;
pub mod registry;
pub mod soap;
pub mod sql;
pub mod sqlexpr;
mod sqlview;
pub mod view;

pub use model::*;
pub use registry::{ConnectorStats, Registry};
pub use view::View;
