//! Errors as HTTP responses: one [`ApiError`] type rendered in the error envelope, the
//! exhaustive mapping of each use-case error, and the handlers that put actix's own
//! errors (bad JSON, wrong content type, oversized body, bad path or query, unknown
//! route, wrong method) into the same envelope.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use app::api_keys::ApiKeyError;
use app::auth::AuthError;
use app::companies::CompanyError;
use app::contacts::ContactError;
use app::identity::IdentityError;
use app::invitations::InvitationError;
use app::leads::CrmError;
use app::members::MemberError;
use app::pipelines::PipelineError;
use app::qr::QrError;
use domain::FieldErrors;
use ports::RepoError;
use serde_json::json;

use crate::envelope::{Failure, Metadata};
use crate::request_id;

/// The error codes of SPEC §3, each with its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// 400: the body is not JSON.
    InvalidJson,
    /// 400: the input breaks a rule.
    ValidationFailed,
    /// 401: no valid credential.
    Unauthenticated,
    /// 403: valid credential, not allowed.
    Forbidden,
    /// 404: no such resource (in this tenant).
    NotFound,
    /// 405: the path exists, the method does not.
    MethodNotAllowed,
    /// 409: conflicts with existing state.
    Conflict,
    /// 412: `If-Match` failed.
    PreconditionFailed,
    /// 413: body over 1 MiB.
    PayloadTooLarge,
    /// 415: not JSON.
    UnsupportedMediaType,
    /// 422: an `Idempotency-Key` reused with another request.
    IdempotencyKeyReused,
    /// 429: a QR login request polled faster than its interval.
    SlowDown,
    /// 429: a rate-limit policy is exhausted (details: policy, retryAfterSeconds).
    RateLimited,
    /// 500: a bug; details only in the log.
    Internal,
    /// 503: a dependency is down; retry.
    Unavailable,
}

impl ErrorCode {
    /// Every code, for the OpenAPI document's `ErrorCode` enum.
    pub const ALL: [Self; 15] = [
        Self::InvalidJson,
        Self::ValidationFailed,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Conflict,
        Self::PreconditionFailed,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::IdempotencyKeyReused,
        Self::SlowDown,
        Self::RateLimited,
        Self::Internal,
        Self::Unavailable,
    ];

    /// The wire code.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "INVALID_JSON",
            Self::ValidationFailed => "VALIDATION_FAILED",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::Conflict => "CONFLICT",
            Self::PreconditionFailed => "PRECONDITION_FAILED",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::SlowDown => "SLOW_DOWN",
            Self::RateLimited => "RATE_LIMITED",
            Self::Internal => "INTERNAL",
            Self::Unavailable => "UNAVAILABLE",
        }
    }

    /// The HTTP status.
    #[must_use]
    pub const fn status(self) -> StatusCode {
        match self {
            Self::InvalidJson | Self::ValidationFailed => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::SlowDown | Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The code a bare status stands for (the safety net for responses we did not build).
    #[must_use]
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::Unauthenticated,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            409 => Self::Conflict,
            412 => Self::PreconditionFailed,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            422 => Self::IdempotencyKeyReused,
            429 => Self::RateLimited,
            503 => Self::Unavailable,
            400..=499 => Self::ValidationFailed,
            _ => Self::Internal,
        }
    }
}

/// An error response: status and code, a safe message, optional details.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    details: Option<serde_json::Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl ApiError {
    /// An error with a message for the client.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// Adds structured details.
    #[must_use]
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// `VALIDATION_FAILED` with field messages.
    #[must_use]
    pub fn validation(fields: &FieldErrors) -> Self {
        Self::new(ErrorCode::ValidationFailed, "request validation failed")
            .with_details(json!({ "fields": fields.fields() }))
    }

    /// `VALIDATION_FAILED` for one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let mut fields = FieldErrors::new();
        fields.add(field, message);
        Self::validation(&fields)
    }

    /// A 500 whose cause goes to the log (with the request id), never to the client.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(request_id = %request_id::current(), cause = %cause, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }

    /// The code.
    #[must_use]
    pub const fn code(&self) -> ErrorCode {
        self.code
    }
}

impl From<RepoError> for ApiError {
    fn from(error: RepoError) -> Self {
        match error {
            RepoError::Unavailable(cause) => {
                tracing::warn!(request_id = %request_id::current(), %cause, "storage unavailable");
                Self::new(
                    ErrorCode::Unavailable,
                    "service temporarily unavailable, retry shortly",
                )
            }
            RepoError::Contention(cause) => {
                tracing::info!(request_id = %request_id::current(), %cause, "concurrent change");
                Self::new(
                    ErrorCode::Conflict,
                    "a concurrent change conflicted with this one; retry",
                )
            }
            RepoError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unauthenticated => unauthenticated(),
            AuthError::Repo(repo) => repo.into(),
        }
    }
}

impl From<ContactError> for ApiError {
    fn from(error: ContactError) -> Self {
        match error {
            ContactError::Forbidden(forbidden) => {
                Self::new(ErrorCode::Forbidden, forbidden.to_string())
                    .with_details(json!({ "requiredScope": forbidden.0.scope() }))
            }
            ContactError::Invalid(fields) => Self::validation(&fields),
            ContactError::NotFound => Self::new(ErrorCode::NotFound, "contact not found"),
            ContactError::PreconditionFailed { current_etag } => Self::new(
                ErrorCode::PreconditionFailed,
                "the contact has changed since the ETag you sent; fetch it again",
            )
            .with_details(json!({ "currentEtag": current_etag })),
            ContactError::DuplicateEmail => Self::new(
                ErrorCode::Conflict,
                "a contact with this e-mail address already exists",
            )
            .with_details(json!({ "fields": { "email": ["is already used by another contact"] } })),
            ContactError::Repo(repo) => repo.into(),
        }
    }
}

pub(crate) fn forbidden(forbidden: domain::principal::Forbidden) -> ApiError {
    ApiError::new(ErrorCode::Forbidden, forbidden.to_string())
        .with_details(json!({ "requiredScope": forbidden.0.scope() }))
}

impl From<CompanyError> for ApiError {
    fn from(error: CompanyError) -> Self {
        match error {
            CompanyError::Forbidden(f) => forbidden(f),
            CompanyError::Invalid(fields) => Self::validation(&fields),
            CompanyError::NotFound => Self::new(ErrorCode::NotFound, "company not found"),
            CompanyError::PreconditionFailed { current_etag } => Self::new(
                ErrorCode::PreconditionFailed,
                "the company has changed since the ETag you sent; fetch it again",
            )
            .with_details(json!({ "currentEtag": current_etag })),
            CompanyError::DuplicateDomain => Self::new(
                ErrorCode::Conflict,
                "a company with this domain already exists",
            )
            .with_details(
                json!({ "fields": { "domain": ["is already used by another company"] } }),
            ),
            CompanyError::Repo(repo) => repo.into(),
        }
    }
}

impl From<PipelineError> for ApiError {
    fn from(error: PipelineError) -> Self {
        match error {
            PipelineError::Forbidden(f) => forbidden(f),
            PipelineError::Invalid(fields) => Self::validation(&fields),
            PipelineError::NotFound => {
                Self::new(ErrorCode::NotFound, "pipeline or stage not found")
            }
            PipelineError::PreconditionFailed { current_etag } => Self::new(
                ErrorCode::PreconditionFailed,
                "the pipeline has changed since the ETag you sent; fetch it again",
            )
            .with_details(json!({ "currentEtag": current_etag })),
            PipelineError::DefaultPipeline => Self::new(
                ErrorCode::Conflict,
                "the default pipeline cannot be deleted",
            ),
            PipelineError::LastStage => {
                Self::new(ErrorCode::Conflict, "a pipeline keeps at least one stage")
            }
            PipelineError::InUse => Self::new(
                ErrorCode::Conflict,
                "leads are still in this stage or pipeline; move them first",
            ),
            PipelineError::Repo(repo) => repo.into(),
        }
    }
}

impl From<CrmError> for ApiError {
    fn from(error: CrmError) -> Self {
        match error {
            CrmError::Forbidden(f) => forbidden(f),
            CrmError::Invalid(fields) => Self::validation(&fields),
            CrmError::NotFound => Self::new(ErrorCode::NotFound, "not found"),
            CrmError::PreconditionFailed { current_etag } => Self::new(
                ErrorCode::PreconditionFailed,
                "the record has changed since the ETag you sent; fetch it again",
            )
            .with_details(json!({ "currentEtag": current_etag })),
            CrmError::Repo(repo) => repo.into(),
        }
    }
}

impl From<IdentityError> for ApiError {
    fn from(error: IdentityError) -> Self {
        match error {
            IdentityError::Invalid(fields) => Self::validation(&fields),
            IdentityError::EmailTaken => Self::new(
                ErrorCode::Conflict,
                "an account with this e-mail address already exists; log in instead",
            )
            .with_details(json!({ "fields": { "email": ["is already registered"] } })),
            IdentityError::InvalidCredentials => {
                Self::new(ErrorCode::Unauthenticated, "invalid e-mail or password")
            }
            IdentityError::NotAMember => {
                Self::new(ErrorCode::Forbidden, "you are not a member of this tenant")
            }
            IdentityError::SessionRequired => Self::new(
                ErrorCode::Forbidden,
                "this needs a user session (crm_st_…); API keys are revoked with DELETE /v1/api-keys/{id}",
            ),
            IdentityError::Repo(repo) => repo.into(),
        }
    }
}

impl From<ApiKeyError> for ApiError {
    fn from(error: ApiKeyError) -> Self {
        match error {
            ApiKeyError::Forbidden(f) => forbidden(f),
            ApiKeyError::Invalid(fields) => Self::validation(&fields),
            ApiKeyError::NotFound => Self::new(ErrorCode::NotFound, "API key not found"),
            ApiKeyError::Repo(repo) => repo.into(),
        }
    }
}

impl From<MemberError> for ApiError {
    fn from(error: MemberError) -> Self {
        match error {
            MemberError::Forbidden(f) => forbidden(f),
            MemberError::NotFound => Self::new(ErrorCode::NotFound, "member not found"),
            MemberError::LastOwner => Self::new(
                ErrorCode::Conflict,
                "the last owner can be neither removed nor demoted; make someone else owner first",
            ),
            MemberError::Repo(repo) => repo.into(),
        }
    }
}

impl From<InvitationError> for ApiError {
    fn from(error: InvitationError) -> Self {
        match error {
            InvitationError::Forbidden(f) => forbidden(f),
            InvitationError::Invalid(fields) => Self::validation(&fields),
            InvitationError::NotFound => Self::new(
                ErrorCode::NotFound,
                "invitation not found, already used, revoked or expired",
            ),
            InvitationError::NotPending => Self::new(
                ErrorCode::Conflict,
                "the invitation was already accepted or revoked",
            ),
            InvitationError::DemoSandbox => Self::new(
                ErrorCode::Forbidden,
                "nobody can be invited into a demo sandbox; sign up for a real tenant",
            ),
            InvitationError::AlreadyMember => Self::new(
                ErrorCode::Conflict,
                "this account is already a member of the tenant; log in instead",
            ),
            InvitationError::InvalidCredentials => {
                Self::new(ErrorCode::Unauthenticated, "invalid e-mail or password")
            }
            InvitationError::WrongAccount => Self::new(
                ErrorCode::Forbidden,
                "this invitation is for another account: accept it with the invited account's \
                 password or session",
            ),
            InvitationError::Repo(repo) => repo.into(),
        }
    }
}

impl From<QrError> for ApiError {
    fn from(error: QrError) -> Self {
        match error {
            QrError::SessionRequired => Self::new(
                ErrorCode::Forbidden,
                "scanning a QR code needs a user session (crm_st_…), not an API key",
            ),
            QrError::NotFound => Self::new(ErrorCode::NotFound, "no such QR login request"),
            QrError::Expired => Self::new(
                ErrorCode::Conflict,
                "this QR code has expired; generate a new one",
            )
            .with_details(json!({ "status": "expired" })),
            QrError::AlreadyUsed(status) => Self::new(
                ErrorCode::Conflict,
                format!("this QR code was already used (status {})", status.as_str()),
            )
            .with_details(json!({ "status": status.as_str() })),
            QrError::WrongPollToken => Self::new(
                ErrorCode::Forbidden,
                "this poll token does not belong to the QR login request",
            ),
            QrError::SlowDown(interval) => Self::new(
                ErrorCode::SlowDown,
                format!("slow_down: poll at most every {interval} seconds"),
            )
            .with_details(json!({ "interval": interval, "retryAfterSeconds": interval })),
            QrError::Repo(repo) => repo.into(),
        }
    }
}

/// The 401 every authentication failure gets, deliberately the same for missing,
/// malformed, unknown, revoked and expired credentials.
#[must_use]
pub fn unauthenticated() -> ApiError {
    ApiError::new(
        ErrorCode::Unauthenticated,
        "missing or invalid credentials: send Authorization: Bearer <API key or session token>",
    )
}

/// Renders the error envelope for `code` (also used by the middleware's safety net).
#[must_use]
pub fn envelope_response(
    code: ErrorCode,
    message: String,
    details: Option<serde_json::Value>,
) -> HttpResponse {
    let mut builder = HttpResponse::build(code.status());
    if code == ErrorCode::Unauthenticated {
        builder.insert_header((
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"crm\""),
        ));
    }
    if code == ErrorCode::Unavailable {
        builder.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
    }
    if matches!(code, ErrorCode::SlowDown | ErrorCode::RateLimited) {
        let wait = details
            .as_ref()
            .and_then(|d| d.get("retryAfterSeconds"))
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(1)
            .max(1);
        if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
            builder.insert_header((header::RETRY_AFTER, value));
        }
    }
    builder.json(Failure {
        success: false,
        error: message,
        code: code.as_str().to_owned(),
        details,
        metadata: Metadata::now(),
    })
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        envelope_response(self.code, self.message.clone(), self.details.clone())
    }
}

/// JSON bodies: 1 MiB, `application/json` or any `+json` type, errors in the envelope.
#[must_use]
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(crate::MAX_BODY_BYTES)
        .content_type_required(true)
        .content_type(|mime| mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
        .error_handler(|error, req| json_error(&error, req).into())
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

fn json_error(error: &JsonPayloadError, req: &HttpRequest) -> ApiError {
    use actix_web::HttpMessage;

    // The body is extracted before the credential, so without this a request with no
    // credential at all would learn how its body is wrong before being told to log in.
    let has_credential = crate::auth::bearer_token(req.headers())
        .is_some_and(|token| app::auth::Credential::from_bearer(token).is_ok());
    if !has_credential
        && let Some(pattern) = req.match_pattern()
        && crate::openapi::requires_credential(req.method().as_str(), &pattern)
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

/// Fallback for unknown routes.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {}", truncated_path(&req)),
    )
    .error_response()
}

/// Fallback for known paths with an unsupported method.
pub async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "{} is not supported on {}",
            req.method(),
            truncated_path(&req)
        ),
    )
    .error_response()
}

/// The request path, cut to 200 characters so an error message stays small.
fn truncated_path(req: &HttpRequest) -> String {
    req.path().chars().take(200).collect()
}
