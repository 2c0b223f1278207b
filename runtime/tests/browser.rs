//! The demo shop in a real headless Chromium: `tests/browser/shop.mjs` (playwright-core) opens
//! the shop, chats with the guided-shopping bot by clicking its buttons, waits for product
//! cards, saves screenshots, reloads and checks that the conversation comes back.
//!
//! Needs Node.js, Debian's Chromium and `npm ci` in `tests/browser`; `.ci/run` provides them and
//! sets `KEFU_TEST_BROWSER=1`. Without that variable the test says so and skips.

use std::path::Path;

use crate::chat::{Options, Server, temp_dir};

#[tokio::test]
async fn the_demo_shop_chats_in_chromium() {
    if std::env::var_os("KEFU_TEST_BROWSER").is_none() {
        eprintln!("KEFU_TEST_BROWSER is not set: skipping the browser test (see .ci/run)");
        return;
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
    let artifacts = std::env::var_os("KEFU_ARTIFACTS").map_or_else(
        || std::env::temp_dir().join("kefu-artifacts"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&artifacts).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser/shop.mjs");
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .env("KEFU_URL", format!("http://{}", server.addr))
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
    assert!(
        log.contains("ok: the shop chat works and resumes in en and zh-CN"),
        "{log}"
    );
    for picture in ["shop-chat-en.png", "shop-chat-zh.png"] {
        let size = std::fs::metadata(artifacts.join(picture)).unwrap().len();
        assert!(
            size > 10_000,
            "{picture} is a real screenshot ({size} bytes)"
        );
    }
    eprintln!("screenshots in {}", artifacts.display());
    server.stop().await;
}
