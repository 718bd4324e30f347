//! Request bodies are taken as sent, never decompressed: a request whose `Content-Encoding`
//! is anything but `identity` is refused with 415 `UNSUPPORTED_MEDIA_TYPE` before a byte
//! of its body is read (issue 11, point 9).
//!
//! Why refuse rather than cap: with actix-web's `compress-gzip` feature (enabled for
//! response compression) the JSON extractor inflates a `gzip` or `deflate` body, and
//! actix inflates each chunk it is given whole before any limit is checked. The
//! idempotency middleware hands the handler the body it read as one chunk, so 1 MiB of
//! gzip became 1 GiB in memory per request; without a key each chunk read off the socket
//! (up to 128 KiB) still inflated a thousandfold. Capping would mean replacing actix's
//! decoder on every path that reads a body. Clients of a JSON API gain little from
//! compressing bodies of at most 1 MiB, and Stripe does not accept compressed request
//! bodies either, so none is accepted.
//!
//! Applied once around the whole app, inside the request context (so the refusal carries
//! `X-Request-Id` and the envelope) and the rate limits (so it is counted), and outside
//! idempotency (so no key is claimed and no body read). The 415 carries
//! `Accept-Encoding: identity`, as RFC 7694 suggests for a refused content coding.

use std::future::{Ready, ready};
use std::rc::Rc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::{Error, ResponseError};
use futures_util::future::LocalBoxFuture;

use crate::error::{ApiError, ErrorCode};

/// Whether every `Content-Encoding` the request declares is `identity` (or there is none).
///
/// Every header line and every list element counts, not only the first that actix's
/// decoder reads: `identity, gzip` and a second `Content-Encoding: gzip` line are refused.
/// Empty list elements are allowed, as HTTP lists allow them; anything not visible ASCII
/// is refused.
#[must_use]
pub fn is_identity(headers: &HeaderMap) -> bool {
    headers.get_all(header::CONTENT_ENCODING).all(|value| {
        value.to_str().is_ok_and(|codings| {
            codings.split(',').all(|coding| {
                let coding = coding.trim();
                coding.is_empty() || coding.eq_ignore_ascii_case("identity")
            })
        })
    })
}

/// The 415 for a compressed request body.
fn refusal() -> ApiError {
    ApiError::new(
        ErrorCode::UnsupportedMediaType,
        "compressed request bodies are not accepted: send the body without Content-Encoding \
         (or with Content-Encoding: identity)",
    )
}

/// The middleware factory.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdentityOnly;

impl<S, B> Transform<S, ServiceRequest> for IdentityOnly
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Transform = IdentityOnlyService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(IdentityOnlyService {
            service: Rc::new(service),
        }))
    }
}

/// The middleware around one service.
#[derive(Debug)]
pub struct IdentityOnlyService<S> {
    service: Rc<S>,
}

impl<S, B> Service<ServiceRequest> for IdentityOnlyService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        if !is_identity(req.headers()) {
            // The body is left unread: actix answers, then discards it and closes.
            let mut response = refusal().error_response();
            response.headers_mut().insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("identity"),
            );
            let response = req.into_response(response);
            return Box::pin(ready(Ok(response)));
        }
        let service = Rc::clone(&self.service);
        Box::pin(async move {
            service
                .call(req)
                .await
                .map(ServiceResponse::map_into_boxed_body)
        })
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn encodings(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(
                HeaderName::from_static("content-encoding"),
                HeaderValue::from_bytes(value).expect("a header value"),
            );
        }
        map
    }

    fn text(values: &[&'static str]) -> HeaderMap {
        encodings(&values.iter().map(|v| v.as_bytes()).collect::<Vec<_>>())
    }

    #[test]
    fn no_header_and_identity_in_any_case_are_identity() {
        let cases: &[&[&str]] = &[
            &[],
            &["identity"],
            &[" IDENTITY "],
            &["Identity, identity"],
            &["identity", "identity"],
            &[""],
            &["identity,,"],
        ];
        for values in cases {
            assert!(is_identity(&text(values)), "{values:?}");
        }
    }

    #[test]
    fn any_other_coding_anywhere_is_refused() {
        let cases: &[&[&str]] = &[
            &["gzip"],
            &["GZip"],
            &[" gzip\t"],
            &["x-gzip"],
            &["deflate"],
            &["br"],
            &["zstd"],
            &["compress"],
            &["identity, gzip"],
            &["gzip, identity"],
            &["identity;q=1"],
            &["identity", "gzip"],
            &["gzip", "identity"],
        ];
        for values in cases {
            assert!(!is_identity(&text(values)), "{values:?}");
        }
        let not_ascii: &[u8] = b"identit\xc3\xa9";
        assert!(!is_identity(&encodings(&[not_ascii])));
    }
}
