//! `POST /v1/contacts/batch` and `POST /v1/companies/batch`: up to 100 items, one
//! transaction, a result per item. `create` is all-or-nothing; `upsert` writes every valid
//! item (by e-mail for contacts, by domain for companies) and reports the others.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use app::batch::{BatchError, BatchMode, ItemError, ItemOutcome, batch_companies, batch_contacts};
use domain::FieldErrors;
use garde::Validate;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::Routes;
use super::companies::CompanyBody;
use super::contacts::ContactBody;
use crate::Store;
use crate::auth::Authenticated;
use crate::envelope::respond;
use crate::error::{ApiError, ErrorCode};
use crate::validation::field_errors;

/// How a batch writes.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BatchModeDto {
    /// Every item is created, or none is.
    Create,
    /// Each valid item is created or updated by its natural key; invalid ones are reported.
    Upsert,
}

/// A batch of contacts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactBatchBody {
    /// How to write.
    pub mode: BatchModeDto,
    /// 1 to 100 contacts, each as for `POST /v1/contacts`.
    #[schema(value_type = Vec<ContactBody>, min_items = 1, max_items = 100)]
    pub items: Vec<Value>,
}

/// A batch of companies.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyBatchBody {
    /// How to write.
    pub mode: BatchModeDto,
    /// 1 to 100 companies, each as for `POST /v1/companies`.
    #[schema(value_type = Vec<CompanyBody>, min_items = 1, max_items = 100)]
    pub items: Vec<Value>,
}

/// The outcome of one item.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItemResult {
    /// Its position in `items`.
    pub index: usize,
    /// `created`, `updated`, `unchanged` or `error`.
    pub status: String,
    /// The row's id, unless the item failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// Why it failed: `{code, message, fields?}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

/// The answer to a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// One result per item, in order.
    pub results: Vec<BatchItemResult>,
}

fn parse_item<T, I>(value: Value) -> Result<I, FieldErrors>
where
    T: serde::de::DeserializeOwned + Validate<Context = ()>,
    I: From<T>,
{
    let item: T = serde_json::from_value(value).map_err(|e| {
        let mut errors = FieldErrors::new();
        errors.add("item", e.to_string());
        errors
    })?;
    item.validate().map_err(|report| field_errors(&report))?;
    Ok(I::from(item))
}

fn results(outcomes: Vec<ItemOutcome>) -> Vec<BatchItemResult> {
    outcomes
        .into_iter()
        .enumerate()
        .map(|(index, outcome)| {
            let (status, id, error) = match outcome {
                ItemOutcome::Created(id) => ("created", Some(id), None),
                ItemOutcome::Updated(id) => ("updated", Some(id), None),
                ItemOutcome::Unchanged(id) => ("unchanged", Some(id), None),
                ItemOutcome::Error(ItemError::Invalid(fields)) => (
                    "error",
                    None,
                    Some(json!({"code": "VALIDATION_FAILED", "message": "the item breaks a rule", "fields": fields.fields()})),
                ),
                ItemOutcome::Error(ItemError::Conflict(fields)) => (
                    "error",
                    None,
                    Some(json!({"code": "CONFLICT", "message": "the item's key is taken", "fields": fields.fields()})),
                ),
                ItemOutcome::Error(ItemError::Skipped) => (
                    "error",
                    None,
                    Some(json!({"code": "SKIPPED", "message": "not written: another item of this all-or-nothing batch failed"})),
                ),
            };
            BatchItemResult { index, status: status.to_owned(), id, error }
        })
        .collect()
}

fn answer(
    mode: BatchModeDto,
    outcome: Result<Vec<ItemOutcome>, BatchError>,
) -> Result<HttpResponse, ApiError> {
    match outcome {
        Ok(outcomes) => {
            let status = if matches!(mode, BatchModeDto::Create) {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(respond(
                status,
                BatchResponse {
                    results: results(outcomes),
                },
            ))
        }
        Err(BatchError::Rejected(outcomes)) => {
            let only_conflicts = outcomes.iter().all(|o| {
                matches!(
                    o,
                    ItemOutcome::Error(ItemError::Conflict(_) | ItemError::Skipped)
                )
            });
            let code = if only_conflicts {
                ErrorCode::Conflict
            } else {
                ErrorCode::ValidationFailed
            };
            Err(ApiError::new(
                code,
                "the batch was not written: some items failed (see details.results)",
            )
            .with_details(json!({ "results": results(outcomes) })))
        }
        Err(BatchError::Size) => Err(ApiError::invalid_field("items", "must hold 1 to 100 items")),
        Err(BatchError::Forbidden(f)) => Err(ApiError::new(ErrorCode::Forbidden, f.to_string())
            .with_details(json!({ "requiredScope": f.0.scope() }))),
        Err(BatchError::Repo(repo)) => Err(repo.into()),
    }
}

fn mode(dto: BatchModeDto) -> BatchMode {
    match dto {
        BatchModeDto::Create => BatchMode::Create,
        BatchModeDto::Upsert => BatchMode::Upsert,
    }
}

/// Create or upsert up to 100 contacts (by e-mail) in one transaction.
#[utoipa::path(post, path = "/v1/contacts/batch", tag = "contacts", request_body = ContactBatchBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Upsert done; a result per item", body = crate::envelope::Success<BatchResponse>),
        (status = 201, description = "All items created", body = crate::envelope::Success<BatchResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn contacts<S: Store>(
    body: web::Json<ContactBatchBody>,
    auth: Authenticated<S>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let items = body
        .items
        .into_iter()
        .map(parse_item::<ContactBody, _>)
        .collect();
    answer(
        body.mode,
        batch_contacts(auth.uow, &auth.principal, mode(body.mode), items).await,
    )
}

/// Create or upsert up to 100 companies (by domain) in one transaction.
#[utoipa::path(post, path = "/v1/companies/batch", tag = "companies", request_body = CompanyBatchBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Upsert done; a result per item", body = crate::envelope::Success<BatchResponse>),
        (status = 201, description = "All items created", body = crate::envelope::Success<BatchResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn companies<S: Store>(
    body: web::Json<CompanyBatchBody>,
    auth: Authenticated<S>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let items = body
        .items
        .into_iter()
        .map(parse_item::<CompanyBody, _>)
        .collect();
    answer(
        body.mode,
        batch_companies(auth.uow, &auth.principal, mode(body.mode), items).await,
    )
}

/// This module's operations in the OpenAPI document, next to the routes that serve them
/// (`openapi`'s test checks the two lists agree).
#[derive(OpenApi)]
#[openapi(paths(contacts, companies))]
pub struct ApiDoc;

/// Registers the routes (under `/v1`), before `/{id}` routes so `batch` is not taken for an id.
pub fn configure<S: Store>(routes: &mut Routes<'_>) {
    routes
        .resource("/contacts/batch", |r| r.post(contacts::<S>))
        .resource("/companies/batch", |r| r.post(companies::<S>));
}
