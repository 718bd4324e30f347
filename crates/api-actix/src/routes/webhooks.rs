//! `/v1/webhooks` (subscriptions, secret rotation, test sends, the delivery log and
//! manual retries) and `/v1/events` (the tenant's event log, to catch up). Admins and
//! owners, or keys with `webhooks:manage`.

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, HttpResponseBuilder, web};
use app::webhooks::{
    SubscriptionInput, SubscriptionPatch, TestOutcome, create_subscription, delete_subscription,
    draft_subscription, get_delivery, get_subscription, list_deliveries, list_events,
    list_subscriptions, retry_delivery, rotate_secret, send_test, update_subscription,
    vet_destination, vet_patch,
};
use domain::ids::{DeliveryId, SubscriptionId};
use domain::webhook::{Delivery, DeliveryAttempt, Subscription};
use garde::Validate;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::Routes;
use super::common::{DeletedResponse, check_body, present};
use crate::Store;
use crate::auth::Authenticated;
use crate::envelope::{Pagination, respond, respond_with};
use crate::error::ApiError;
use crate::state::SenderHandle;

/// Every value an event filter may take: `*`, `<resource>.*` and the event types.
fn event_filter_values() -> Vec<String> {
    let mut values = vec!["*".to_owned()];
    values.extend(
        domain::webhook::EVENT_RESOURCES
            .iter()
            .chain(std::iter::once(&"webhook"))
            .map(|r| format!("{r}.*")),
    );
    values.extend(domain::webhook::event_types());
    values
}

/// The schema of `events`: 1 to 50 filters from the closed list.
fn event_filters_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(event_filter_values())),
        )
        .min_items(Some(1))
        .max_items(Some(50))
        .build()
}

/// The schema of the `type` filter of the event log.
fn event_type_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(domain::webhook::event_types()))
        .build()
}

/// A key that may be left out but, when present, may not be null.
fn not_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

fn sender(req: &HttpRequest) -> Result<SenderHandle, ApiError> {
    req.app_data::<SenderHandle>()
        .cloned()
        .ok_or_else(|| ApiError::internal(&"the webhook sender is not registered"))
}

/// `POST /v1/webhooks`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhookBody {
    /// Where events are POSTed: https (http only where the operator allows it), and not a
    /// private, loopback or link-local address. The schema's pattern (https, a plain host
    /// name, an optional port, a path) is what every deployment accepts; the server is
    /// more lenient where configured, never stricter, except where the SSRF guard refuses
    /// the destination.
    #[garde(length(min = 8, max = 2048))]
    #[schema(
        min_length = 8,
        max_length = 2048,
        pattern = "^https://[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?$",
        example = "https://hooks.example.com/crm"
    )]
    pub url: String,
    /// Free text: one line (no control characters).
    #[garde(inner(length(chars, max = 500)))]
    #[schema(max_length = 500, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub description: Option<String>,
    /// `*`, `<resource>.*` or event types such as `contact.created`.
    #[garde(length(min = 1, max = 50))]
    #[schema(schema_with = event_filters_schema, example = json!(["contact.*", "lead.stage_changed"]))]
    pub events: Vec<String>,
    /// Whether deliveries are made (default true).
    #[garde(skip)]
    pub enabled: Option<bool>,
}

/// `PATCH /v1/webhooks/{id}`: a merge-patch; `enabled: true` also clears `disabledReason`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(clippy::option_option)]
pub struct PatchWebhookBody {
    /// New URL.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(
        value_type = String,
        required = false,
        min_length = 8,
        max_length = 2048,
        pattern = "^https://[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?$"
    )]
    pub url: Option<String>,
    /// New description (`null` clears).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 500, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub description: Option<Option<String>>,
    /// New event filters.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(schema_with = event_filters_schema)]
    pub events: Option<Vec<String>>,
    /// Enable or disable.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = bool, required = false)]
    pub enabled: Option<bool>,
}

/// A subscription. `secret` only in the answers of create and rotate-secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookResponse {
    /// Its id.
    pub id: Uuid,
    /// Where events go.
    pub url: String,
    /// Free text.
    pub description: Option<String>,
    /// Event filters.
    pub events: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Why the platform disabled it (410 Gone, five days of failures), if it did.
    pub disabled_reason: Option<String>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// The signing secret, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl WebhookResponse {
    fn new(subscription: &Subscription, secret: Option<String>) -> Self {
        Self {
            id: subscription.id.as_uuid(),
            url: subscription.fields.url.clone(),
            description: subscription.fields.description.clone(),
            events: subscription.fields.events.clone(),
            enabled: subscription.fields.enabled,
            disabled_reason: subscription.disabled_reason.clone(),
            created_at: subscription.created_at,
            secret,
        }
    }
}

/// One event's delivery to a subscription.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryResponse {
    /// Its id.
    pub id: Uuid,
    /// The event (`evt_…`, the `webhook-id` header).
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due (pending only).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// The last answer's status.
    pub last_status_code: Option<i32>,
    /// The last failure.
    pub last_error: Option<String>,
    /// Every attempt, oldest first (`GET …/deliveries/{deliveryId}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<AttemptResponse>>,
}

/// One attempt.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptResponse {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub attempted_at: OffsetDateTime,
    /// The answer's status, if any.
    pub status_code: Option<i32>,
    /// How long it took.
    pub latency_ms: i32,
    /// The first 1 KiB of the answer.
    pub response_body: Option<String>,
    /// Why it failed without an answer.
    pub error: Option<String>,
}

impl DeliveryResponse {
    fn new(delivery: &Delivery, attempts: Option<&[DeliveryAttempt]>) -> Self {
        Self {
            id: delivery.id.as_uuid(),
            event_id: delivery.event_id.clone(),
            event_type: delivery.event_type.clone(),
            status: delivery.status.as_str().to_owned(),
            attempts: delivery.attempts,
            next_attempt_at: delivery.next_attempt_at,
            last_status_code: delivery.last_status_code,
            last_error: delivery.last_error.clone(),
            attempt_log: attempts.map(|list| {
                list.iter()
                    .map(|a| AttemptResponse {
                        attempted_at: a.attempted_at,
                        status_code: a.status_code,
                        latency_ms: a.latency_ms,
                        response_body: a.response_body.clone(),
                        error: a.error.clone(),
                    })
                    .collect()
            }),
        }
    }
}

/// What `POST /v1/webhooks/{id}/test` got back from the endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestResponse {
    /// The test event's id.
    pub event_id: String,
    /// Whether the endpoint answered 2xx.
    pub succeeded: bool,
    /// Its status, if it answered.
    pub status_code: Option<u16>,
    /// How long it took.
    pub latency_ms: u64,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl From<TestOutcome> for TestResponse {
    fn from(outcome: TestOutcome) -> Self {
        Self {
            event_id: outcome.event_id,
            succeeded: outcome.succeeded,
            status_code: outcome.status_code,
            latency_ms: outcome.latency_ms,
            error: outcome.error,
        }
    }
}

/// Paging of the delivery log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// 1-100, default 25.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<Uuid>,
}

/// Paging of the event log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Only events after this position: the `nextCursor` of the previous page, or the id
    /// of an event you already have (`evt_…`, the `webhook-id` of a delivery).
    #[param(max_length = 36, pattern = "^([0-9]{0,18}|evt_[0-9a-f]{32})$")]
    pub after: Option<String>,
    /// Only events of this type.
    #[serde(rename = "type")]
    #[param(rename = "type", schema_with = event_type_schema)]
    pub event_type: Option<String>,
    /// 1-100, default 25.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// `after` of the event log: a cursor (at most 18 digits, as published) or an event id.
fn events_after(text: &str) -> Option<app::webhooks::EventsAfter> {
    if let Some(hex) = text.strip_prefix("evt_") {
        let valid = hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        return valid
            .then(|| uuid::Uuid::try_parse(hex).ok())
            .flatten()
            .map(app::webhooks::EventsAfter::Event);
    }
    (text.len() <= 18 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse::<i64>().ok())
        .flatten()
        .map(app::webhooks::EventsAfter::Position)
}

fn limit(value: Option<i64>) -> Result<u16, ApiError> {
    match value {
        None => Ok(25),
        Some(n @ 1..=100) => {
            u16::try_from(n).map_err(|_| ApiError::invalid_field("limit", "must be 1 to 100"))
        }
        Some(_) => Err(ApiError::invalid_field("limit", "must be 1 to 100")),
    }
}

fn list_response<T: Serialize>(data: Vec<T>, limit: u16, next: Option<String>) -> HttpResponse {
    let pagination = Pagination {
        limit,
        has_more: next.is_some(),
        next_cursor: next,
    };
    respond_with(
        HttpResponseBuilder::new(StatusCode::OK),
        data,
        Some(pagination),
    )
}

/// Subscribe an HTTPS endpoint to events; the signing secret is shown once.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = CreateWebhookBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; the secret is shown this once", body = crate::envelope::Success<WebhookResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn create<S: Store>(
    req: HttpRequest,
    body: web::Json<CreateWebhookBody>,
    auth: Authenticated<S>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_body(&body)?;
    let sender = sender(&req)?;
    let input = SubscriptionInput {
        url: body.url,
        description: body.description,
        events: body.events,
        enabled: body.enabled.unwrap_or(true),
    };
    // Authorised and validated in the request's unit of work, which then ends: the URL's
    // look-up waits on a name server the tenant may control, and must hold no pooled
    // connection. The write runs in the unit of work of a second authentication (the
    // credential is checked again, and an Idempotency-Key commits with the write).
    let draft = draft_subscription(&auth.principal, input)?;
    drop(auth);
    let vetted = vet_destination(&*sender.0, draft).await?;
    let auth = Authenticated::<S>::extract(&req).await?;
    let made = create_subscription(auth.uow, &auth.principal, vetted).await?;
    Ok(respond(
        StatusCode::CREATED,
        WebhookResponse::new(&made.subscription, Some(made.secret.expose().to_owned())),
    ))
}

/// List the tenant's webhook subscriptions.
#[utoipa::path(get, path = "/v1/webhooks", params(super::SearchParams), tag = "webhooks", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every subscription (never their secrets)", body = crate::envelope::Success<Vec<WebhookResponse>>),
        crate::schemas::CommonErrors,
    ))]
pub async fn list<S: Store>(
    auth: Authenticated<S>,
    params: web::Query<super::SearchParams>,
) -> Result<HttpResponse, ApiError> {
    let term = params.into_inner().term()?;
    let all = list_subscriptions(auth.uow, &auth.principal).await?;
    let data: Vec<WebhookResponse> = all
        .iter()
        .filter(|s| {
            let url = s.fields.url.as_str();
            let description = s.fields.description.as_deref().unwrap_or_default();
            super::found(term.as_deref(), [url, description])
        })
        .map(|s| WebhookResponse::new(s, None))
        .collect();
    let count = u16::try_from(data.len()).unwrap_or(u16::MAX);
    Ok(list_response(data, count, None))
}

/// Fetch a webhook subscription.
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "The subscription", body = crate::envelope::Success<WebhookResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn get<S: Store>(
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let found = get_subscription(auth.uow, &auth.principal, SubscriptionId::from_uuid(*id)).await?;
    Ok(respond(StatusCode::OK, WebhookResponse::new(&found, None)))
}

/// Change a webhook subscription (merge patch).
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", request_body = PatchWebhookBody,
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "Changed", body = crate::envelope::Success<WebhookResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn patch<S: Store>(
    req: HttpRequest,
    body: web::Json<PatchWebhookBody>,
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let sender = sender(&req)?;
    let id = SubscriptionId::from_uuid(*id);
    let patch = SubscriptionPatch {
        url: body.url,
        description: body.description,
        events: body.events,
        enabled: body.enabled,
    };
    // As `create`: read with the request's unit of work (ended by the read), look the
    // resulting URL up holding nothing, then write in a second one.
    let seen = get_subscription(auth.uow, &auth.principal, id).await?;
    let vetted = vet_patch(&*sender.0, patch, &seen).await?;
    let auth = Authenticated::<S>::extract(&req).await?;
    let changed = update_subscription(auth.uow, &auth.principal, id, vetted).await?;
    Ok(respond(
        StatusCode::OK,
        WebhookResponse::new(&changed, None),
    ))
}

/// Delete a webhook subscription.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "Deleted, with its deliveries", body = crate::envelope::Success<DeletedResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn delete<S: Store>(
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    delete_subscription(auth.uow, &auth.principal, SubscriptionId::from_uuid(*id)).await?;
    Ok(respond(
        StatusCode::OK,
        DeletedResponse {
            id: *id,
            deleted: true,
        },
    ))
}

/// Rotate the signing secret; the old one keeps signing for the grace period.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "The new secret, shown this once; the old one keeps signing beside it for the grace period", body = crate::envelope::Success<WebhookResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn rotate<S: Store>(
    state: web::Data<crate::ApiState<S>>,
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let rotated = rotate_secret(
        auth.uow,
        &auth.principal,
        SubscriptionId::from_uuid(*id),
        state.webhooks.secret_grace,
    )
    .await?;
    Ok(respond(
        StatusCode::OK,
        WebhookResponse::new(
            &rotated.subscription,
            Some(rotated.secret.expose().to_owned()),
        ),
    ))
}

/// Send a signed test event to the endpoint now and report the outcome.
#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "What the endpoint answered to a signed webhook.test event", body = crate::envelope::Success<TestResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn test<S: Store>(
    req: HttpRequest,
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let sender = sender(&req)?;
    let outcome = send_test(
        auth.uow,
        &auth.principal,
        &*sender.0,
        SubscriptionId::from_uuid(*id),
    )
    .await?;
    Ok(respond(StatusCode::OK, TestResponse::from(outcome)))
}

/// List a subscription's deliveries, newest first.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Subscription id"), DeliveryParams),
    responses(
        (status = 200, description = "Deliveries, newest first", body = crate::envelope::Success<Vec<DeliveryResponse>>),
        crate::schemas::CommonErrors,
    ))]
pub async fn deliveries<S: Store>(
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
    params: web::Query<DeliveryParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = limit(params.limit)?;
    let found = list_deliveries(
        auth.uow,
        &auth.principal,
        SubscriptionId::from_uuid(*id),
        u32::from(limit) + 1,
        params.cursor.map(DeliveryId::from_uuid),
    )
    .await?;
    let more = found.len() > usize::from(limit);
    let page: Vec<&Delivery> = found.iter().take(usize::from(limit)).collect();
    let next = more
        .then(|| page.last().map(|d| d.id.as_uuid().to_string()))
        .flatten();
    let data: Vec<DeliveryResponse> = page
        .iter()
        .map(|d| DeliveryResponse::new(d, None))
        .collect();
    Ok(list_response(data, limit, next))
}

/// Fetch a delivery with its attempts.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries/{deliveryId}", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Subscription id"),
           ("deliveryId" = Uuid, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "The delivery and its attempts", body = crate::envelope::Success<DeliveryResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn delivery<S: Store>(
    auth: Authenticated<S>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (subscription, id) = path.into_inner();
    let (found, attempts) = get_delivery(
        auth.uow,
        &auth.principal,
        SubscriptionId::from_uuid(subscription),
        DeliveryId::from_uuid(id),
    )
    .await?;
    Ok(respond(
        StatusCode::OK,
        DeliveryResponse::new(&found, Some(&attempts)),
    ))
}

/// Retry a delivery now.
#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{deliveryId}/retry", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Subscription id"),
           ("deliveryId" = Uuid, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "Scheduled again now (a succeeded delivery stays as it is)", body = crate::envelope::Success<DeliveryResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn retry<S: Store>(
    auth: Authenticated<S>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (subscription, id) = path.into_inner();
    let delivery = retry_delivery(
        auth.uow,
        &auth.principal,
        SubscriptionId::from_uuid(subscription),
        DeliveryId::from_uuid(id),
    )
    .await?;
    Ok(respond(
        StatusCode::OK,
        DeliveryResponse::new(&delivery, None),
    ))
}

/// List the tenant's events in order (catch-up after missed deliveries).
#[utoipa::path(get, path = "/v1/events", tag = "webhooks", security(("bearer" = [])),
    params(EventParams),
    responses(
        (status = 200, description = "The tenant's events in order, as delivered", body = crate::envelope::Success<Vec<Object>>),
        crate::schemas::CommonErrors,
    ))]
pub async fn events<S: Store>(
    auth: Authenticated<S>,
    params: web::Query<EventParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = limit(params.limit)?;
    let after = match params.after.as_deref() {
        None | Some("") => None,
        Some(text) => Some(events_after(text).ok_or_else(|| {
            ApiError::invalid_field(
                "after",
                "must be a cursor from nextCursor or an event id (evt_ and 32 hex digits)",
            )
        })?),
    };
    let types: Vec<String> = params.event_type.iter().cloned().collect();
    if let Some(kind) = types.first()
        && !domain::webhook::event_types().contains(kind)
    {
        return Err(ApiError::invalid_field(
            "type",
            "must be an event type, e.g. contact.created",
        ));
    }
    let page = list_events(auth.uow, &auth.principal, after, &types, u32::from(limit)).await?;
    let next = page
        .has_more
        .then(|| page.last_position.map(|p| p.to_string()))
        .flatten();
    let events = page
        .events
        .iter()
        .map(crate::events::EventResponse::new)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::internal(&e))?;
    Ok(list_response(events, limit, next))
}

/// This module's operations in the OpenAPI document, next to the routes that serve them
/// (`openapi`'s test checks the two lists agree).
#[derive(OpenApi)]
#[openapi(paths(
    list, create, get, patch, delete, rotate, test, deliveries, delivery, retry, events
))]
pub struct ApiDoc;

/// Registers the routes (under `/v1`).
pub fn configure<S: Store>(routes: &mut Routes<'_>) {
    routes
        .resource("/webhooks", |r| r.get(list::<S>).post(create::<S>))
        .resource("/webhooks/{id}", |r| {
            r.get(get::<S>).patch(patch::<S>).delete(delete::<S>)
        })
        .resource("/webhooks/{id}/rotate-secret", |r| r.post(rotate::<S>))
        .resource("/webhooks/{id}/test", |r| r.post(test::<S>))
        .resource("/webhooks/{id}/deliveries", |r| r.get(deliveries::<S>))
        .resource("/webhooks/{id}/deliveries/{deliveryId}", |r| {
            r.get(delivery::<S>)
        })
        .resource("/webhooks/{id}/deliveries/{deliveryId}/retry", |r| {
            r.post(retry::<S>)
        })
        .resource("/events", |r| r.get(events::<S>));
}
