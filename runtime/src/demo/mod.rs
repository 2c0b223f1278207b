//! The demo shop: a catalogue of products, orders, returns and tickets in its own SQLite file,
//! standing in for a company's systems until connectors exist, and answering the bundled flows'
//! `demo` lookups.

pub mod catalogue;
mod images;
mod products;
pub mod web;

use flows::engine::{LookupOutcome, LookupRequest, Millis};

use crate::conversation::{BoxFuture, Lookups};
use catalogue::Catalogue;

/// The catalogue answers the flows' `demo` lookups.
impl Lookups for Catalogue {
    fn lookup<'a>(
        &'a self,
        request: &'a LookupRequest,
        now: Millis,
    ) -> BoxFuture<'a, LookupOutcome> {
        Box::pin(Catalogue::lookup(self, request, now))
    }
}
