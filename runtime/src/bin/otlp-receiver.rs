//! `otlp-receiver`: a minimal OTLP/HTTP logs receiver for tests of the audit trail's export.
//! It decodes each `ExportLogsServiceRequest` (protobuf, `POST /v1/logs`) with the
//! `opentelemetry-proto` types and appends one JSON line per log record to a file (fsynced
//! before it answers, so what it acknowledged survives a kill).
//!
//!     otlp-receiver --addr 127.0.0.1:0 --out FILE    # prints `listening on ADDR`

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message as _;
use serde_json::{Map, Value, json};

fn main() -> anyhow::Result<()> {
    let mut addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 4318));
    let mut out = PathBuf::from("otlp-received.jsonl");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().unwrap_or_default().parse()?,
            "--out" => out = PathBuf::from(args.next().unwrap_or_default()),
            other => anyhow::bail!("unknown argument `{other}` (use --addr ADDR --out FILE)"),
        }
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&out)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("listening on {}", listener.local_addr()?);
        std::io::stdout().flush()?;
        let app = Router::new()
            .route("/v1/logs", post(logs))
            .with_state(Arc::new(Mutex::new(file)));
        axum::serve(listener, app).await?;
        Ok(())
    })
}

async fn logs(State(file): State<Arc<Mutex<std::fs::File>>>, body: Bytes) -> Response {
    let request = match ExportLogsServiceRequest::decode(body) {
        Ok(request) => request,
        Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    };
    let mut lines = String::new();
    for resource in &request.resource_logs {
        let resource_attrs = resource
            .resource
            .as_ref()
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        for scope in &resource.scope_logs {
            let scope_name = scope
                .scope
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default();
            for record in &scope.log_records {
                let line = json!({
                    "resource": resource_attrs,
                    "scope": scope_name,
                    "time_unix_nano": record.time_unix_nano,
                    "severity_text": record.severity_text,
                    "event_name": record.event_name,
                    "body": record.body.as_ref().map_or(Value::Null, value),
                    "attributes": attributes(&record.attributes),
                });
                lines.push_str(&line.to_string());
                lines.push('\n');
            }
        }
    }
    let written = {
        let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
        file.write_all(lines.as_bytes())
            .and_then(|()| file.sync_data())
    };
    if let Err(error) = written {
        return (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response();
    }
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportLogsServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

fn attributes(list: &[KeyValue]) -> Map<String, Value> {
    list.iter()
        .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Value::Null, value)))
        .collect()
}

fn value(v: &AnyValue) -> Value {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => json!(s),
        Some(any_value::Value::BoolValue(b)) => json!(b),
        Some(any_value::Value::IntValue(i)) => json!(i),
        Some(any_value::Value::DoubleValue(d)) => json!(d),
        Some(any_value::Value::ArrayValue(a)) => Value::Array(a.values.iter().map(value).collect()),
        Some(any_value::Value::KvlistValue(l)) => Value::Object(attributes(&l.values)),
        Some(any_value::Value::BytesValue(b)) => json!(b),
        _ => Value::Null,
    }
}
