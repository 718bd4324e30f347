//! One module per resource: request and response DTOs, handlers, `configure` (which
//! registers through [`Routes`]) and `ApiDoc` (the module's operations in the OpenAPI
//! document), side by side.

pub mod activities;
pub mod api_keys;
pub mod auth;
pub mod batch;
pub(crate) mod common;
pub mod companies;
pub mod contacts;
pub mod health;
pub mod invitations;
pub mod leads;
pub mod members;
pub mod pipelines;
pub mod qr;
mod served;
pub mod webhooks;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Route, web};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

pub use self::served::{Methods, Routes, ServedRoute};
use crate::Store;
use crate::error::ApiError;

/// `q` of the lists that come whole in one page (pipelines, members, API keys,
/// invitations, webhooks): a case-insensitive substring of the fields each names.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Case-insensitive search (see the operation for the fields).
    #[param(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub q: Option<String>,
}

impl SearchParams {
    /// The term, lowercased, checked as every list's `q` is.
    pub(crate) fn term(self) -> Result<Option<String>, ApiError> {
        let mut errors = domain::FieldErrors::new();
        let term = common::filter_text("q", self.q, 200, &mut errors);
        if errors.is_empty() {
            Ok(term.map(|t| t.to_lowercase()))
        } else {
            Err(ApiError::validation(&errors))
        }
    }
}

/// Whether any of `fields` contains `term` (no term: everything matches).
pub(crate) fn found<'a>(term: Option<&str>, fields: impl IntoIterator<Item = &'a str>) -> bool {
    term.is_none_or(|term| fields.into_iter().any(|f| f.to_lowercase().contains(term)))
}

/// The fallback for a path's unsupported methods: 405 with the `Allow` header
/// (`"GET, POST"`). [`Routes`] gives every resource module's path one; the unversioned
/// endpoints outside it (`/openapi.json`, `/metrics`, `/login/qr`) call it themselves.
pub(crate) fn method_not_allowed(allow: impl Into<String>) -> Route {
    let allow = HeaderValue::from_str(&allow.into()).ok();
    web::route().to(move |req: HttpRequest| {
        let allow = allow.clone();
        async move {
            let mut response = crate::error::method_not_allowed(req).await;
            if let Some(allow) = allow {
                response.headers_mut().insert(header::ALLOW, allow);
            }
            Ok::<HttpResponse, actix_web::Error>(response)
        }
    })
}

/// Registers every documented route: the probes, then each resource module under `/v1`.
/// Returns what it registered, which the OpenAPI document must list exactly (see
/// [`documents`] and the test in `openapi`).
pub fn configure<S: Store>(cfg: &mut web::ServiceConfig) -> Vec<ServedRoute> {
    let mut served = Vec::new();
    health::configure::<S>(&mut Routes::new(cfg, "", &mut served));
    cfg.service(web::scope("/v1").configure(|cfg| {
        let mut routes = Routes::new(cfg, "/v1", &mut served);
        // Order matters where patterns overlap: `/contacts/batch` before `/contacts/{id}`.
        batch::configure::<S>(&mut routes);
        leads::configure::<S>(&mut routes);
        activities::configure::<S>(&mut routes);
        contacts::configure::<S>(&mut routes);
        companies::configure::<S>(&mut routes);
        pipelines::configure::<S>(&mut routes);
        auth::configure::<S>(&mut routes);
        api_keys::configure::<S>(&mut routes);
        members::configure::<S>(&mut routes);
        invitations::configure::<S>(&mut routes);
        qr::configure::<S>(&mut routes);
        webhooks::configure::<S>(&mut routes);
    }));
    served
}

/// Each module's OpenAPI operations (its `ApiDoc`, next to its `configure`), in the order
/// [`configure`] registers them; `openapi` merges them into the served document.
#[must_use]
pub fn documents() -> Vec<utoipa::openapi::OpenApi> {
    vec![
        health::ApiDoc::openapi(),
        batch::ApiDoc::openapi(),
        leads::ApiDoc::openapi(),
        activities::ApiDoc::openapi(),
        contacts::ApiDoc::openapi(),
        companies::ApiDoc::openapi(),
        pipelines::ApiDoc::openapi(),
        auth::ApiDoc::openapi(),
        api_keys::ApiDoc::openapi(),
        members::ApiDoc::openapi(),
        invitations::ApiDoc::openapi(),
        qr::ApiDoc::openapi(),
        webhooks::ApiDoc::openapi(),
    ]
}
