//! One module per resource: request and response DTOs, handlers, and `configure`.

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
pub mod webhooks;

use actix_web::{HttpRequest, HttpResponse, Route, web};
use serde::Deserialize;
use utoipa::IntoParams;

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

/// The fallback for a path's unsupported methods: 405 with the `Allow` header.
pub(crate) fn method_not_allowed(allow: &'static str) -> Route {
    web::route().to(move |req: HttpRequest| async move {
        let mut response = crate::error::method_not_allowed(req).await;
        response.headers_mut().insert(
            actix_web::http::header::ALLOW,
            actix_web::http::header::HeaderValue::from_static(allow),
        );
        Ok::<HttpResponse, actix_web::Error>(response)
    })
}
