//! The web pages in a real headless Chromium (playwright-core scripts in `tests/browser/`):
//! `shop.mjs` chats with the guided-shopping bot in the demo shop by clicking its buttons, waits
//! for product cards, reloads and checks that the conversation comes back; `console.mjs` has an
//! agent take over a visitor's conversation in the console, reply, transfer and hand back;
//! `designer.mjs` builds a flow with the mouse in the designer, previews, publishes it and chats
//! with it in the shop; `access.mjs` has two departments' agents see customers masked by their
//! sandboxes, and an admin edit the policies, ask "can X do Y on Z", grant, revoke and search the
//! audit trail on the access page. All save screenshots.
//!
//! Needs Node.js, Debian's Chromium and `npm ci` in `tests/browser`; `.ci/run` provides them and
//! sets `KEFU_TEST_BROWSER=1`. Without that variable the test says so and skips.

use std::path::Path;

use crate::chat::{Options, Server, temp_dir};

/// Runs `tests/browser/SCRIPT` against a server with the demo shop; returns its output and
/// the folder of its screenshots. `None` when browser tests are off.
async fn run_script(script: &str) -> Option<(String, std::path::PathBuf)> {
    if std::env::var_os("KEFU_TEST_BROWSER").is_none() {
        eprintln!("KEFU_TEST_BROWSER is not set: skipping the browser test {script} (see .ci/run)");
        return None;
    }
    let dir = temp_dir("browser");
    let server = Server::start(
        &dir,
        Options {
            catalogue: true,
            ..Options::default()
        },
    )
    .await;
    let found = node(script, server.addr).await;
    server.stop().await;
    Some(found)
}

/// Runs the script with node against the server at `addr`; fails when it does.
async fn node(script: &str, addr: std::net::SocketAddr) -> (String, std::path::PathBuf) {
    let artifacts = std::env::var_os("KEFU_ARTIFACTS").map_or_else(
        || std::env::temp_dir().join("kefu-artifacts"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&artifacts).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/browser")
        .join(script);
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .env("KEFU_URL", format!("http://{addr}"))
        .env("SCREENSHOT_DIR", &artifacts)
        .output()
        .await
        .expect("node runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the browser test failed:\n{log}");
    eprintln!("screenshots in {}", artifacts.display());
    (log, artifacts)
}

fn assert_screenshots(artifacts: &Path, pictures: &[&str]) {
    for picture in pictures {
        let size = std::fs::metadata(artifacts.join(picture)).unwrap().len();
        assert!(
            size > 10_000,
            "{picture} is a real screenshot ({size} bytes)"
        );
    }
}

#[tokio::test]
async fn the_demo_shop_chats_in_chromium() {
    let Some((log, artifacts)) = run_script("shop.mjs").await else {
        return;
    };
    assert!(
        log.contains("ok: the shop chat works and resumes in en and zh-CN"),
        "{log}"
    );
    assert_screenshots(&artifacts, &["shop-chat-en.png", "shop-chat-zh.png"]);
}

#[tokio::test]
async fn an_agent_takes_over_in_the_console_in_chromium() {
    let Some((log, artifacts)) = run_script("console.mjs").await else {
        return;
    };
    assert!(
        log.contains("ok: an agent took over, replied, transferred and handed back"),
        "{log}"
    );
    assert_screenshots(&artifacts, &["console-agent.png", "console-visitor.png"]);
}

#[tokio::test]
async fn a_flow_is_built_with_the_mouse_previewed_and_published_in_chromium() {
    if std::env::var_os("KEFU_ADMIN_PASSWORD").is_none() {
        eprintln!(
            "KEFU_ADMIN_PASSWORD is not set: skipping the designer's browser test (see .ci/run)"
        );
        return;
    }
    let Some((log, artifacts)) = run_script("designer.mjs").await else {
        return;
    };
    assert!(
        log.contains(
            "ok: a flow was built with the mouse, previewed, published and chatted with in the shop"
        ),
        "{log}"
    );
    assert_screenshots(
        &artifacts,
        &[
            "designer-editor.png",
            "designer-preview.png",
            "designer-shop.png",
        ],
    );
}

#[tokio::test]
async fn departments_see_masked_customers_and_the_admin_manages_access_in_chromium() {
    if std::env::var_os("KEFU_ADMIN_PASSWORD").is_none() {
        eprintln!("KEFU_ADMIN_PASSWORD is not set: skipping the access browser test (see .ci/run)");
        return;
    }
    let Some((log, artifacts)) = run_script("access.mjs").await else {
        return;
    };
    // What each department saw, for the record (shown with --nocapture).
    eprintln!("{log}");
    assert!(
        log.contains(
            "ok: departments see masked customers, and the admin edited policies, checked, granted and audited"
        ),
        "{log}"
    );
    // What the script checked on the way, as it logged it.
    for line in [
        "the problem: ",
        "can agent read li.na? No: agent never served her",
        "can sales read li.na? Yes: sales served her",
        "refused: ",
    ] {
        assert!(log.contains(line), "the log says `{line}`:\n{log}");
    }
    assert_screenshots(
        &artifacts,
        &[
            "access-panel-sales.png",
            "access-panel-support.png",
            "access-policies.png",
            "access-audit.png",
        ],
    );
}
