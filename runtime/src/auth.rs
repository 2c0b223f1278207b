//! Accounts and signing in (`docs/console-api.md`): Argon2id password hashes, session cookies
//! (only the SHA-256 of the token is stored), a CSRF token per session checked on every
//! request that changes something, a rate limit on failed logins, the first accounts created
//! at first start, and the extractors ([`Caller`], [`Admin`]) with which every console route
//! checks who is asking.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::conversation::now_ms;
use crate::server::{ApiError, AppState};
use crate::store::{NewUser, Store, User};

/// The session cookie.
pub const COOKIE: &str = "kefu_session";

/// The header that carries the session's CSRF token on requests that change something.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How long a sign-in lasts.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Failed logins allowed per login name within [`LOGIN_WINDOW`]…
const LOGIN_FAILURES: u32 = 5;
/// …and per client address (higher: many people may share one address).
const ADDRESS_FAILURES: u32 = 20;
const LOGIN_WINDOW: Duration = Duration::from_secs(60);

/// How many password hashes are computed at once, each on its own long-lived thread. An
/// Argon2id computation takes 19 MiB; on tokio's blocking pool (up to 512 threads, each with
/// its own allocator arena keeping what it once held) a burst of 200 logins grew the server
/// from 34 MiB to 1.6 GiB, and still to 630 MiB with two at a time. Two fixed threads keep
/// about two such buffers.
const HASHING_THREADS: usize = 2;

type Job = Box<dyn FnOnce() + Send>;

/// Runs `work` (a password hash or verification) on the hashing threads; `None` if they are
/// gone (they never end on their own).
pub async fn hashing<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    static JOBS: std::sync::OnceLock<Option<std::sync::mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    let jobs = JOBS.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..HASHING_THREADS {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new()
                .name(format!("kefu-hashing-{index}"))
                .spawn(move || {
                    loop {
                        let job = receiver
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password hashing thread");
                return None;
            }
        }
        Some(sender)
    });
    let (reply, answer) = tokio::sync::oneshot::channel();
    jobs.as_ref()?
        .send(Box::new(move || {
            let _ = reply.send(work());
        }))
        .ok()?;
    answer.await.ok()
}

/// An Argon2id hash of `password` (PHC string, with a fresh salt).
pub fn hash_password(password: &str) -> Result<String, String> {
    // 16 bytes from the OS's random source (a v4 UUID is 122 of them).
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .map_err(|error| error.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| error.to_string())
}

/// Whether `password` matches `hash` (false for a malformed hash).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// The routes of signing in and out.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/auth/login", post(login))
        .route("/api/auth/me", get(me))
        .route("/api/auth/logout", post(logout))
}

/// Counts failed logins per key (a login name, a client address) in fixed windows.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, (Instant, u32)>>,
}

impl LoginLimiter {
    /// How long `key` must wait, if it has failed `limit` times lately.
    fn blocked(&self, key: &str, limit: u32, now: Instant) -> Option<Duration> {
        let failures = self.lock();
        let (since, count) = failures.get(key)?;
        let elapsed = now.saturating_duration_since(*since);
        (elapsed < LOGIN_WINDOW && *count >= limit).then(|| LOGIN_WINDOW - elapsed)
    }

    fn failed(&self, key: &str, now: Instant) {
        let mut failures = self.lock();
        // Forget old windows now and then, so the map cannot grow without bound.
        if failures.len() > 10_000 {
            failures.retain(|_, (since, _)| now.saturating_duration_since(*since) < LOGIN_WINDOW);
        }
        let entry = failures.entry(key.to_owned()).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= LOGIN_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    fn succeeded(&self, key: &str) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, u32)>> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A signed-in caller. Extracting it fails with 401 without a valid session, and with 403 when
/// a request that changes something lacks the session's CSRF token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub csrf: String,
    /// The client's address, when the server knows it (the audit trail's "from where").
    pub ip: Option<String>,
    token_hash: String,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.user.role == "admin"
    }
}

/// The client's address: the TCP peer's, or — when the peer is a reverse proxy listed in
/// `KEFU_TRUSTED_PROXIES` (comma-separated addresses) — the one the proxy forwarded for: the
/// last `X-Forwarded-For` entry that is not itself a trusted proxy. What the audit trail
/// records as "from where", what `context.ip` holds and what sign-in attempts are limited by.
pub fn client_ip(headers: &HeaderMap, peer: Option<std::net::IpAddr>) -> Option<String> {
    static TRUSTED: std::sync::OnceLock<Vec<std::net::IpAddr>> = std::sync::OnceLock::new();
    let trusted = TRUSTED.get_or_init(|| {
        std::env::var("KEFU_TRUSTED_PROXIES")
            .unwrap_or_default()
            .split(',')
            .filter_map(|ip| ip.trim().parse().ok())
            .collect()
    });
    client_ip_behind(headers, peer, trusted)
}

fn client_ip_behind(
    headers: &HeaderMap,
    peer: Option<std::net::IpAddr>,
    trusted: &[std::net::IpAddr],
) -> Option<String> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer.to_string());
    }
    let forwarded: Vec<std::net::IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|ip| ip.trim().parse().ok())
        .collect();
    let client = forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer);
    Some(client.to_string())
}

/// A signed-in admin (403 for an agent).
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let store = state.store.as_ref().ok_or_else(no_accounts)?;
        let token = cookie(&parts.headers, COOKIE).ok_or_else(signed_out)?;
        let token_hash = sha256_hex(&token);
        let (user, csrf) = store
            .auth_session(&token_hash, now_ms())
            .await
            .map_err(|error| {
                tracing::error!(%error, "cannot read a session");
                ApiError::internal()
            })?
            .ok_or_else(signed_out)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !constant_time_eq(sent.as_bytes(), csrf.as_bytes()) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("the {CSRF_HEADER} header is missing or wrong"),
                ));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let ip = client_ip(&parts.headers, peer);
        Ok(Caller {
            user,
            csrf,
            ip,
            token_hash,
        })
    }
}

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.is_admin() {
            Ok(Admin(caller))
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "only admins may do this",
            ))
        }
    }
}

fn signed_out() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "sign in first")
}

fn no_accounts() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "accounts are not available on this server",
    )
}

#[derive(Deserialize)]
struct Login {
    login: String,
    password: String,
}

async fn login(
    State(state): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Json(body): Json<Login>,
) -> Result<Response, ApiError> {
    let store = state.store.as_ref().ok_or_else(no_accounts)?;
    let limiter = &state.login_limiter;
    let now = Instant::now();
    let keys = [
        (
            format!("login:{}", body.login.to_lowercase()),
            LOGIN_FAILURES,
        ),
        (
            format!(
                "peer:{}",
                client_ip(&headers, peer.map(|Extension(ConnectInfo(addr))| addr.ip()))
                    .unwrap_or_default()
            ),
            ADDRESS_FAILURES,
        ),
    ];
    if let Some(wait) = keys
        .iter()
        .filter_map(|(key, limit)| limiter.blocked(key, *limit, now))
        .max()
    {
        let seconds = wait.as_secs().max(1);
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed logins; try again in {seconds} s"),
        )
        .into_response();
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return Ok(response);
    }
    let found = store.user_by_login(&body.login).await.map_err(|error| {
        tracing::error!(%error, "cannot read an account");
        ApiError::internal()
    })?;
    // Verify even for an unknown login, so the answer takes as long either way.
    let hash = found
        .as_ref()
        .map_or_else(dummy_hash, |(_, hash)| hash.clone());
    let password = body.password;
    let matches = hashing(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let ip = keys[1].0.strip_prefix("peer:").filter(|ip| !ip.is_empty());
    let attempt = crate::audit::AuditRecord::new(
        body.login.clone(),
        "sign-in",
        format!("accounts::{}", body.login),
    )
    .ip(ip.map(str::to_owned));
    let Some((user, _)) = found.filter(|_| matches) else {
        state.audit.record(attempt.denied()).await;
        for (key, _) in &keys {
            limiter.failed(key, now);
        }
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong login or password",
        ));
    };
    limiter.succeeded(&keys[0].0);
    let token = random_token();
    let csrf = random_token();
    let created = now_ms();
    let lifetime = i64::try_from(SESSION_LIFETIME.as_millis()).unwrap_or(i64::MAX);
    store
        .create_auth_session(
            &sha256_hex(&token),
            &user.id,
            &csrf,
            created,
            created + lifetime,
        )
        .await
        .map_err(|error| {
            tracing::error!(%error, "cannot record a session");
            ApiError::internal()
        })?;
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{}",
        SESSION_LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    tracing::info!(login = %user.login, "signed in");
    state.audit.record(attempt).await;
    let mut response = Json(json!({ "user": user, "csrf": csrf })).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

async fn me(caller: Caller) -> Json<serde_json::Value> {
    Json(json!({ "user": caller.user, "csrf": caller.csrf }))
}

async fn logout(State(state): State<Arc<AppState>>, caller: Caller) -> Result<Response, ApiError> {
    let store = state.store.as_ref().ok_or_else(no_accounts)?;
    store
        .delete_auth_session(&caller.token_hash)
        .await
        .map_err(|error| {
            tracing::error!(%error, "cannot end a session");
            ApiError::internal()
        })?;
    let expired = format!("{COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0");
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// A valid hash of a password nobody has, to verify against when the login is unknown.
fn dummy_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&random_token()).unwrap_or_default())
        .clone()
}

/// 256 random bits, hex.
fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// What the database keeps of a bearer token (a session cookie, a visitor's conversation
/// token): its SHA-256, lowercase hex.
pub(crate) fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write as _;
    let mut hex = String::with_capacity(64);
    for byte in Sha256::digest(text.as_bytes()) {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// The first accounts, created when the database has none: a team `support`, an admin
/// (`admin`, password `KEFU_ADMIN_PASSWORD` or a generated one, printed once) and a demo agent
/// (`agent` / `agent`), and a team `sales` with its demo agent (`sales` / `sales`). Returns
/// the generated admin password, if one was generated.
pub async fn bootstrap(store: &Store) -> anyhow::Result<Option<String>> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    store.ensure_team("support", "客服部 · Support").await?;
    // A second department, so the demo shows two sandboxes (`assets/policies.kefu`).
    store.ensure_team("sales", "销售部 · Sales").await?;
    let given = std::env::var("KEFU_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    let generated = given.is_none().then(|| random_token()[..16].to_owned());
    let admin_password = given.or_else(|| generated.clone()).unwrap_or_default();
    let now = now_ms();
    for (login, name, role, password, team) in [
        (
            "admin",
            "管理员 · Admin",
            "admin",
            admin_password.as_str(),
            "support",
        ),
        ("agent", "小李 · Demo agent", "agent", "agent", "support"),
        (
            "sales",
            "小王 · Demo sales agent",
            "agent",
            "sales",
            "sales",
        ),
    ] {
        let password = password.to_owned();
        let hash = hashing(move || hash_password(&password))
            .await
            .ok_or_else(|| anyhow::anyhow!("password hashing stopped"))?
            .map_err(anyhow::Error::msg)?;
        let created = store
            .create_user(&NewUser {
                id: format!("u-{login}"),
                login: login.to_owned(),
                name: name.to_owned(),
                role: role.to_owned(),
                team_id: team.to_owned(),
                password_hash: hash,
                capacity: 5,
                created_at: now,
            })
            .await;
        match created {
            Ok(()) => {}
            // Another node sharing the database started at the same moment and created them.
            Err(crate::store::StoreError::UserExists(_)) => return Ok(None),
            Err(error) => return Err(error.into()),
        }
    }
    if let Some(password) = &generated {
        eprintln!(
            "kefu: created the admin account `admin` with password `{password}` (shown once; set \
             KEFU_ADMIN_PASSWORD to choose it), the demo agent `agent` / `agent` and the demo sales \
             agent `sales` / `sales`"
        );
    }
    Ok(generated)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_client_is_the_peer_unless_a_trusted_proxy_forwarded_for_someone() {
        use axum::http::HeaderValue;
        let proxy: std::net::IpAddr = "10.0.0.2".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.7, 10.0.0.2"),
        );
        // Not behind a trusted proxy: the header is anyone's to write.
        assert_eq!(
            super::client_ip_behind(&headers, Some("198.51.100.1".parse().unwrap()), &[proxy]),
            Some("198.51.100.1".to_owned())
        );
        // Behind it: the last address the proxies did not add themselves.
        assert_eq!(
            super::client_ip_behind(&headers, Some(proxy), &[proxy]),
            Some("203.0.113.7".to_owned())
        );
        assert_eq!(
            super::client_ip_behind(&HeaderMap::new(), Some(proxy), &[proxy]),
            Some("10.0.0.2".to_owned())
        );
        assert_eq!(super::client_ip_behind(&headers, None, &[proxy]), None);
    }

    use std::time::{Duration, Instant};

    use axum::http::HeaderMap;

    use super::{LoginLimiter, cookie, hash_password, verify_password};

    #[test]
    fn passwords_verify_against_their_hash_only() {
        let Ok(hash) = hash_password("秘密 secret") else {
            panic!("hashing works");
        };
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("秘密 secret", &hash));
        assert!(!verify_password("secret", &hash));
        assert!(!verify_password("秘密 secret", "not a hash"));
    }

    #[test]
    fn the_limiter_blocks_after_five_failures_for_a_minute() {
        let limiter = LoginLimiter::default();
        let start = Instant::now();
        for _ in 0..5 {
            assert_eq!(limiter.blocked("a", 5, start), None);
            limiter.failed("a", start);
        }
        assert!(limiter.blocked("a", 5, start).is_some());
        assert_eq!(limiter.blocked("a", 6, start), None, "per limit");
        assert_eq!(limiter.blocked("b", 5, start), None, "per key");
        assert_eq!(
            limiter.blocked("a", 5, start + Duration::from_secs(61)),
            None
        );
        limiter.succeeded("a");
        assert_eq!(limiter.blocked("a", 5, start), None);
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            "cookie",
            "a=1; kefu_session=tok; b=2"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(cookie(&headers, "kefu_session").as_deref(), Some("tok"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
