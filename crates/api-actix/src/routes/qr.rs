//! QR-code device login (`/v1/auth/qr-session/*`) and the page that uses it (`/login/qr`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use app::qr::{cancel_qr, generate_qr, link_qr, poll_qr, scan_qr};
use domain::identity::QrStatus;
use domain::ids::QrSessionId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::Routes;
use crate::auth::Authenticated;
use crate::envelope::respond;
use crate::error::ApiError;
use crate::{ApiState, Store, client_info};

use super::auth::SessionView;

/// The header the waiting device sends its poll token in.
pub const POLL_TOKEN_HEADER: &str = "x-poll-token";

/// A new QR login request.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QrGenerateResponse {
    /// The request's id (poll `status` with it).
    pub session_id: Uuid,
    /// What the QR image carries (`crm_qr_…`), also typeable by hand.
    pub code: String,
    /// The QR image, SVG.
    pub qr_svg: String,
    /// This device's secret for polling: send it as `X-Poll-Token`.
    pub poll_token: String,
    /// When the code stops working (2 minutes).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    /// Poll no faster than this, in seconds (RFC 8628 `interval`).
    pub interval: i32,
    /// `pending`.
    pub status: String,
}

/// `POST …/scan`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanBody {
    /// The code read from the QR image.
    #[schema(max_length = 100)]
    pub code: String,
}

/// Who asks to log in, shown to the scanning device.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Requester {
    /// The waiting device's user agent.
    pub user_agent: Option<String>,
    /// The waiting device's address.
    pub ip: Option<String>,
    /// When it asked.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// The answer to a scan.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanResponse {
    /// The request.
    pub session_id: Uuid,
    /// `scanned`.
    pub status: String,
    /// Who asks.
    pub requester: Requester,
}

/// `POST …/link` and `…/cancel`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecisionBody {
    /// The request, from the scan's answer.
    pub session_id: Uuid,
}

/// A request's status.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QrStatusResponse {
    /// The request.
    pub session_id: Uuid,
    /// `pending`, `scanned`, `linked`, `consumed`, `expired` or `cancelled`.
    pub status: String,
    /// The new session: present exactly once, on the poll that collects it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionView>,
}

/// `GET …/status` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatusParams {
    /// The request's id.
    pub session_id: Uuid,
}

/// Start a QR login: a code to show as a QR image, and a poll token. No authentication.
#[utoipa::path(post, path = "/v1/auth/qr-session/generate", tag = "qr-login",
    responses(
        (status = 201, description = "A new request", body = crate::envelope::Success<QrGenerateResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn generate<S: Store>(
    req: HttpRequest,
    state: web::Data<ApiState<S>>,
) -> Result<HttpResponse, ApiError> {
    let made = generate_qr(&state.store, &state.auth, &client_info(&req)).await?;
    Ok(respond(
        StatusCode::CREATED,
        QrGenerateResponse {
            session_id: made.session_id.as_uuid(),
            code: made.code.expose().to_owned(),
            qr_svg: made.qr_svg,
            poll_token: made.poll_token.expose().to_owned(),
            expires_at: made.expires_at,
            interval: made.interval,
            status: QrStatus::Pending.as_str().to_owned(),
        },
    ))
}

/// Scan a code (logged-in device, user session): see who asks before linking.
#[utoipa::path(post, path = "/v1/auth/qr-session/scan", tag = "qr-login", request_body = ScanBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Scanned", body = crate::envelope::Success<ScanResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn scan<S: Store>(
    body: web::Json<ScanBody>,
    auth: Authenticated<S>,
) -> Result<HttpResponse, ApiError> {
    let requester = scan_qr(auth.uow, &auth.principal, &body.code).await?;
    Ok(respond(
        StatusCode::OK,
        ScanResponse {
            session_id: requester.session_id.as_uuid(),
            status: QrStatus::Scanned.as_str().to_owned(),
            requester: Requester {
                user_agent: requester.user_agent,
                ip: requester.ip,
                created_at: requester.created_at,
            },
        },
    ))
}

/// Confirm a scanned request: the waiting device's next poll gets a session for you.
#[utoipa::path(post, path = "/v1/auth/qr-session/link", tag = "qr-login", request_body = DecisionBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Linked", body = crate::envelope::Success<QrStatusResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn link<S: Store>(
    body: web::Json<DecisionBody>,
    auth: Authenticated<S>,
) -> Result<HttpResponse, ApiError> {
    link_qr(
        auth.uow,
        &auth.principal,
        QrSessionId::from_uuid(body.session_id),
    )
    .await?;
    Ok(respond(
        StatusCode::OK,
        QrStatusResponse {
            session_id: body.session_id,
            status: QrStatus::Linked.as_str().to_owned(),
            session: None,
        },
    ))
}

/// Refuse a scanned request.
#[utoipa::path(post, path = "/v1/auth/qr-session/cancel", tag = "qr-login", request_body = DecisionBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Cancelled", body = crate::envelope::Success<QrStatusResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn cancel<S: Store>(
    body: web::Json<DecisionBody>,
    auth: Authenticated<S>,
) -> Result<HttpResponse, ApiError> {
    cancel_qr(
        auth.uow,
        &auth.principal,
        QrSessionId::from_uuid(body.session_id),
    )
    .await?;
    Ok(respond(
        StatusCode::OK,
        QrStatusResponse {
            session_id: body.session_id,
            status: QrStatus::Cancelled.as_str().to_owned(),
            session: None,
        },
    ))
}

/// Poll a request (waiting device, `X-Poll-Token`). The poll after `link` returns the
/// session once; later polls say `consumed`. Faster than `interval`: 429 `SLOW_DOWN`.
#[utoipa::path(get, path = "/v1/auth/qr-session/status", tag = "qr-login", params(StatusParams,
        ("X-Poll-Token" = String, Header, description = "The poll token from generate")),
    responses(
        (status = 200, description = "The status (and the session, once)", body = crate::envelope::Success<QrStatusResponse>),
        (status = 429, description = "SLOW_DOWN: polled faster than interval", body = crate::envelope::Failure),
        crate::schemas::CommonErrors,
    ))]
pub async fn status<S: Store>(
    req: HttpRequest,
    state: web::Data<ApiState<S>>,
    params: web::Query<StatusParams>,
) -> Result<HttpResponse, ApiError> {
    let token = req
        .headers()
        .get(POLL_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let result = poll_qr(
        &state.store,
        &state.auth,
        QrSessionId::from_uuid(params.session_id),
        token,
    )
    .await?;
    Ok(respond(
        StatusCode::OK,
        QrStatusResponse {
            session_id: params.session_id,
            status: result.status.as_str().to_owned(),
            session: result.session.map(|(token, expires_at)| SessionView {
                token: token.expose().to_owned(),
                expires_at,
            }),
        },
    ))
}

/// This module's operations in the OpenAPI document, next to the routes that serve them
/// (`openapi`'s test checks the two lists agree).
#[derive(OpenApi)]
#[openapi(paths(generate, scan, link, cancel, status))]
pub struct ApiDoc;

/// Registers the API routes (under `/v1`).
pub fn configure<S: Store>(routes: &mut Routes<'_>) {
    routes
        .resource("/auth/qr-session/generate", |r| r.post(generate::<S>))
        .resource("/auth/qr-session/scan", |r| r.post(scan::<S>))
        .resource("/auth/qr-session/link", |r| r.post(link::<S>))
        .resource("/auth/qr-session/cancel", |r| r.post(cancel::<S>))
        .resource("/auth/qr-session/status", |r| r.get(status::<S>));
}

/// The login page: shows a QR code, polls, and says when this device is logged in.
const LOGIN_PAGE: &str = include_str!("login_qr.html");

async fn login_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'",
        ))
        .body(LOGIN_PAGE)
}

/// Registers `GET /login/qr`.
pub fn configure_page(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/login/qr")
            .route(web::get().to(login_page))
            .default_service(super::method_not_allowed("GET")),
    );
}
