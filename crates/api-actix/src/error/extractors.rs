//! actix's extractor errors in the error envelope: JSON bodies (syntax before shape, and
//! a missing credential before either), path segments and query strings.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header;
use actix_web::{HttpRequest, ResponseError, web};
use serde_json::json;

use super::{ApiError, ErrorCode, unauthenticated};

/// Whether the operation at a method and matched route pattern (`/v1/contacts/{id}`)
/// needs a credential: the OpenAPI document knows, and [`crate::configure`] passes it in,
/// so this module does not depend on the document (which depends on every route).
pub type RequiresCredential = fn(method: &str, pattern: &str) -> bool;

/// JSON bodies: 1 MiB, `application/json` or any `+json` type, errors in the envelope; a
/// body sent without a credential to an operation that `requires_credential` is answered
/// 401 before anything is said about the body.
#[must_use]
pub fn json_config(requires_credential: RequiresCredential) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(crate::MAX_BODY_BYTES)
        .content_type_required(true)
        .content_type(|mime| mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
        .error_handler(move |error, req| json_error(&error, req, requires_credential).into())
}

/// The JSON body as received, kept by [`keep_json_body`] so that a body that failed to
/// deserialize can be checked for its syntax alone.
#[derive(Clone, Debug)]
struct ReceivedJsonBody(web::Bytes);

/// Keeps a copy (a reference-counted handle, not a second buffer) of each JSON body of
/// `POST`, `PUT` and `PATCH` for [`json_error`]. serde checks the shape while it parses,
/// so a body with a wrong field before its syntax error (`{"firstName": 1, `) fails as a
/// data error; only the whole text tells that it is not JSON at all. Bodies over the
/// limit are left to the extractor (413); nothing else changes: the extractor reads the
/// same bytes.
///
/// # Errors
///
/// Reading the payload fails (the client went away), or the inner service fails.
pub async fn keep_json_body(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<
    actix_web::dev::ServiceResponse<actix_web::body::EitherBody<impl actix_web::body::MessageBody>>,
    actix_web::Error,
> {
    use actix_web::HttpMessage;
    use futures_util::StreamExt;

    let method = req.method().clone();
    let has_body_method = method == actix_web::http::Method::POST
        || method == actix_web::http::Method::PUT
        || method == actix_web::http::Method::PATCH;
    let is_json =
        req.mime_type().ok().flatten().is_some_and(|mime| {
            mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json")
        });
    let declared_too_large = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|length| length > crate::MAX_BODY_BYTES);
    if !has_body_method || !is_json || declared_too_large {
        return next.call(req).await.map(|r| r.map_into_left_body());
    }
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > crate::MAX_BODY_BYTES {
            let error = ApiError::new(
                ErrorCode::PayloadTooLarge,
                "request body is larger than 1 MiB",
            );
            return Ok(req
                .into_response(error.error_response())
                .map_into_right_body());
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    req.extensions_mut().insert(ReceivedJsonBody(body.clone()));
    req.set_payload(actix_web::dev::Payload::from(body));
    next.call(req).await.map(|r| r.map_into_left_body())
}

/// Whether `body` is one well-formed JSON text (RFC 8259: one value, only whitespace
/// after it), whatever its shape.
fn is_json_syntax(body: &[u8]) -> Result<(), serde_json::Error> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).map(|_| ())
}

fn json_error(
    error: &JsonPayloadError,
    req: &HttpRequest,
    requires_credential: RequiresCredential,
) -> ApiError {
    use actix_web::HttpMessage;

    // The body is extracted before the credential, so without this a request with no
    // credential at all would learn how its body is wrong before being told to log in.
    let has_credential = crate::auth::bearer_token(req.headers())
        .is_some_and(|token| app::auth::Credential::from_bearer(token).is_ok());
    if !has_credential
        && let Some(pattern) = req.match_pattern()
        && requires_credential(req.method().as_str(), &pattern)
    {
        return unauthenticated();
    }

    if let JsonPayloadError::Deserialize(serde_error) = error
        && serde_error.is_data()
    {
        // Syntax first: a data error found before a syntax error is still not JSON.
        let received = req.extensions().get::<ReceivedJsonBody>().cloned();
        if let Some(ReceivedJsonBody(body)) = received
            && let Err(syntax_error) = is_json_syntax(&body)
        {
            return ApiError::new(
                ErrorCode::InvalidJson,
                format!("request body is not valid JSON: {syntax_error}"),
            );
        }
    }

    match error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                "request body is larger than 1 MiB",
            )
        }
        JsonPayloadError::ContentType => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as application/json",
        ),
        JsonPayloadError::Deserialize(serde_error) if serde_error.is_data() => {
            // Well-formed JSON of the wrong shape: say which field, as a validation error.
            ApiError::new(
                ErrorCode::ValidationFailed,
                "request body has the wrong shape",
            )
            .with_details(json!({ "fields": { "body": [serde_error.to_string()] } }))
        }
        JsonPayloadError::Deserialize(serde_error) => ApiError::new(
            ErrorCode::InvalidJson,
            format!("request body is not valid JSON: {serde_error}"),
        ),
        JsonPayloadError::Payload(_) => {
            ApiError::new(ErrorCode::InvalidJson, "request body could not be read")
        }
        _ => ApiError::new(ErrorCode::InvalidJson, "request body is not valid JSON"),
    }
}

/// Path segments that do not parse (a non-UUID id): 400 naming the parameter.
#[must_use]
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_error: PathError, _req| {
        ApiError::invalid_field("id", "must be a UUID").into()
    })
}

/// Query strings that do not parse: 400 with `details.fields` like every other
/// validation error (docs/api.md): under the parameter's name when serde names it (an
/// unknown or missing parameter), else under `query`, with serde's explanation.
#[must_use]
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error: QueryPayloadError, _req| {
        let message = match &error {
            QueryPayloadError::Deserialize(e) => e.to_string(),
            other => other.to_string(),
        };
        ApiError::new(ErrorCode::ValidationFailed, "invalid query parameters")
            .with_details(json!({ "fields": query_fields(&message) }))
            .into()
    })
}

/// `unknown field `x`, expected …` → `{"x": [message]}`; anything else → `{"query": [message]}`.
fn query_fields(message: &str) -> serde_json::Value {
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name)
        .filter(|name| !name.is_empty() && name.len() <= 100);
    let mut fields = serde_json::Map::new();
    fields.insert(
        named.unwrap_or("query").to_owned(),
        json!([message.chars().take(300).collect::<String>()]),
    );
    serde_json::Value::Object(fields)
}
