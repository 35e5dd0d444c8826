//! The page and its assets, embedded in the binary (`page/`), and the login form.
//!
//! The dashboard is one HTML page drawn by `app.js` from the JSON of [`super::api`]; the login
//! page is a plain form (it works without JavaScript). Nothing is fetched from elsewhere: the
//! Content Security Policy allows this origin only.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::Console;
use super::auth::{self, Caller, LoginError};

const INDEX: &str = include_str!("page/index.html");
const LOGIN: &str = include_str!("page/login.html");
const CSS: &str = include_str!("page/app.css");
const JS: &str = include_str!("page/app.js");
const ICON: &str = include_str!("page/favicon.svg");

/// `GET /`.
pub(super) async fn index() -> Html<&'static str> {
    Html(INDEX)
}

/// `GET /login`: the form, or the dashboard itself when no password is needed.
pub(super) async fn login_form(State(console): State<Arc<Console>>) -> Response {
    if console.auth.is_open() {
        return Redirect::to("/").into_response();
    }
    login_page(StatusCode::OK, "")
}

fn login_page(status: StatusCode, message: &str) -> Response {
    let message = if message.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"login-error\" role=\"alert\">{}</p>",
            escape(message)
        )
    };
    (status, Html(LOGIN.replace("<!--message-->", &message))).into_response()
}

/// `POST /login` (`application/x-www-form-urlencoded`, field `password`).
pub(super) async fn login(
    State(console): State<Arc<Console>>,
    body: axum::body::Bytes,
) -> Response {
    if console.auth.is_open() {
        return Redirect::to("/").into_response();
    }
    let password = form_field(&body, "password").unwrap_or_default();
    match console.auth.login(&password) {
        Ok(token) => {
            tracing::info!("dashboard: logged in");
            let mut response = Redirect::to("/").into_response();
            if let Ok(value) = auth::session_cookie(&token).parse() {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(LoginError::Wrong) => {
            tracing::warn!("dashboard: a login with a wrong password");
            // Slows guessing down; the limit below stops it.
            tokio::time::sleep(auth::FAILED_LOGIN_DELAY).await;
            login_page(StatusCode::UNAUTHORIZED, "Wrong password.")
        }
        Err(LoginError::TooMany) => {
            tracing::warn!("dashboard: too many failed logins; logins pause for a minute");
            login_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many wrong passwords: wait a minute, then try again.",
            )
        }
    }
}

/// `POST /logout`.
pub(super) async fn logout(
    State(console): State<Arc<Console>>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> Response {
    console.auth.logout(&caller);
    let mut response = Redirect::to("/login").into_response();
    if let Ok(value) = auth::cleared_cookie().parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

pub(super) async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

pub(super) async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
        .into_response()
}

pub(super) async fn icon() -> Response {
    ([(header::CONTENT_TYPE, "image/svg+xml")], ICON).into_response()
}

/// HTML-escapes text for the login page's message.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One field of an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| percent_decode(value))
}

/// `+` is a space, `%XX` a byte (WHATWG URL, application/x-www-form-urlencoded parsing).
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(at + 1..at + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                at += 2;
            }
            byte => out.push(byte),
        }
        at += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_are_decoded() {
        assert_eq!(
            form_field(b"user=x&password=correct+horse%21", "password").as_deref(),
            Some("correct horse!")
        );
        assert_eq!(
            form_field(b"password=%E2%82%AC", "password").as_deref(),
            Some("€")
        );
        assert_eq!(form_field(b"password=%zz", "password"), None);
        assert_eq!(form_field(b"other=1", "password"), None);
        assert_eq!(escape("<b>\"&"), "&lt;b&gt;&quot;&amp;");
    }
}
