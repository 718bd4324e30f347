//! The OpenAPI 3.1 document, generated from the handlers and DTOs (utoipa), served at
//! `GET /openapi.json`. It is the one unenveloped 2xx body: tools read it as is.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Response};
use utoipa::{IntoResponses, Modify, OpenApi};

use crate::envelope::{Failure, Metadata, Pagination};
use crate::routes::{
    api_keys, auth, batch, companies, contacts, health, invitations, leads, members, pipelines, qr,
    webhooks,
};

/// The error responses every authenticated operation can give, each in the error envelope.
#[derive(Debug)]
pub struct CommonErrors;

impl IntoResponses for CommonErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        [
            (
                "400",
                "INVALID_JSON or VALIDATION_FAILED, with field details",
            ),
            (
                "401",
                "UNAUTHENTICATED: missing, unknown, revoked or expired credential",
            ),
            (
                "403",
                "FORBIDDEN: the role or the key's scopes do not allow this",
            ),
            ("404", "NOT_FOUND: no such resource in the caller's tenant"),
            ("405", "METHOD_NOT_ALLOWED"),
            ("409", "CONFLICT: e.g. the e-mail address is taken"),
            (
                "412",
                "PRECONDITION_FAILED: If-Match does not name the current ETag",
            ),
            ("413", "PAYLOAD_TOO_LARGE: body over 1 MiB"),
            (
                "415",
                "UNSUPPORTED_MEDIA_TYPE: body is not application/json",
            ),
            (
                "429",
                "RATE_LIMITED: a rate-limit policy is exhausted (details.policy, \
                 details.retryAfterSeconds, Retry-After); SLOW_DOWN for QR polling",
            ),
            ("500", "INTERNAL: a bug; the request id finds it in the log"),
            ("503", "UNAVAILABLE: the database is down; retry"),
        ]
        .into_iter()
        .map(|(status, description)| {
            let response = ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Failure")))
                        .build(),
                )
                .build();
            (status.to_owned(), RefOr::T(response))
        })
        .collect()
    }
}

/// Adds the bearer scheme API keys are sent with.
#[derive(Debug)]
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key: `Authorization: Bearer crm_sk_…`"))
                    .build(),
            ),
        );
    }
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Tenant CRM API", version = "1.0.0",
         description = "Multi-tenant CRM API. Every 2xx body is `{success: true, data, metadata}`; every error is `{success: false, error, code, details?, metadata}`."),
    paths(
        health::healthz, health::readyz,
        contacts::list, contacts::create, contacts::get, contacts::replace, contacts::patch, contacts::delete,
        companies::list, companies::create, companies::get, companies::replace, companies::patch,
        companies::delete, companies::contacts, batch::contacts, batch::companies,
        pipelines::list, pipelines::create, pipelines::get, pipelines::rename, pipelines::delete,
        pipelines::add_stage, pipelines::update_stage, pipelines::delete_stage, pipelines::reorder,
        leads::list, leads::create, leads::get, leads::replace, leads::patch, leads::move_lead, leads::delete,
        leads::list_all, leads::create_one, leads::get_one, leads::replace_one, leads::patch_one, leads::delete_one,
        leads::contact_timeline, leads::company_timeline, leads::lead_timeline,
        auth::signup_handler, auth::login_handler, auth::logout_handler, auth::demo_login_handler, auth::me_handler,
        api_keys::create, api_keys::list, api_keys::get, api_keys::revoke,
        members::list, members::change_role, members::remove,
        invitations::create, invitations::list, invitations::revoke, invitations::accept,
        qr::generate, qr::scan, qr::link, qr::cancel, qr::status,
        webhooks::create, webhooks::list, webhooks::get, webhooks::patch, webhooks::delete,
        webhooks::rotate, webhooks::test, webhooks::deliveries, webhooks::delivery, webhooks::retry,
        webhooks::events,
    ),
    components(schemas(Failure, Metadata, Pagination, contacts::ContactResponse, contacts::ContactBody,
                       contacts::ContactPatchBody, contacts::DeletedResponse)),
    modifiers(&BearerAuth),
    tags((name = "contacts", description = "People a tenant does business with"),
         (name = "companies", description = "Organisations a tenant does business with"),
         (name = "pipelines", description = "Sales pipelines and their ordered stages"),
         (name = "leads", description = "Potential sales moving through pipeline stages"),
         (name = "activities", description = "Notes, calls, e-mails, meetings and tasks, and timelines"),
         (name = "auth", description = "Sign-up, login, sessions, demo sandbox"),
         (name = "api-keys", description = "API keys of the tenant (admins)"),
         (name = "members", description = "Members of the tenant and their roles (admins)"),
         (name = "qr-login", description = "Log a device in by scanning a QR code"),
         (name = "webhooks", description = "Signed webhooks of every change, their delivery log, and the event log (admins)"),
         (name = "ops", description = "Probes"))
)]
pub struct ApiDoc;

fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|_| "{}".to_owned())
    })
}

async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}

/// Registers `GET /openapi.json`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/openapi.json")
            .route(web::get().to(serve))
            .default_service(crate::routes::method_not_allowed("GET")),
    );
}
