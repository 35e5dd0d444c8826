//! Who may call the API: `authorization: Bearer <API token>`, the token respond.io shows for
//! the channel, checked in constant time. `POST /message` and `/metrics` need it; `/health`
//! answers without it, in less detail.

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// Checks `authorization: Bearer <token>` in constant time (for equal lengths; the length of
/// the token is not a secret worth protecting, its bytes are).
pub fn check_token(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized(
            "missing Authorization header: send \"Authorization: Bearer <API token>\"",
        ))?;
    let value = value.as_bytes();
    let token = value
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
        .map(|_| value[7..].trim_ascii())
        .ok_or(ApiError::Unauthorized(
            "the Authorization header must be \"Bearer <API token>\"",
        ))?;
    if expected.is_empty() || !bool::from(token.ct_eq(expected.as_bytes())) {
        return Err(ApiError::Unauthorized(
            "invalid API token: use the token respond.io shows for this channel",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("header"),
        );
        headers
    }

    #[test]
    fn tokens() {
        assert!(check_token(&with_auth("Bearer secret"), "secret").is_ok());
        assert!(check_token(&with_auth("bearer secret"), "secret").is_ok());
        for (value, want) in [
            ("Bearer secreT", "invalid API token"),
            ("Bearer secret2", "invalid API token"),
            ("Bearer ", "invalid API token"),
            ("Basic c2VjcmV0", "the Authorization header must be"),
            ("secret", "the Authorization header must be"),
        ] {
            let error = check_token(&with_auth(value), "secret").expect_err(value);
            assert!(error.to_string().starts_with(want), "{value}: {error}");
        }
        let error = check_token(&HeaderMap::new(), "secret").expect_err("missing");
        assert!(
            error
                .to_string()
                .starts_with("missing Authorization header")
        );
        // An unset token never matches an empty one.
        assert!(check_token(&with_auth("Bearer "), "").is_err());
    }
}
