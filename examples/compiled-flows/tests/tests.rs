//! The example binary, run as a real process with the visitor's lines piped into it.

// Test helpers may unwrap: a failure there is a test failure with a backtrace.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use expect_test::expect;
use flows::Library;

/// Runs `compiled-flows ARGS` with `script` as its stdin (closed after it, so the chat ends at
/// EOF if the flow has not).
fn run(args: &[&str], script: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_compiled-flows"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Only the example's own line on stderr, whatever the developer's environment says.
        .env_remove("RUST_LOG")
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn hash(id: &str) -> String {
    Library::bundled().unwrap().flow_ref(id).unwrap().hash
}

#[test]
fn guided_shopping_runs_on_the_compiled_module() {
    let output = run(
        &["guided-shopping", "--locale", "en"],
        "phones\n3000\nbattery\n1\ncheckout\n",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        format!(
            "compiled-flows: running guided-shopping (version 1, hash {}) on the compiled module\n",
            hash("guided-shopping")
        )
    );
    // The products come from `flows/library/fixtures.json`; checkout ends the conversation.
    expect![[r#"
        kefu — guided-shopping (commands: /timer [id] fires a timer, /handback [node] returns from an agent, /restart, /cancel, /vars shows variables, /quit)
        bot> Hello and welcome to the kefu digital store! I'm Kay, your shopping assistant 😊 Answer a few quick questions and I'll find the best match for you.
        bot> What are you shopping for today?
             [1] Phones  [2] Laptops  [3] Earphones
        you> bot> What's your budget in yuan (¥)? Just type a number, for example 3000.
        you> bot> What matters most to you in a phone?
             [1] Camera  [2] Battery life  [3] Best value
        you>   (looking up demo.products.find …)
        bot> Here are my top picks within your ¥3000 budget:
        bot>   1. Kite Note 13 — ¥1499  /demo/product/ph-kite-note-13
                 6.7″ LCD 120 Hz · 6000 mAh · 33 W
        bot>   2. Kite 12 — ¥1999  /demo/product/ph-kite-12
                 6.5″ OLED · 50 MP · 5000 mAh
        bot> Like one of these? Tap it to add it to your cart. None of them right? Type "agent" and a sales advisor will help.
             [1] Add Kite Note 13 to cart  [2] Add Kite 12 to cart
        you> bot> Added Kite Note 13 (¥1499) to your cart 🛒 Your cart now holds 1 item(s), ¥1499 in total.
        bot> What would you like to do next?
             [1] Check out  [2] Keep shopping  [3] Talk to a sales advisor
        you> bot> Great choice! Complete your order here: /demo/checkout?items=ph-kite-note-13 (1 item(s), ¥1499 in total). Thanks for shopping with us!
          (conversation ended: checkout)
    "#]]
    .assert_eq(&stdout(&output));
}

#[test]
fn every_compiled_flow_starts_on_its_module_and_stops_at_eof() {
    for id in ["guided-shopping", "order-status", "returns", "faq-hours"] {
        let output = run(&[id, "--locale", "en"], "");
        assert!(output.status.success(), "{id}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(&format!(
                "running {id} (version 1, hash {}) on the compiled module",
                hash(id)
            )),
            "{id}: {}",
            stderr(&output)
        );
        assert!(
            stdout(&output).contains("bot> "),
            "{id}: {}",
            stdout(&output)
        );
    }
}

#[test]
fn a_flow_without_a_module_is_interpreted() {
    // `return-reason` is compiled into `returns` only, as its sub-flow.
    let output = run(&["return-reason", "--locale", "en"], "/quit\n");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("running return-reason (version 1, hash ")
            && stderr(&output).contains(") in the interpreter"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_unknown_flow_is_an_error() {
    let output = run(&["no-such-flow"], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(
            "error: no flow with id `no-such-flow` in the library \
             (the flows are: faq-hours, guided-shopping, order-status, return-reason, returns)"
        ),
        "{}",
        stderr(&output)
    );
}
