//! The OpenAPI 3.1 document, generated from the handlers and DTOs (utoipa): each route
//! module's operations ([`crate::routes::documents`]) merged into [`ApiDoc`], then
//! finished ([`finish`]); served at `GET /openapi.json`. It is the one unenveloped 2xx body: tools read it as is.

mod finish;

use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::envelope::{Failure, Metadata, Pagination};
use crate::routes::{common, companies, contacts, leads};

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

/// What the document says besides the operations: its info, the envelope schemas, the
/// bearer scheme and the tags. The operations come from each route module's `ApiDoc`
/// ([`crate::routes::documents`]), merged by [`collected`].
#[derive(OpenApi)]
#[openapi(
    info(title = "Tenant CRM API", version = "1.0.0",
         description = "Multi-tenant CRM API. Every 2xx body is `{success: true, data, metadata}`; every error is `{success: false, error, code, details?, metadata}`."),
    components(schemas(Failure, Metadata, Pagination, contacts::ContactResponse, contacts::ContactBody,
                       contacts::ContactPatchBody, common::DeletedResponse, contacts::ContactSort,
                       companies::CompanySort, leads::LeadSort)),
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

/// The document as the annotations give it: [`ApiDoc`] with every route module's
/// operations merged in.
#[must_use]
pub fn collected() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    for module in crate::routes::documents() {
        doc.merge(module);
    }
    doc
}

/// The document as served: what the annotations give, finished by [`finish::finish`].
#[must_use]
pub fn document_value() -> Value {
    let mut doc = serde_json::to_value(collected()).unwrap_or_else(|_| json!({}));
    finish::finish(&mut doc);
    doc
}

/// Whether the operation at `method` and route `pattern` (`/v1/contacts/{id}`) needs a
/// credential, as the document says (its `security`).
#[must_use]
pub fn requires_credential(method: &str, pattern: &str) -> bool {
    static SECURED: OnceLock<std::collections::BTreeSet<(String, String)>> = OnceLock::new();
    SECURED
        .get_or_init(|| {
            let doc = collected();
            let mut secured = std::collections::BTreeSet::new();
            if let Ok(Value::Object(paths)) = serde_json::to_value(&doc.paths.paths) {
                for (path, item) in paths {
                    let Value::Object(item) = item else { continue };
                    for (method, operation) in item {
                        if operation
                            .get("security")
                            .and_then(Value::as_array)
                            .is_some_and(|s| !s.is_empty())
                        {
                            secured.insert((method, path.clone()));
                        }
                    }
                }
            }
            secured
        })
        .contains(&(method.to_ascii_lowercase(), pattern.to_owned()))
}

fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        serde_json::to_string(&document_value()).unwrap_or_else(|_| "{}".to_owned())
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use actix_web::App;
    use adapters_memory::MemoryStore;

    /// `(method, path)` of every operation the routes register, as actix serves them.
    fn served() -> BTreeSet<(String, String)> {
        let mut served = Vec::new();
        let _app = App::new().configure(|cfg| {
            served = crate::routes::configure::<MemoryStore>(cfg);
        });
        served
            .into_iter()
            .map(|route| (route.method.to_ascii_lowercase(), route.path))
            .collect()
    }

    /// `(method, path)` of every operation in the served document.
    fn documented() -> BTreeSet<(String, String)> {
        let doc = super::document_value();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
                documented.insert((method.clone(), path.clone()));
            }
        }
        documented
    }

    #[test]
    fn every_served_route_is_in_the_document() {
        let documented = documented();
        let missing: Vec<_> = served().difference(&documented).cloned().collect();
        assert!(
            missing.is_empty(),
            "served but not documented (add the handler to its module's ApiDoc): {missing:?}"
        );
    }

    #[test]
    fn every_documented_operation_is_served() {
        let served = served();
        let unserved: Vec<_> = documented().difference(&served).cloned().collect();
        assert!(
            unserved.is_empty(),
            "documented but not served (register it in its module's configure): {unserved:?}"
        );
        assert!(served.contains(&("get".to_owned(), "/v1/contacts/{id}".to_owned())));
        assert!(served.contains(&("get".to_owned(), "/healthz".to_owned())));
    }
}
