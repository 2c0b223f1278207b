//! A minimal HTTP/1.1 client for the console API (`docs/console-api.md`): one JSON `POST` per
//! connection (`Connection: close`), the session cookie and the CSRF token.
//!
//! The workspace has no HTTP client crate, and `loadgen` needs only signing in and creating
//! accounts, so this reads the whole answer and parses the few parts it needs.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A signed-in account: what every later request and the agent WebSocket carry.
#[derive(Clone, Debug)]
pub struct Session {
    /// `kefu_session=…`, ready for a `Cookie` header.
    pub cookie: String,
    /// The session's CSRF token, for `X-CSRF-Token`.
    pub csrf: String,
}

/// An answer: its status, the session cookie it set (if any) and its JSON body (`Null` when
/// empty or not JSON).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub cookie: Option<String>,
    pub body: Value,
}

impl Response {
    /// The body's `error` field, or the status, for messages.
    pub fn reason(&self) -> String {
        match self.body["error"].as_str() {
            Some(error) => format!("{}: {error}", self.status),
            None => format!("status {}", self.status),
        }
    }
}

/// `POST path` with a JSON body to the server at `addr`, as `session` when given.
pub async fn post(
    addr: SocketAddr,
    path: &str,
    body: &Value,
    session: Option<&Session>,
) -> anyhow::Result<Response> {
    let body = body.to_string();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(session) = session {
        request.push_str(&format!(
            "Cookie: {}\r\nX-CSRF-Token: {}\r\n",
            session.cookie, session.csrf
        ));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .with_context(|| format!("read the answer to POST {path}"))?;
    parse(&answer).with_context(|| format!("the answer to POST {path}"))
}

/// Signs in with `login` and `password` (`POST /api/auth/login`).
pub async fn login(addr: SocketAddr, login: &str, password: &str) -> anyhow::Result<Session> {
    let body = serde_json::json!({"login": login, "password": password});
    let response = post(addr, "/api/auth/login", &body, None).await?;
    if response.status != 200 {
        bail!("signing in as {login} failed: {}", response.reason());
    }
    let cookie = response
        .cookie
        .with_context(|| format!("signing in as {login}: no kefu_session cookie"))?;
    let csrf = response.body["csrf"]
        .as_str()
        .with_context(|| format!("signing in as {login}: no csrf in the answer"))?
        .to_owned();
    Ok(Session { cookie, csrf })
}

/// Status line, `Set-Cookie: kefu_session=…` and the body (plain or chunked).
fn parse(answer: &[u8]) -> anyhow::Result<Response> {
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of the headers")?;
    let head = std::str::from_utf8(&answer[..split]).context("headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let mut cookie = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("set-cookie") && value.starts_with("kefu_session=") {
            cookie = Some(value.split(';').next().unwrap_or(value).to_owned());
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.eq_ignore_ascii_case("chunked")
        {
            chunked = true;
        }
    }
    let raw = &answer[split + 4..];
    let body = if chunked { dechunk(raw)? } else { raw.to_vec() };
    Ok(Response {
        status,
        cookie,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

/// The body of a `Transfer-Encoding: chunked` answer.
fn dechunk(mut raw: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk has no size line")?;
        let size = std::str::from_utf8(&raw[..end])?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or(size).trim(), 16)
            .with_context(|| format!("bad chunk size {size:?}"))?;
        raw = &raw[end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = raw.get(..size).context("a chunk is cut short")?;
        body.extend_from_slice(chunk);
        raw = raw.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn reads_the_cookie_and_a_plain_body() {
        let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
            set-cookie: kefu_session=abc123; HttpOnly; SameSite=Lax; Path=/\r\n\
            content-length: 14\r\n\r\n{\"csrf\":\"xyz\"}";
        let response = parse(answer).expect("a valid answer");
        assert_eq!(response.status, 200);
        assert_eq!(response.cookie.as_deref(), Some("kefu_session=abc123"));
        assert_eq!(response.body["csrf"], "xyz");
    }

    #[test]
    fn reads_a_chunked_body() {
        let answer = b"HTTP/1.1 409 Conflict\r\ntransfer-encoding: chunked\r\n\r\n\
            6\r\n{\"erro\r\n8\r\nr\":\"no\"}\r\n0\r\n\r\n";
        let response = parse(answer).expect("a valid answer");
        assert_eq!(response.status, 409);
        assert_eq!(response.cookie, None);
        assert_eq!(response.reason(), "409: no");
    }
}
