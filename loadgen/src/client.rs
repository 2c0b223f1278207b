//! Opening visitor and agent connections: the URL, loopback source addresses, small WebSocket
//! buffers, the session cookie of agents, and the open-files limit they all need.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::COOKIE;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub type Ws = WebSocketStream<TcpStream>;

/// Ephemeral ports one source address is used for (Linux offers about 28,000 by default).
const PER_SOURCE: usize = 25_000;

/// Where to connect, and from which loopback addresses.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: String,
    pub addr: SocketAddr,
    sources: u8,
}

impl Target {
    /// Parses a `ws://host:port/path` URL; `sources` defaults to one address per 25,000
    /// connections when the server is on loopback, else the system picks.
    pub async fn new(url: &str, sources: Option<u8>, connections: usize) -> anyhow::Result<Target> {
        let uri: Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
        if uri.scheme_str() != Some("ws") {
            bail!("only ws:// URLs are supported: {url}");
        }
        let host = uri.host().context("the URL has no host")?;
        let port = uri.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((host, port))
            .await
            .with_context(|| format!("cannot resolve {host}"))?
            .find(SocketAddr::is_ipv4)
            .with_context(|| format!("{host} has no IPv4 address"))?;
        let needed = u8::try_from(connections.div_ceil(PER_SOURCE).max(1)).unwrap_or(u8::MAX);
        let sources = if addr.ip().is_loopback() {
            sources.unwrap_or(needed).max(1)
        } else {
            0
        };
        Ok(Target {
            url: url.to_owned(),
            addr,
            sources,
        })
    }

    /// The source address of connection number `index` (127.0.0.1, 127.0.0.2, … in turn).
    fn source(&self, index: usize) -> Option<IpAddr> {
        if self.sources == 0 {
            return None;
        }
        let last = u8::try_from(index % usize::from(self.sources)).unwrap_or(0) + 1;
        Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
    }

    /// Opens connection number `index` and upgrades it to a WebSocket.
    pub async fn connect(&self, index: usize) -> anyhow::Result<Ws> {
        self.connect_with_cookie(index, None).await
    }

    /// Like `connect`, with a `Cookie` header on the upgrade request (the agent WebSocket
    /// authenticates with the session cookie).
    pub async fn connect_with_cookie(
        &self,
        index: usize,
        cookie: Option<&str>,
    ) -> anyhow::Result<Ws> {
        let mut request = self.url.as_str().into_client_request()?;
        if let Some(cookie) = cookie {
            request
                .headers_mut()
                .insert(COOKIE, HeaderValue::from_str(cookie)?);
        }
        let socket = TcpSocket::new_v4()?;
        if let Some(ip) = self.source(index) {
            socket
                .bind(SocketAddr::new(ip, 0))
                .with_context(|| format!("bind {ip}"))?;
        }
        let stream = socket.connect(self.addr).await.context("connect")?;
        stream.set_nodelay(true)?;
        // tungstenite reserves 128 KiB of read buffer per connection by default; frames here
        // are small, and 100,000 connections must fit in this process too.
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .context("WebSocket handshake")?;
        Ok(ws)
    }
}

/// Sends one JSON frame.
pub async fn send(ws: &mut Ws, frame: &Value) -> anyhow::Result<()> {
    ws.send(Message::text(frame.to_string())).await?;
    Ok(())
}

/// The next protocol frame (pings are answered by tungstenite while we poll), or `None` when
/// the connection closed or failed.
pub async fn next(ws: &mut Ws) -> Option<Value> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(text)) => match serde_json::from_str(&text) {
                Ok(frame) => return Some(frame),
                Err(_) => return Some(serde_json::json!({"type": "error", "code": "bad_json"})),
            },
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// The soft limit of open files (from `/proc/self/limits`), if it can be read.
fn open_files_limit() -> Option<(u64, String)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line["Max open files".len()..].split_whitespace();
    let soft = fields.next()?.parse().ok()?;
    let hard = fields.next()?.to_owned();
    Some((soft, hard))
}

/// Fails with a clear message when `connections` sockets (and a few more) cannot be opened.
///
/// Raising the soft limit would need `setrlimit`, which is `unsafe` here; the shell does it:
/// `bash -c 'ulimit -n 250000 && loadgen …'`.
pub fn check_open_files(connections: usize) -> anyhow::Result<()> {
    let Some((soft, hard)) = open_files_limit() else {
        return Ok(());
    };
    let needed = connections as u64 + 64;
    if soft < needed {
        bail!(
            "{connections} connections need about {needed} open files, the limit is {soft} \
             (hard limit {hard}): run `bash -c 'ulimit -n {needed} && loadgen …'` (the server \
             needs as many)"
        );
    }
    Ok(())
}
