//! Checks every request gets before its route: exactly one `Authorization` header, and not both
//! `Transfer-Encoding` and `Content-Length` (found by [`framing`](super::framing), which the
//! HTTP library would otherwise hide). Each refusal is a 400 in respond.io's error shape.
//!
//! A request with a `Transfer-Encoding` (a chunked body) has its connection closed after the
//! answer, because [`framing`](super::framing) does not follow chunked bodies to find the next
//! request's headers. Token checks themselves stay with the endpoints (`auth::check_token`).

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::framing::AMBIGUOUS_MARKER;

/// The middleware (`axum::middleware::from_fn`).
pub(super) async fn check_request(request: Request, next: Next) -> Response {
    let headers = request.headers();
    if headers.contains_key(AMBIGUOUS_MARKER) {
        return close(
            ApiError::BadRequest(
                "the request has both Transfer-Encoding and Content-Length, so its length is \
                 ambiguous (a request-smuggling pattern); send only one of them"
                    .into(),
            )
            .into_response(),
        );
    }
    let authorizations = headers.get_all(header::AUTHORIZATION).iter().count();
    if authorizations > 1 {
        return ApiError::BadRequest(format!(
            "the request has {authorizations} Authorization headers; send exactly one: \
             \"Authorization: Bearer <API token>\""
        ))
        .into_response();
    }
    let chunked = headers.contains_key(header::TRANSFER_ENCODING);
    let response = next.run(request).await;
    if chunked { close(response) } else { response }
}

fn close(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
