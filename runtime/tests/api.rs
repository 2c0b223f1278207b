//! The HTTP API, called through the router without a socket.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use runtime::server::{AppState, app};
use serde_json::Value;
use tower::ServiceExt;

async fn call(method: &str, uri: &str, body: &str) -> (StatusCode, Value) {
    let state = Arc::new(AppState::bundled().expect("bundled flows load"));
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = app(state).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json)
}

#[tokio::test]
async fn health_reports_ok() {
    let (status, body) = call("GET", "/healthz", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn the_bundled_flows_are_listed_and_served() {
    let (status, body) = call("GET", "/api/flows", "").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"guided-shopping"), "{ids:?}");
    assert!(body[0]["hash"].as_str().unwrap().len() == 16);

    let (status, flow) = call("GET", "/api/flows/guided-shopping", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(flow["schema_version"], 2);

    let (status, error) = call("GET", "/api/flows/nope", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["error"], "no flow `nope`");
}

#[tokio::test]
async fn validation_returns_every_diagnostic() {
    let broken = include_str!("../../flows/tests/broken/dead-end.flow.json");
    let (status, body) = call("POST", "/api/flows/validate", broken).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["errors"], 1);
    assert_eq!(body["diagnostics"][0]["code"], "dead-end");
    assert_eq!(body["diagnostics"][0]["node"], "big");
    assert_eq!(body["diagnostics"][0]["port"], "next");

    let (status, body) = call(
        "POST",
        "/api/flows/validate",
        include_str!("../../flows/library/order-status.flow.json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["errors"], 0, "{body}");
}

#[tokio::test]
async fn a_document_that_is_no_flow_gets_a_located_422() {
    let (status, body) = call(
        "POST",
        "/api/flows/validate",
        "{\"schema_version\": 2,\n \"id\": 5}",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["error"],
        "at `id` (line 2, column 8): invalid type: integer `5`, expected a string"
    );
}
