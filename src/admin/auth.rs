//! Who may use the dashboard, and the checks every request passes before its handler.
//!
//! - **With a password** (`admin.password_file`, `SMSGATE_ADMIN_PASSWORD`): a login form sets
//!   an `HttpOnly`, `SameSite=Strict` session cookie (sessions live in memory: a restart logs
//!   everyone out). Scripts may send the password with HTTP Basic instead (any user name); no
//!   `WWW-Authenticate` challenge is ever sent, so a browser never caches it.
//! - **Without one** (allowed on a loopback address only, see `config::AdminConfig::check`):
//!   open to whoever can reach 127.0.0.1 — a shell on the machine or an SSH tunnel, which is
//!   the login then. To keep a web page in the operator's browser from using that tunnel, the
//!   `Host` must be a loopback name (a DNS-rebinding page's host is not).
//! - **State-changing requests** are POSTs, refused when `Origin` names another origin or
//!   `Sec-Fetch-Site` says `cross-site`, and, for a browser session (cookie or open), unless
//!   `X-CSRF-Token` carries the session's token, which only a page of this origin can read
//!   (`GET /api/session`). The login form is checked by origin.
//! - Failed logins: each answer waits [`FAILED_LOGIN_DELAY`], and past
//!   [`MAX_FAILURES_PER_MINUTE`] in a minute every login is refused for the rest of it.
//!
//! Passwords and tokens are compared in constant time and never logged.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{HeaderMap, Method, header};
use subtle::ConstantTimeEq;
use tokio::time::Instant;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "smsgate_admin";
/// The header a page sends its CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts after login.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Most sessions at once; the oldest goes first.
const MAX_SESSIONS: usize = 64;
/// How long the answer to a wrong password waits.
pub(crate) const FAILED_LOGIN_DELAY: Duration = Duration::from_millis(750);
/// Wrong passwords accepted in any minute before logins pause.
pub(crate) const MAX_FAILURES_PER_MINUTE: usize = 10;

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// No password is configured (loopback only).
    Open,
    /// A session cookie; its CSRF token.
    Session { token: String, csrf: String },
    /// HTTP Basic with the password (scripts); no ambient credential, so no CSRF token.
    Basic,
}

/// Why a login failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginError {
    Wrong,
    TooMany,
}

/// Why a request is refused before its handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not logged in.
    Unauthenticated,
    /// Forbidden, with the reason in words.
    Forbidden(String),
}

struct Session {
    csrf: String,
    expires: Instant,
}

/// The dashboard's authentication state.
pub(crate) struct Auth {
    password: Option<String>,
    /// The CSRF token of the open mode (one per process).
    open_csrf: String,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<VecDeque<Instant>>,
}

/// 256 random bits in hex.
fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain inserts and removals only; a poisoned map is still whole.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Auth {
    pub(crate) fn new(password: Option<String>) -> Self {
        Self {
            password,
            open_csrf: random_token(),
            sessions: Mutex::default(),
            failures: Mutex::default(),
        }
    }

    /// No password: open on loopback.
    pub(crate) fn is_open(&self) -> bool {
        self.password.is_none()
    }

    /// Who the request comes from, if anyone the dashboard knows.
    pub(crate) fn caller(&self, headers: &HeaderMap) -> Option<Caller> {
        let Some(password) = &self.password else {
            return Some(Caller::Open);
        };
        if let Some(given) = basic_password(headers) {
            return equal(&given, password).then_some(Caller::Basic);
        }
        let token = cookie(headers, COOKIE)?;
        let mut sessions = lock(&self.sessions);
        let now = Instant::now();
        sessions.retain(|_, session| session.expires > now);
        sessions.get(&token).map(|session| Caller::Session {
            csrf: session.csrf.clone(),
            token,
        })
    }

    /// The CSRF token a page of this caller must send with its POSTs.
    pub(crate) fn csrf<'a>(&'a self, caller: &'a Caller) -> Option<&'a str> {
        match caller {
            Caller::Open => Some(&self.open_csrf),
            Caller::Session { csrf, .. } => Some(csrf),
            Caller::Basic => None,
        }
    }

    /// Checks the password; a new session's cookie token on success.
    pub(crate) fn login(&self, given: &str) -> Result<String, LoginError> {
        let Some(password) = &self.password else {
            return Err(LoginError::Wrong);
        };
        let now = Instant::now();
        {
            let mut failures = lock(&self.failures);
            while failures
                .front()
                .is_some_and(|at| now.duration_since(*at) > Duration::from_secs(60))
            {
                failures.pop_front();
            }
            if failures.len() >= MAX_FAILURES_PER_MINUTE {
                return Err(LoginError::TooMany);
            }
            if !equal(given, password) {
                failures.push_back(now);
                return Err(LoginError::Wrong);
            }
        }
        let token = random_token();
        let mut sessions = lock(&self.sessions);
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, session)| session.expires)
                .map(|(token, _)| token.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(
            token.clone(),
            Session {
                csrf: random_token(),
                expires: now + SESSION_LIFETIME,
            },
        );
        Ok(token)
    }

    /// Ends the caller's session, if it has one.
    pub(crate) fn logout(&self, caller: &Caller) {
        if let Caller::Session { token, .. } = caller {
            lock(&self.sessions).remove(token);
        }
    }

    /// The open mode answers only to loopback host names, so a page whose own name resolves
    /// to 127.0.0.1 (DNS rebinding) cannot read or drive it through the operator's tunnel.
    pub(crate) fn check_host(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if !self.is_open() {
            return Ok(());
        }
        let host = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        if is_loopback_host(host) {
            Ok(())
        } else {
            Err(Refusal::Forbidden(format!(
                "the dashboard has no password, so it answers only to a loopback address \
                 (http://127.0.0.1:PORT or http://localhost:PORT), not to {host:?}; set \
                 admin.password_file to reach it under another name"
            )))
        }
    }

    /// The cross-site checks of a state-changing request: its origin, and the CSRF token of a
    /// browser session (`caller` = `None`: the login form, checked by origin only).
    pub(crate) fn check_post(
        &self,
        method: &Method,
        headers: &HeaderMap,
        caller: Option<&Caller>,
    ) -> Result<(), Refusal> {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        let forbidden = |why: &str| Err(Refusal::Forbidden(why.to_owned()));
        let site = headers
            .get("sec-fetch-site")
            .and_then(|value| value.to_str().ok());
        if site == Some("cross-site") {
            return forbidden("refused: the request comes from another site");
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let host = headers
                .get(header::HOST)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            let authority = origin
                .to_str()
                .ok()
                .and_then(|origin| origin.split_once("://"))
                .map(|(_, authority)| authority.trim_end_matches('/'));
            if !authority.is_some_and(|authority| authority.eq_ignore_ascii_case(host)) {
                return forbidden("refused: the request comes from another origin");
            }
        }
        let Some(caller) = caller else {
            return Ok(());
        };
        let Some(expected) = self.csrf(caller) else {
            return Ok(());
        };
        let given = headers
            .get(CSRF_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        if equal(given, expected) {
            Ok(())
        } else {
            forbidden(
                "refused: the request lacks the dashboard's CSRF token (reload the page; a \
                 form on another site cannot send it)",
            )
        }
    }
}

/// `localhost`, `*.localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The value of cookie `name`.
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

/// The password of `Authorization: Basic base64(user:password)`.
fn basic_password(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(encoded.trim())?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':')
        .map(|(_, password)| password.to_owned())
}

/// Standard base64 (RFC 4648 §4), padding optional.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        acc = (acc << 6) | u32::from(value(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The `Set-Cookie` value for a new session (no `Secure`: the dashboard is plain HTTP on the
/// LAN or through a tunnel).
pub(crate) fn session_cookie(token: &str) -> String {
    format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub(crate) fn cleared_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("header value"));
        }
        map
    }

    #[test]
    fn sessions_come_from_a_login_and_end_at_logout() {
        let auth = Auth::new(Some("correct horse".into()));
        assert_eq!(auth.caller(&HeaderMap::new()), None);
        assert_eq!(auth.login("wrong"), Err(LoginError::Wrong));
        let token = auth.login("correct horse").expect("logged in");
        let cookie = format!("other=1; {COOKIE}={token}");
        let caller = auth
            .caller(&headers(&[("cookie", &cookie)]))
            .expect("known");
        assert!(matches!(&caller, Caller::Session { token: t, .. } if *t == token));
        assert_eq!(
            auth.caller(&headers(&[("cookie", "smsgate_admin=forged")])),
            None
        );
        auth.logout(&caller);
        assert_eq!(auth.caller(&headers(&[("cookie", &cookie)])), None);
    }

    #[test]
    fn basic_auth_for_scripts() {
        let auth = Auth::new(Some("correct horse".into()));
        // "admin:correct horse"
        let good = headers(&[("authorization", "Basic YWRtaW46Y29ycmVjdCBob3JzZQ==")]);
        assert_eq!(auth.caller(&good), Some(Caller::Basic));
        let bad = headers(&[("authorization", "Basic YWRtaW46d3Jvbmc=")]);
        assert_eq!(auth.caller(&bad), None);
        assert_eq!(base64_decode("aGk"), Some(b"hi".to_vec()));
        assert_eq!(base64_decode("a*b"), None);
    }

    #[test]
    fn failed_logins_pause_after_the_limit() {
        let auth = Auth::new(Some("correct horse".into()));
        for _ in 0..MAX_FAILURES_PER_MINUTE {
            assert_eq!(auth.login("guess"), Err(LoginError::Wrong));
        }
        assert_eq!(auth.login("correct horse"), Err(LoginError::TooMany));
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let auth = Auth::new(None);
        let caller = Caller::Open;
        let csrf = auth
            .csrf(&caller)
            .expect("open mode has a token")
            .to_owned();
        let post = Method::POST;
        let ok = headers(&[
            ("host", "127.0.0.1:8081"),
            ("origin", "http://127.0.0.1:8081"),
            ("x-csrf-token", &csrf),
        ]);
        assert_eq!(auth.check_post(&post, &ok, Some(&caller)), Ok(()));
        for bad in [
            headers(&[
                ("host", "127.0.0.1:8081"),
                ("origin", "http://evil.example"),
                ("x-csrf-token", &csrf),
            ]),
            headers(&[
                ("host", "127.0.0.1:8081"),
                ("origin", "null"),
                ("x-csrf-token", &csrf),
            ]),
            headers(&[
                ("host", "127.0.0.1:8081"),
                ("sec-fetch-site", "cross-site"),
                ("x-csrf-token", &csrf),
            ]),
            headers(&[
                ("host", "127.0.0.1:8081"),
                ("origin", "http://127.0.0.1:8081"),
            ]),
            headers(&[
                ("host", "127.0.0.1:8081"),
                ("x-csrf-token", "not-the-token"),
            ]),
        ] {
            assert!(matches!(
                auth.check_post(&post, &bad, Some(&caller)),
                Err(Refusal::Forbidden(_))
            ));
        }
        // GETs carry no token; Basic callers need none.
        assert_eq!(
            auth.check_post(&Method::GET, &HeaderMap::new(), Some(&caller)),
            Ok(())
        );
        assert_eq!(
            auth.check_post(&post, &headers(&[("host", "h")]), Some(&Caller::Basic)),
            Ok(())
        );
    }

    #[test]
    fn the_open_mode_answers_only_to_loopback_names() {
        let auth = Auth::new(None);
        for host in [
            "127.0.0.1:8081",
            "localhost:9000",
            "LOCALHOST",
            "[::1]:8081",
            "app.localhost:1",
            "127.1.2.3",
        ] {
            assert_eq!(
                auth.check_host(&headers(&[("host", host)])),
                Ok(()),
                "{host}"
            );
        }
        for host in [
            "evil.example:8081",
            "192.168.1.5:8081",
            "localhost.evil.example",
            "",
        ] {
            assert!(
                auth.check_host(&headers(&[("host", host)])).is_err(),
                "{host}"
            );
        }
        let auth = Auth::new(Some("correct horse".into()));
        assert_eq!(
            auth.check_host(&headers(&[("host", "pi.lan:8081")])),
            Ok(())
        );
    }
}
