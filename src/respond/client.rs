//! The HTTP client that posts events to respond.io's webhook URL: one `reqwest::Client` (rustls,
//! connection pool with keep-alive, a timeout per request) and `authorization: Bearer <token>`.
//!
//! It reports what happened ([`Attempt`]); deciding what that means (retry, park) is
//! [`super::retry`]'s job, and pacing is [`super::ratelimit`]'s. It never follows redirects: a
//! `POST` turned into a `GET` by a `302` would lose the events while looking successful.

use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use serde::Serialize;

use super::RespondError;
use super::retry::{Attempt, parse_retry_after};
use crate::wire::{Contact, WebhookBody};

/// How much of a failed answer's body is kept for the log and `last_error`.
const BODY_EXCERPT: usize = 300;

/// Settings of the webhook client.
#[derive(Clone)]
pub struct ClientOptions {
    pub webhook_url: String,
    pub channel_id: String,
    pub api_token: String,
    /// The whole request, connect to last byte of the answer.
    pub request_timeout: Duration,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("webhook_url", &self.webhook_url)
            .field("channel_id", &self.channel_id)
            .field("api_token", &"<redacted>")
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl ClientOptions {
    /// The settings from the `[respond]` section (token already resolved).
    pub fn from_config(config: &crate::config::RespondConfig) -> Self {
        Self {
            webhook_url: config.webhook_url.clone(),
            channel_id: config.channel_id.clone(),
            api_token: config.api_token.clone().unwrap_or_default(),
            request_timeout: config.request_timeout,
        }
    }
}

/// Posts batches of events to the webhook. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    url: reqwest::Url,
    channel_id: String,
    authorization: HeaderValue,
}

impl std::fmt::Debug for WebhookClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookClient")
            .field("url", &self.url.as_str())
            .field("channel_id", &self.channel_id)
            .finish_non_exhaustive()
    }
}

/// One attempt and how long it took.
#[derive(Debug, Clone)]
pub struct Posted {
    pub attempt: Attempt,
    pub elapsed: Duration,
}

impl WebhookClient {
    pub fn new(options: &ClientOptions) -> Result<Self, RespondError> {
        let url = reqwest::Url::parse(&options.webhook_url).map_err(|error| {
            RespondError::Config(format!(
                "respond.webhook_url {:?} is not a URL: {error}",
                options.webhook_url
            ))
        })?;
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", options.api_token))
            .map_err(|_| {
                RespondError::Config(
                    "the API token contains characters an HTTP header cannot carry".into(),
                )
            })?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(concat!("smsgate/", env!("CARGO_PKG_VERSION")))
            .timeout(options.request_timeout)
            .connect_timeout(options.request_timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| {
                RespondError::Config(format!("cannot build the HTTP client: {error}"))
            })?;
        Ok(Self {
            http,
            url,
            channel_id: options.channel_id.clone(),
            authorization,
        })
    }

    /// The webhook URL.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Posts `events` (all of one contact, oldest first) in one request.
    pub async fn post<E: Serialize>(&self, contact_id: &str, events: &[E]) -> Posted {
        let body = WebhookBody {
            channel_id: self.channel_id.as_str(),
            contact_id,
            events,
            // A phone number contact gets its number filled in, so respond.io shows it.
            contact: crate::phone::E164::parse(contact_id)
                .ok()
                .map(|number| Contact {
                    phone: Some(number.to_string()),
                    ..Contact::default()
                }),
        };
        let started = Instant::now();
        let result = self
            .http
            .post(self.url.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .json(&body)
            .send()
            .await;
        let attempt = match result {
            Ok(response) => {
                let code = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| parse_retry_after(value, crate::clock::now_ms() / 1000));
                let body = if response.status().is_success() {
                    // Drain the body so the connection goes back to the pool.
                    let _ = response.bytes().await;
                    String::new()
                } else {
                    excerpt(&response.text().await.unwrap_or_default())
                };
                Attempt::Status {
                    code,
                    retry_after,
                    body,
                }
            }
            Err(error) if error.is_timeout() => Attempt::Timeout,
            Err(error) => Attempt::Connection(error_chain(&error)),
        };
        Posted {
            attempt,
            elapsed: started.elapsed(),
        }
    }
}

fn excerpt(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(BODY_EXCERPT) {
        Some((cut, _)) => format!("{}…", &body[..cut]),
        None => body.to_owned(),
    }
}

/// The error and its causes on one line ("error sending request: connection refused").
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(url: &str, token: &str) -> ClientOptions {
        ClientOptions {
            webhook_url: url.into(),
            channel_id: "c".into(),
            api_token: token.into(),
            request_timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn settings_that_cannot_work_are_refused_at_start() {
        let error = WebhookClient::new(&options("webhook.respond.io/webhook", "t"))
            .expect_err("no scheme")
            .to_string();
        assert!(error.starts_with("respond.webhook_url"), "{error}");
        let error = WebhookClient::new(&options("https://webhook.respond.io/", "bad\ntoken"))
            .expect_err("newline in token")
            .to_string();
        assert!(error.contains("API token"), "{error}");
        assert!(
            WebhookClient::new(&options(
                "https://webhook.respond.io/custom/channel/webhook/",
                "t"
            ))
            .is_ok()
        );
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let shown = format!("{:?}", options("https://x/", "secret-token"));
        assert!(!shown.contains("secret-token"), "{shown}");
        let client = WebhookClient::new(&options("https://x/", "secret-token")).expect("client");
        assert!(!format!("{client:?}").contains("secret-token"));
    }

    #[test]
    fn long_bodies_are_cut_for_the_log() {
        assert_eq!(excerpt("  short  "), "short");
        let cut = excerpt(&"é".repeat(400));
        assert_eq!(cut.chars().count(), BODY_EXCERPT + 1);
        assert!(cut.ends_with('…'));
    }
}
