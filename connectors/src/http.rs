//! The REST driver: JSON over HTTP(S) with reqwest (rustls with ring, no OpenSSL).
//!
//! A request is the operation's template: `base_url` joined with the path (whose `{name}` holes
//! are percent-encoded), the connector's headers, and for a body a JSON template in which a
//! string that is exactly `"{name}"` becomes the parameter's JSON value (keeping its type) and
//! `{name}` inside a longer string its text. The answer: a non-2xx status is a `Remote` error
//! naming it (a `404` on a `GET` answers zero rows; 502, 503 and 504 are `Unavailable`, so
//! reads are retried); the rows are at the template's JSON
//! pointer (an array gives one row per item, an object one row, null or absent none), each field
//! at its own JSON pointer inside a row (absent: null), converted by its [`FieldType`].

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use flows::Value;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::model::{
    CallFuture, Connector, ConnectorError, Driver, Entity, FieldSource, Operation, Params,
    RequestTemplate, Rows, Target,
};
use crate::registry::{apply_error_field, convert, number_text};

/// How long connecting to a service may take (the whole call is bounded by the registry).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Characters left as they are in a path segment: RFC 3986's unreserved ones.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A REST connector's client and target.
pub struct HttpDriver {
    pub(crate) name: String,
    pub(crate) client: reqwest::Client,
    pub(crate) base_url: String,
}

impl HttpDriver {
    pub fn new(connector: &Connector) -> Result<HttpDriver, ConnectorError> {
        let (client, base_url) = client_for(connector)?;
        Ok(HttpDriver {
            name: connector.name.clone(),
            client,
            base_url,
        })
    }

    /// The request URL: the base URL joined with the path, holes percent-encoded.
    pub(crate) fn url(&self, path: &str, params: &Params) -> Result<String, ConnectorError> {
        let path = fill(path, params, |v| {
            utf8_percent_encode(&value_text(v), SEGMENT).to_string()
        })
        .map_err(|hole| self.missing(&hole))?;
        Ok(join_url(&self.base_url, &path))
    }

    fn missing(&self, hole: &str) -> ConnectorError {
        ConnectorError::Request(format!(
            "connector `{}`: the template needs a parameter `{hole}`",
            self.name
        ))
    }

    /// Turns a transport error into a connector error (never with the headers).
    pub(crate) fn send_error(&self, e: &reqwest::Error) -> ConnectorError {
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "cannot connect"
        } else if e.is_body() || e.is_decode() {
            "the answer broke off"
        } else {
            "the request failed"
        };
        let mut source = std::error::Error::source(e);
        let mut detail = String::new();
        while let Some(s) = source {
            detail = s.to_string();
            source = s.source();
        }
        let url = e.url().map(|u| redact(u.as_str())).unwrap_or_default();
        ConnectorError::Unavailable(format!(
            "connector `{}`: {what} ({url}){}",
            self.name,
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            }
        ))
    }

    async fn request(
        &self,
        entity: &Entity,
        operation_name: &str,
        template: &RequestTemplate,
        params: &Params,
    ) -> Result<Rows, ConnectorError> {
        let url = self.url(&template.path, params)?;
        let method = reqwest::Method::from_bytes(template.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| {
            ConnectorError::Request(format!(
                "connector `{}`: `{}` is not an HTTP method",
                self.name, template.method
            ))
        })?;
        let is_get = method == reqwest::Method::GET;
        let mut request = self
            .client
            .request(method, &url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = &template.body {
            let body = json_body(body, params).map_err(|e| {
                ConnectorError::Request(format!(
                    "connector `{}`, entity `{}`, operation `{operation_name}`: {e}",
                    self.name, entity.name
                ))
            })?;
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = request.send().await.map_err(|e| self.send_error(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.send_error(&e))?;
        let context = format!(
            "connector `{}`, entity `{}`, operation `{operation_name}`",
            self.name, entity.name
        );
        if status == reqwest::StatusCode::NOT_FOUND && is_get {
            return Ok(Rows::new());
        }
        if !status.is_success() {
            return Err(status_error(
                status,
                format!(
                    "{context}: the service answered HTTP {}{}",
                    status.as_u16(),
                    excerpt(&bytes)
                ),
            ));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Rows::new());
        }
        let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ConnectorError::Remote(format!("{context}: the answer is not JSON ({e})"))
        })?;
        let items: Vec<&serde_json::Value> = match json.pointer(&template.rows) {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(items)) => items.iter().collect(),
            Some(item) => vec![item],
        };
        let mut rows = Rows::with_capacity(items.len());
        for item in items {
            let mut row = BTreeMap::new();
            for field in &entity.fields {
                let FieldSource::Json(pointer) = &field.source else {
                    return Err(ConnectorError::Request(format!(
                        "{context}: field `{}` needs a JSON pointer",
                        field.name
                    )));
                };
                let value = item.pointer(pointer).map_or(Value::Null, Value::from_json);
                let value = convert(value, field.ty).map_err(|why| {
                    ConnectorError::Remote(format!("{context}, field `{}`: {why}", field.name))
                })?;
                row.insert(field.name.clone(), value);
            }
            apply_error_field(&self.name, entity, &mut row)?;
            rows.push(row);
        }
        Ok(rows)
    }
}

impl Driver for HttpDriver {
    fn call<'a>(
        &'a self,
        entity: &'a Entity,
        operation_name: &'a str,
        operation: &'a Operation,
        params: &'a Params,
    ) -> CallFuture<'a> {
        Box::pin(async move {
            let Operation::Request(template) = operation else {
                return Err(ConnectorError::Request(format!(
                    "connector `{}`, entity `{}`: operation `{operation_name}` is a SQL operation; a REST connector needs method, path and rows",
                    self.name, entity.name
                )));
            };
            self.request(entity, operation_name, template, params).await
        })
    }

    fn ping(&self) -> Pin<Box<dyn Future<Output = Result<(), ConnectorError>> + Send + '_>> {
        Box::pin(async move {
            // Any answer at all means the service is there.
            self.client
                .head(&self.base_url)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.send_error(&e))
        })
    }
}

/// The client (headers, connect timeout, rustls with ring and the OS's certificates) and the
/// base URL of a REST or SOAP connector.
pub(crate) fn client_for(
    connector: &Connector,
) -> Result<(reqwest::Client, String), ConnectorError> {
    let Target::Service { base_url, headers } = &connector.target else {
        return Err(ConnectorError::Request(format!(
            "connector `{}`: a {} connector needs a base_url",
            connector.name,
            connector.driver.as_str()
        )));
    };
    let bad =
        |what: String| ConnectorError::Request(format!("connector `{}`: {what}", connector.name));
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| bad(format!("`{name}` is not a valid header name")))?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| bad(format!("the value of header `{name}` is not valid")))?;
        value.set_sensitive(true);
        map.insert(header, value);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            use rustls_platform_verifier::BuilderVerifierExt;
            b.with_platform_verifier()
        })
        .map_err(|e| bad(format!("cannot set up TLS: {e}")))?
        .with_no_client_auth();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .default_headers(map)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(|e| bad(format!("cannot build the HTTP client: {e}")))?;
    Ok((client, base_url.clone()))
}

/// An HTTP error status as a connector error: 502, 503 and 504 say the service is not
/// available (so reads are retried and the breaker counts them), others are its answer.
pub(crate) fn status_error(status: reqwest::StatusCode, text: String) -> ConnectorError {
    match status.as_u16() {
        502..=504 => ConnectorError::Unavailable(text),
        _ => ConnectorError::Remote(text),
    }
}

/// `base` and `path` with exactly one `/` between them; an absolute `path` stands alone.
pub(crate) fn join_url(base: &str, path: &str) -> String {
    if path.starts_with("http://") || path.starts_with("https://") {
        return path.to_owned();
    }
    if path.is_empty() {
        return base.to_owned();
    }
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

fn redact(url: &str) -> String {
    let url = crate::model::redact_url(url);
    // Query strings may carry API keys.
    match url.find('?') {
        Some(q) => format!("{}?…", &url[..q]),
        None => url,
    }
}

/// The start of an error answer's body, for the error text.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let cut: String = text.chars().take(200).collect();
    format!(": {cut}{}", if cut.len() < text.len() { "…" } else { "" })
}

/// A parameter's text in a path or inside a longer string.
pub(crate) fn value_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number_text(*n),
        Value::String(s) => s.clone(),
        Value::List(_) | Value::Map(_) => {
            serde_json::to_string(&value_json(value)).unwrap_or_default()
        }
    }
}

pub(crate) fn value_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
            serde_json::Value::from(*n as i64)
        }
        Value::Number(n) => serde_json::Number::from_f64(*n)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::List(items) => serde_json::Value::Array(items.iter().map(value_json).collect()),
        Value::Map(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), value_json(v)))
                .collect(),
        ),
    }
}

/// `template` with every `{name}` hole replaced by `escape(params[name])`; the name of the
/// first hole without a parameter as the error. `{{` and `}}` stand for braces.
pub(crate) fn fill(
    template: &str,
    params: &Params,
    escape: impl Fn(&Value) -> String,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if let Some(close) = tail.find('}').filter(|_| tail.starts_with('{')) {
            let name = &tail[1..close];
            if is_name(name) {
                let value = params.get(name).ok_or_else(|| name.to_owned())?;
                out.push_str(&escape(value));
                rest = &tail[close + 1..];
                continue;
            }
        }
        out.push_str(&tail[..1]);
        rest = &tail[1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// The JSON body: the template parsed, holes filled in its strings, printed again.
fn json_body(template: &str, params: &Params) -> Result<String, String> {
    let json: serde_json::Value = serde_json::from_str(template)
        .map_err(|e| format!("the body template is not JSON ({e})"))?;
    let filled = fill_json(json, params)?;
    serde_json::to_string(&filled).map_err(|e| e.to_string())
}

fn fill_json(json: serde_json::Value, params: &Params) -> Result<serde_json::Value, String> {
    let missing = |hole: String| format!("the body needs a parameter `{hole}`");
    Ok(match json {
        serde_json::Value::String(s) => {
            let whole = s
                .strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
                .filter(|name| is_name(name));
            match whole {
                Some(name) => value_json(params.get(name).ok_or_else(|| missing(name.to_owned()))?),
                None => serde_json::Value::String(fill(&s, params, value_text).map_err(missing)?),
            }
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(
            items
                .into_iter()
                .map(|i| fill_json(i, params))
                .collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .map(|(k, v)| Ok((k, fill_json(v, params)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, Value)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn path_holes_are_percent_encoded() {
        let p = params(&[("id", Value::String("a b/../c?d".into()))]);
        assert_eq!(
            fill("customers/{id}", &p, |v| utf8_percent_encode(
                &value_text(v),
                SEGMENT
            )
            .to_string()),
            Ok("customers/a%20b%2F..%2Fc%3Fd".to_owned())
        );
        assert_eq!(fill("x/{nope}", &p, value_text), Err("nope".to_owned()));
        assert_eq!(
            fill("{{literal}}", &p, value_text),
            Ok("{literal}".to_owned())
        );
    }

    #[test]
    fn body_holes_keep_types() {
        let p = params(&[
            ("n", Value::Number(3.0)),
            ("name", Value::String("Ann \"A\"".into())),
            ("flag", Value::Bool(true)),
        ]);
        let body = json_body(
            r#"{"count": "{n}", "who": "{name}", "greeting": "hi {name}, {n}", "f": ["{flag}"]}"#,
            &p,
        );
        assert_eq!(
            body.as_deref(),
            Ok(r#"{"count":3,"who":"Ann \"A\"","greeting":"hi Ann \"A\", 3","f":[true]}"#)
        );
    }

    #[test]
    fn urls_join() {
        assert_eq!(join_url("http://x/api/", "/c/1"), "http://x/api/c/1");
        assert_eq!(join_url("http://x/api", "c/1"), "http://x/api/c/1");
        assert_eq!(join_url("http://x/api", ""), "http://x/api");
    }
}
