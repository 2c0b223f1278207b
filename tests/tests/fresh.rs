//! The committed modules of the bundled flows are what `codegen` generates today (update them
//! with `UPDATE_EXPECT=1 cargo test -p tests fresh`), and generation is deterministic.

use expect_test::expect_file;

use crate::common::bundled;

fn generate(id: &str) -> String {
    let library = bundled();
    let flow = library.get(id).unwrap();
    codegen::compile(flow, &codegen::Options::with_library(library.clone())).unwrap()
}

#[test]
fn committed_modules_are_fresh() {
    expect_file!["../src/bundled/faq_hours.rs"].assert_eq(&generate("faq-hours"));
    expect_file!["../src/bundled/guided_shopping.rs"].assert_eq(&generate("guided-shopping"));
    expect_file!["../src/bundled/order_status.rs"].assert_eq(&generate("order-status"));
    expect_file!["../src/bundled/return_reason.rs"].assert_eq(&generate("return-reason"));
    expect_file!["../src/bundled/returns.rs"].assert_eq(&generate("returns"));
}

#[test]
fn every_bundled_flow_has_a_committed_module() {
    let compiled: Vec<String> = tests::bundled::engines()
        .iter()
        .map(|e| e.flow().id.clone())
        .collect();
    let bundled: Vec<String> = bundled().flows().map(|f| f.id.clone()).collect();
    assert_eq!(compiled.len(), bundled.len());
    for id in bundled {
        assert!(compiled.contains(&id), "`{id}` has no compiled module");
    }
}

#[test]
fn generation_is_deterministic() {
    assert_eq!(generate("returns"), generate("returns"));
}
