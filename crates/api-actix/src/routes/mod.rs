//! One module per resource: request and response DTOs, handlers, and `configure`.

pub mod api_keys;
pub mod auth;
pub mod batch;
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
