//! The browser app (crate `designer`): its prebuilt bundle, embedded from `runtime/assets/app/`
//! (rebuilt with `cargo run -p xtask -- bundle`), and the HTML page of the agent console and
//! of the flow designer.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;

use crate::server::AppState;

const APP_JS: &str = include_str!("../assets/app/kefu_app.js");
const APP_WASM: &[u8] = include_bytes!("../assets/app/kefu_app_bg.wasm");
/// The bundle's source hash: the bundle's URLs carry it so that browsers never run a stale
/// copy from their cache next to a newer server.
const STAMP: &str = include_str!("../assets/app/STAMP");

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/app/kefu_app.js", get(app_js))
        .route("/app/kefu_app_bg.wasm", get(app_wasm))
        .route("/console", get(console))
        .route("/console/{*rest}", get(console))
        .route("/designer", get(designer))
        .route("/designer/{*rest}", get(designer))
}

/// The bundle's URLs carry its stamp (`?v=`), so a browser may keep a copy for good: a new
/// bundle comes with a new URL.
const CACHE_FOR_GOOD: &str = "public, max-age=31536000, immutable";

async fn app_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE_FOR_GOOD),
        ],
        APP_JS,
    )
}

async fn app_wasm() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/wasm"),
            (header::CACHE_CONTROL, CACHE_FOR_GOOD),
        ],
        APP_WASM,
    )
}

async fn console() -> Html<String> {
    shell(
        "客服工作台 · Agent console",
        "客服工作台需要 JavaScript。The agent console needs JavaScript.",
    )
}

async fn designer() -> Html<String> {
    shell(
        "流程设计器 · Flow designer",
        "流程设计器需要 JavaScript。The flow designer needs JavaScript.",
    )
}

/// The page that loads the app; the app mounts what the path asks for.
fn shell(title: &str, noscript: &str) -> Html<String> {
    let version = STAMP.trim().get(..16).unwrap_or("dev");
    Html(format!(
        r#"<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kefu · {title}</title>
</head>
<body>
<div id="app"><p style="padding:2em;font-family:system-ui,sans-serif;color:#667">加载中… Loading…</p></div>
<noscript>{noscript}</noscript>
<script type="module">
import init from '/app/kefu_app.js?v={version}';
init({{ module_or_path: '/app/kefu_app_bg.wasm?v={version}' }});
</script>
</body>
</html>
"#
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_is_embedded() {
        assert!(
            APP_WASM.starts_with(b"\0asm"),
            "kefu_app_bg.wasm is not WebAssembly"
        );
        assert!(APP_JS.contains("kefu_app_bg.wasm"));
        assert_eq!(STAMP.trim().len(), 64, "STAMP is a SHA-256 in hex");
    }
}
