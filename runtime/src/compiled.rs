//! The bundled flows, compiled to Rust at build time (`build.rs`). `kefu` registers them in
//! its engine registry, which runs them while the library holds exactly these flows.

use std::sync::Arc;

use crate::engines::SharedEngine;

pub mod faq_hours {
    include!(concat!(env!("OUT_DIR"), "/faq_hours.rs"));
}

pub mod guided_shopping {
    include!(concat!(env!("OUT_DIR"), "/guided_shopping.rs"));
}

pub mod order_status {
    include!(concat!(env!("OUT_DIR"), "/order_status.rs"));
}

pub mod return_reason {
    include!(concat!(env!("OUT_DIR"), "/return_reason.rs"));
}

pub mod returns {
    include!(concat!(env!("OUT_DIR"), "/returns.rs"));
}

/// Every bundled flow's compiled engine.
pub fn bundled() -> Vec<SharedEngine> {
    vec![
        Arc::new(faq_hours::FaqHours::new()),
        Arc::new(guided_shopping::GuidedShopping::new()),
        Arc::new(order_status::OrderStatus::new()),
        Arc::new(return_reason::ReturnReason::new()),
        Arc::new(returns::Returns::new()),
    ]
}
