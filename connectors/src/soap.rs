//! The SOAP 1.1 driver: the operation's body element (its `{name}` holes XML-escaped) in an
//! envelope, POSTed with `SOAPAction` and `Content-Type: text/xml; charset=utf-8`; the answer
//! read with `roxmltree`.
//!
//! A `Fault` anywhere in the answer's `Body` (whatever the HTTP status, usually 500) is a
//! `Remote` error with its `faultstring`; another non-2xx status is a `Remote` error naming
//! it. The rows are the elements at the template's path of local names under `Body`
//! (`GetOrderResponse/Order`: every `Order` child of every `GetOrderResponse`); a field is
//! the text of the element at its path of local names inside a row (namespaces ignored); an
//! absent element or one with `xsi:nil="true"` is null, an empty one `""`.
//!
//! XML has no types, so [`FieldType::Auto`] keeps text, except a plain decimal number
//! (`-12`, `3.50`; no leading zeros, exponent, `NaN` or `inf`), which becomes a number: an
//! order number such as `00042` or a postcode stays text. `true`/`false` stay text too; say
//! `type: bool` (or `number`) in the field map for those.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use flows::Value;

use crate::http::{HttpDriver, client_for, fill, status_error, value_text};
use crate::model::{
    CallFuture, Connector, ConnectorError, Driver, Entity, FieldSource, FieldType, Operation,
    Params, Rows,
};
use crate::registry::{apply_error_field, convert};

const ENVELOPE_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// A SOAP connector: an HTTP client and the service's URL.
pub struct SoapDriver {
    http: HttpDriver,
}

impl SoapDriver {
    pub fn new(connector: &Connector) -> Result<SoapDriver, ConnectorError> {
        let (client, base_url) = client_for(connector)?;
        Ok(SoapDriver {
            http: HttpDriver {
                name: connector.name.clone(),
                client,
                base_url,
            },
        })
    }
}

impl Driver for SoapDriver {
    fn call<'a>(
        &'a self,
        entity: &'a Entity,
        operation_name: &'a str,
        operation: &'a Operation,
        params: &'a Params,
    ) -> CallFuture<'a> {
        Box::pin(async move {
            let name = &self.http.name;
            let context = format!(
                "connector `{name}`, entity `{}`, operation `{operation_name}`",
                entity.name
            );
            let Operation::Request(template) = operation else {
                return Err(ConnectorError::Request(format!(
                    "{context}: a SOAP connector's operation needs action, body and rows"
                )));
            };
            let body = fill(template.body.as_deref().unwrap_or(""), params, |v| {
                xml_escape(&value_text(v))
            })
            .map_err(|hole| {
                ConnectorError::Request(format!("{context}: the body needs a parameter `{hole}`"))
            })?;
            let envelope = format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
                 <soap:Envelope xmlns:soap=\"{ENVELOPE_NS}\"><soap:Body>{body}</soap:Body></soap:Envelope>"
            );
            let url = self.http.url(&template.path, params)?;
            let action = template.action.as_deref().unwrap_or("");
            let response = self
                .http
                .client
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
                .header("SOAPAction", format!("\"{action}\""))
                .body(envelope)
                .send()
                .await
                .map_err(|e| self.http.send_error(&e))?;
            let status = response.status();
            let text = response
                .text()
                .await
                .map_err(|e| self.http.send_error(&e))?;
            let doc = match roxmltree::Document::parse(&text) {
                Ok(doc) => doc,
                Err(e) if status.is_success() => {
                    return Err(ConnectorError::Remote(format!(
                        "{context}: the answer is not XML ({e})"
                    )));
                }
                Err(_) => {
                    return Err(status_error(
                        status,
                        format!("{context}: the service answered HTTP {}", status.as_u16()),
                    ));
                }
            };
            let body = doc
                .descendants()
                .find(|n| n.is_element() && n.tag_name().name() == "Body");
            if let Some(fault) = body.and_then(|b| {
                b.descendants()
                    .find(|n| n.is_element() && n.tag_name().name() == "Fault")
            }) {
                let string = child_text(fault, "faultstring")
                    .or_else(|| {
                        // SOAP 1.2: Reason/Text.
                        fault
                            .descendants()
                            .find(|n| n.is_element() && n.tag_name().name() == "Text")
                            .and_then(|n| n.text())
                            .map(str::to_owned)
                    })
                    .unwrap_or_else(|| "no fault string".to_owned());
                let code = child_text(fault, "faultcode")
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default();
                return Err(ConnectorError::Remote(format!(
                    "{context}: SOAP fault{code}: {}",
                    string.trim()
                )));
            }
            if !status.is_success() {
                return Err(status_error(
                    status,
                    format!("{context}: the service answered HTTP {}", status.as_u16()),
                ));
            }
            let Some(body) = body else {
                return Err(ConnectorError::Remote(format!(
                    "{context}: the answer has no SOAP Body"
                )));
            };
            let mut rows = Rows::new();
            for element in at_path(body, &template.rows) {
                let mut row = BTreeMap::new();
                for field in &entity.fields {
                    let FieldSource::Xml(path) = &field.source else {
                        return Err(ConnectorError::Request(format!(
                            "{context}: field `{}` needs an element path",
                            field.name
                        )));
                    };
                    let value = match at_path(element, path).first() {
                        None => Value::Null,
                        Some(node) if is_nil(*node) => Value::Null,
                        Some(node) => {
                            let text: String = node
                                .descendants()
                                .filter(|n| n.is_text())
                                .filter_map(|n| n.text())
                                .collect();
                            auto_value(text, field.ty)
                        }
                    };
                    let value = convert(value, field.ty).map_err(|why| {
                        ConnectorError::Remote(format!("{context}, field `{}`: {why}", field.name))
                    })?;
                    row.insert(field.name.clone(), value);
                }
                apply_error_field(name, entity, &mut row)?;
                rows.push(row);
            }
            Ok(rows)
        })
    }

    fn ping(&self) -> Pin<Box<dyn Future<Output = Result<(), ConnectorError>> + Send + '_>> {
        self.http.ping()
    }
}

/// The elements at a `/`-separated path of local names below `from` (`""`: `from` itself).
fn at_path<'a, 'i>(from: roxmltree::Node<'a, 'i>, path: &str) -> Vec<roxmltree::Node<'a, 'i>> {
    let mut nodes = vec![from];
    for step in path.split('/').filter(|s| !s.is_empty()) {
        nodes = nodes
            .iter()
            .flat_map(|n| n.children())
            .filter(|c| c.is_element() && c.tag_name().name() == step)
            .collect();
    }
    nodes
}

fn child_text(node: roxmltree::Node<'_, '_>, local: &str) -> Option<String> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == local)
        .map(|c| c.descendants().filter_map(|n| n.text()).collect())
}

fn is_nil(node: roxmltree::Node<'_, '_>) -> bool {
    node.attribute((XSI_NS, "nil"))
        .is_some_and(|v| v == "true" || v == "1")
}

/// An element's text as a value: for `Auto`, a plain decimal number becomes a number.
fn auto_value(text: String, ty: FieldType) -> Value {
    if ty == FieldType::Auto
        && is_plain_number(text.trim())
        && let Ok(n) = text.trim().parse::<f64>()
    {
        return Value::Number(n);
    }
    Value::String(text)
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`
fn is_plain_number(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    digits(int) && (int == "0" || !int.starts_with('0')) && frac.is_none_or(digits)
}

/// Text escaped for XML character data and attribute values.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_numbers_only() {
        for yes in ["0", "12", "-3", "3.50", "0.5"] {
            assert!(is_plain_number(yes), "{yes}");
        }
        for no in [
            "", "00042", "1e5", "NaN", "inf", "1.", ".5", "+1", "12a", "-",
        ] {
            assert!(!is_plain_number(no), "{no}");
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(
            xml_escape("<a & 'b'>\""),
            "&lt;a &amp; &apos;b&apos;&gt;&quot;"
        );
    }

    #[test]
    fn paths_and_nil() {
        let xml = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><s:Body><r:Resp xmlns:r="urn:x"><r:Order><r:No>00042</r:No><r:Total>12.5</r:Total><r:Addr><r:City>Bonn</r:City></r:Addr><r:Note xsi:nil="true"/></r:Order><r:Order><r:No>7</r:No></r:Order></r:Resp></s:Body></s:Envelope>"#;
        let doc = roxmltree::Document::parse(xml).expect("xml");
        let body = doc
            .descendants()
            .find(|n| n.tag_name().name() == "Body")
            .expect("body");
        let rows = at_path(body, "Resp/Order");
        assert_eq!(rows.len(), 2);
        assert_eq!(at_path(rows[0], "Addr/City")[0].text(), Some("Bonn"));
        assert!(is_nil(at_path(rows[0], "Note")[0]));
        assert_eq!(
            auto_value("00042".into(), FieldType::Auto),
            Value::String("00042".into())
        );
        assert_eq!(
            auto_value("12.5".into(), FieldType::Auto),
            Value::Number(12.5)
        );
        assert_eq!(
            auto_value("7".into(), FieldType::Text),
            Value::String("7".into())
        );
    }
}
