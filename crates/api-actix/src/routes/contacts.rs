//! `/v1/contacts`: list, create, get, replace, patch, delete.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use app::auth::CredentialKind;
use app::contacts::{
    ContactChange, RememberedCreate, create_contact, delete_contact, get_contact,
    get_contact_with_api_key, list_contacts, list_contacts_as_remembered, remembered_reader,
    update_contact,
};
use domain::FieldErrors;
use domain::contact::{
    Contact, ContactDraft, ContactInput, ContactPage, ContactPatch, ContactQuery, ContactSortField,
    DEFAULT_CONTACT_SORT, Email,
};
use domain::ids::{CompanyId, ContactId, UserId};
use domain::list::{Limit, Sort};
use garde::Validate;
use ports::{ContactCreateByApiKey, ContactListByApiKey, ContactReadByApiKey, TenantStore};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::Routes;
use super::common::{
    DeletedResponse, filter_text, if_match, parse_time, present, versioned_response,
};
use actix_web::FromRequest as _;
use actix_web::dev::Payload;

use crate::ApiState;
use crate::auth::{Authenticated, admit};
use crate::envelope::{Pagination, respond, respond_with};
use crate::error::{ApiError, unauthenticated};
use crate::request_state::{RequestCredential, RequestState, add_database_time};
use crate::validation::field_errors;

/// A contact as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactResponse {
    /// Its id.
    pub id: Uuid,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// E-mail address, lower-cased, unique in the tenant.
    pub email: Option<String>,
    /// Phone number as typed.
    pub phone: Option<String>,
    /// Job title.
    pub title: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Flat custom fields.
    #[schema(value_type = Object)]
    pub custom_fields: serde_json::Value,
    /// The owning member's user id.
    pub owner_id: Option<Uuid>,
    /// The company's id.
    pub company_id: Option<Uuid>,
    /// Creation time (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Last change (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// Grows by one with every change; the ETag is this number, quoted.
    pub version: i64,
}

impl From<&Contact> for ContactResponse {
    fn from(contact: &Contact) -> Self {
        let fields = &contact.fields;
        Self {
            id: contact.id.as_uuid(),
            first_name: fields.first_name.clone(),
            last_name: fields.last_name.clone(),
            email: fields.email.as_ref().map(|e| e.as_str().to_owned()),
            phone: fields.phone.as_ref().map(|p| p.as_str().to_owned()),
            title: fields.title.clone(),
            tags: fields.tags.as_slice().to_vec(),
            custom_fields: fields.custom_fields.to_value(),
            owner_id: fields.owner_id.map(|id| id.as_uuid()),
            company_id: fields.company_id.map(|id| id.as_uuid()),
            created_at: contact.created_at,
            updated_at: contact.updated_at,
            version: contact.version,
        }
    }
}

/// The writable fields of a contact: the body of `POST` and `PUT` (on `PUT`, a field left
/// out is cleared). `null` means no value.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactBody {
    /// Given name (blank means none).
    #[garde(length(chars, max = 100))]
    #[schema(
        max_length = 100,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$",
        example = "Ada"
    )]
    pub first_name: Option<String>,
    /// Family name (blank means none).
    #[garde(length(chars, max = 100))]
    #[schema(
        max_length = 100,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$",
        example = "Lovelace"
    )]
    pub last_name: Option<String>,
    /// E-mail address, unique in the tenant (case-insensitively).
    #[garde(length(chars, max = 254))]
    #[schema(
        max_length = 254,
        pattern = "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$",
        example = "ada@example.com"
    )]
    pub email: Option<String>,
    /// Phone number as typed: at least 3 digits, with spaces and `+ - ( ) . / x ext`.
    #[garde(length(chars, max = 32))]
    #[schema(
        max_length = 32,
        pattern = "^[ +()./xet-]*([0-9][ +()./xet-]*){3,}$",
        example = "+44 20 7946 0000"
    )]
    pub phone: Option<String>,
    /// Job title (blank means none).
    #[garde(length(chars, max = 200))]
    #[schema(
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$",
        example = "Analyst"
    )]
    pub title: Option<String>,
    /// Tags, de-duplicated case-insensitively.
    #[garde(length(max = 50), inner(inner(length(chars, max = 50))))]
    #[schema(schema_with = crate::schemas::tags)]
    pub tags: Option<Vec<String>>,
    /// Flat custom fields: at most 50 keys of 1-50 characters; values are strings, numbers,
    /// booleans or null.
    #[garde(skip)]
    #[schema(schema_with = crate::schemas::custom_fields)]
    pub custom_fields: Option<serde_json::Value>,
    /// The owning member's user id (must be a member of the tenant).
    #[garde(skip)]
    pub owner_id: Option<Uuid>,
    /// The company's id.
    #[garde(skip)]
    pub company_id: Option<Uuid>,
}

impl From<ContactBody> for ContactInput {
    fn from(body: ContactBody) -> Self {
        Self {
            first_name: body.first_name,
            last_name: body.last_name,
            email: body.email,
            phone: body.phone,
            title: body.title,
            tags: body.tags,
            custom_fields: body.custom_fields,
            owner_id: body.owner_id.map(UserId::from_uuid),
            company_id: body.company_id.map(CompanyId::from_uuid),
        }
    }
}

/// A JSON merge-patch (RFC 7396) of a contact: keys left out keep their value, `null`
/// clears. Sent as `application/json` or `application/merge-patch+json`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(clippy::option_option)]
pub struct ContactPatchBody {
    /// Given name.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 100, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub first_name: Option<Option<String>>,
    /// Family name.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 100, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub last_name: Option<Option<String>>,
    /// E-mail address.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 254, pattern = "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")]
    pub email: Option<Option<String>>,
    /// Phone number.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 32, pattern = "^[ +()./xet-]*([0-9][ +()./xet-]*){3,}$")]
    pub phone: Option<Option<String>>,
    /// Job title.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub title: Option<Option<String>>,
    /// Tags (replaces the whole list).
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = crate::schemas::tags)]
    pub tags: Option<Option<Vec<String>>>,
    /// Custom fields (replaces the whole object).
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = crate::schemas::custom_fields)]
    pub custom_fields: Option<Option<serde_json::Value>>,
    /// Owning member.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub owner_id: Option<Option<Uuid>>,
    /// Company.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub company_id: Option<Option<Uuid>>,
}

impl From<ContactPatchBody> for ContactPatch {
    fn from(body: ContactPatchBody) -> Self {
        Self {
            first_name: body.first_name,
            last_name: body.last_name,
            email: body.email,
            phone: body.phone,
            title: body.title,
            tags: body.tags,
            custom_fields: body.custom_fields,
            owner_id: body.owner_id.map(|o| o.map(UserId::from_uuid)),
            company_id: body.company_id.map(|o| o.map(CompanyId::from_uuid)),
        }
    }
}

/// Sort orders of a contact list.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
pub enum ContactSort {
    /// Oldest first.
    #[serde(rename = "createdAt")]
    CreatedAt,
    /// Newest first (the default).
    #[serde(rename = "-createdAt")]
    CreatedAtDesc,
    /// Least recently changed first.
    #[serde(rename = "updatedAt")]
    UpdatedAt,
    /// Most recently changed first.
    #[serde(rename = "-updatedAt")]
    UpdatedAtDesc,
    /// By family name, A-Z (none first).
    #[serde(rename = "lastName")]
    LastName,
    /// By family name, Z-A.
    #[serde(rename = "-lastName")]
    LastNameDesc,
    /// By e-mail, A-Z (none first).
    #[serde(rename = "email")]
    Email,
    /// By e-mail, Z-A.
    #[serde(rename = "-email")]
    EmailDesc,
}

impl From<ContactSort> for Sort<ContactSortField> {
    fn from(sort: ContactSort) -> Self {
        let (field, descending) = match sort {
            ContactSort::CreatedAt => (ContactSortField::CreatedAt, false),
            ContactSort::CreatedAtDesc => (ContactSortField::CreatedAt, true),
            ContactSort::UpdatedAt => (ContactSortField::UpdatedAt, false),
            ContactSort::UpdatedAtDesc => (ContactSortField::UpdatedAt, true),
            ContactSort::LastName => (ContactSortField::LastName, false),
            ContactSort::LastNameDesc => (ContactSortField::LastName, true),
            ContactSort::Email => (ContactSortField::Email, false),
            ContactSort::EmailDesc => (ContactSortField::Email, true),
        };
        Self { field, descending }
    }
}

/// Query parameters of `GET /v1/contacts`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListContactsParams {
    /// Page size, 1-100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    #[param(max_length = 1024)]
    pub cursor: Option<String>,
    /// Order (default `-createdAt`).
    #[param(inline)]
    pub sort: Option<ContactSort>,
    /// Case-insensitive search in names, e-mail and phone.
    #[param(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub q: Option<String>,
    /// Exact e-mail address (case-insensitive).
    #[param(
        max_length = 254,
        pattern = "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
    )]
    pub email: Option<String>,
    /// Contacts of this company.
    pub company_id: Option<Uuid>,
    /// Contacts owned by this member.
    pub owner_id: Option<Uuid>,
    /// Contacts carrying this tag (exact).
    #[param(max_length = 50, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub tag: Option<String>,
    /// Created strictly after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub created_after: Option<String>,
    /// Changed strictly after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub updated_after: Option<String>,
}

impl ListContactsParams {
    fn into_query(self) -> Result<ContactQuery, ApiError> {
        let mut errors = FieldErrors::new();
        let limit = errors
            .check("limit", Limit::new(self.limit))
            .unwrap_or_default();
        let (cursor, sort) = crate::cursor::resolve::<ContactSortField>(
            self.cursor.as_deref(),
            self.sort.map(Sort::from),
            &mut errors,
        );
        let q = filter_text("q", self.q, 200, &mut errors);
        let tag = filter_text("tag", self.tag, 50, &mut errors);
        let email = self
            .email
            .and_then(|raw| errors.check("email", Email::parse(&raw)));
        let created_after = parse_time("createdAfter", self.created_after.as_deref(), &mut errors);
        let updated_after = parse_time("updatedAfter", self.updated_after.as_deref(), &mut errors);
        if !errors.is_empty() {
            return Err(ApiError::validation(&errors));
        }
        Ok(ContactQuery {
            limit,
            sort: sort.unwrap_or(DEFAULT_CONTACT_SORT),
            cursor,
            q,
            email,
            company_id: self.company_id.map(CompanyId::from_uuid),
            owner_id: self.owner_id.map(UserId::from_uuid),
            tag,
            created_after,
            updated_after,
        })
    }
}

/// A single-contact response with its `ETag`.
fn contact_response(status: StatusCode, contact: &Contact) -> HttpResponse {
    versioned_response(
        status,
        &contact.etag(),
        "/v1/contacts",
        contact.id,
        ContactResponse::from(contact),
    )
}

/// garde's checks of the body, then the domain's, reported together: a client fixes every
/// field in one round trip. Returns the domain input when everything passed garde (the
/// use case then runs the domain's checks).
///
/// Unlike [`super::common::check_body`], which the other resources use, a garde
/// failure here also lists what `ContactDraft` refuses: a contact's garde limits and its
/// domain rules (e-mail, phone, tags, custom fields) cover the same fields, and clients
/// and tests rely on seeing both in one answer. Making every resource do this would change
/// their 400 details, which this restructuring does not.
fn garde_and_domain_checked(body: ContactBody) -> Result<ContactInput, ApiError> {
    let garde = body.validate().err();
    let input = ContactInput::from(body);
    let Some(report) = garde else {
        return Ok(input);
    };
    let mut fields = field_errors(&report);
    if let Err(domain) = ContactDraft::new(input) {
        for (field, messages) in domain.fields() {
            let prefix = format!("{field}[");
            let already = fields
                .fields()
                .keys()
                .any(|f| f == field || f.starts_with(&prefix));
            if !already {
                for message in messages {
                    fields.add(field.clone(), message.clone());
                }
            }
        }
    }
    Err(ApiError::validation(&fields))
}

/// List contacts.
#[utoipa::path(get, path = "/v1/contacts", tag = "contacts", params(ListContactsParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of contacts", body = crate::envelope::Success<Vec<ContactResponse>>),
        crate::schemas::CommonErrors,
    ))]
pub async fn list<S: TenantStore + ContactListByApiKey>(
    req: HttpRequest,
    state: web::Data<ApiState<S>>,
) -> Result<HttpResponse, actix_web::Error> {
    let query = match web::Query::<ListContactsParams>::extract(&req).await {
        Ok(params) => params.into_inner().into_query().ok(),
        Err(_) => None,
    };
    if let Some(query) = &query
        && let Some(page) = list_in_one_statement(&req, &state, query).await?
    {
        return Ok(page_response(query, &page));
    }
    // Everything else takes the unit of work, which authenticates the credential as it is
    // now before answering anything (a malformed query is 400 only for a valid key).
    let auth = Authenticated::<S>::from_request(&req, &mut Payload::None).await?;
    let params = web::Query::<ListContactsParams>::extract(&req).await?;
    let query = params.into_inner().into_query()?;
    let page = list_contacts(auth.uow, &auth.principal, query.clone())
        .await
        .map_err(ApiError::from)?;
    Ok(page_response(&query, &page))
}

/// A page of contacts in the envelope, with its pagination.
fn page_response(query: &ContactQuery, page: &ContactPage) -> HttpResponse {
    let data: Vec<ContactResponse> = page.items.iter().map(ContactResponse::from).collect();
    let pagination = Pagination {
        limit: query.limit.get(),
        has_more: page.next.is_some(),
        next_cursor: page.next.as_ref().map(crate::cursor::encode),
    };
    respond_with(
        HttpResponseBuilder::new(StatusCode::OK),
        data,
        Some(pagination),
    )
}

/// The list in one statement (SPEC §9) for an API key this process checked a moment ago
/// with `contacts:read`: counted against that caller's limits first, then one statement
/// checks the key again and reads the page only if it is still exactly that caller.
/// `Ok(None)`: take the unit of work.
async fn list_in_one_statement<S: ContactListByApiKey>(
    req: &HttpRequest,
    state: &ApiState<S>,
    query: &ContactQuery,
) -> Result<Option<ContactPage>, ApiError> {
    let request_state = RequestState::of(req);
    let RequestCredential::Recognised(credential) = request_state.credential(req.headers()) else {
        return Ok(None);
    };
    if credential.kind != CredentialKind::ApiKey {
        return Ok(None);
    }
    let Some(caller) = remembered_reader(&state.store, &credential.hash) else {
        return Ok(None);
    };
    admit(&request_state, state, &credential, &caller).await?;
    // The statement runs in a task of its own (see the adapter): its time is taken here.
    let started = std::time::Instant::now();
    let page = list_contacts_as_remembered(&state.store, &credential.hash, &caller, query).await;
    add_database_time(started.elapsed());
    Ok(page?)
}

/// Create a contact.
#[utoipa::path(post, path = "/v1/contacts", tag = "contacts", request_body = ContactBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = crate::envelope::Success<ContactResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn create<S: TenantStore + ContactCreateByApiKey>(
    req: HttpRequest,
    body: web::Json<ContactBody>,
    state: web::Data<ApiState<S>>,
) -> Result<HttpResponse, actix_web::Error> {
    let checked = garde_and_domain_checked(body.into_inner());
    if let Ok(input) = &checked
        && let Some(contact) = create_in_one_statement(&req, &state, input).await?
    {
        return Ok(contact_response(StatusCode::CREATED, &contact));
    }
    // Everything else takes the unit of work, which authenticates the credential as it is
    // now before answering anything (an invalid body is 400 only for a valid key).
    let auth = Authenticated::<S>::from_request(&req, &mut Payload::None).await?;
    let contact = create_contact(auth.uow, &auth.principal, checked?)
        .await
        .map_err(ApiError::from)?;
    Ok(contact_response(StatusCode::CREATED, &contact))
}

/// The create as one statement (SPEC §9), for an API key this process checked a moment
/// ago, remembered as allowed to write, with a valid body and no `Idempotency-Key` (an
/// idempotent request stores its answer in the same transaction, so it takes the unit of
/// work). The limits count the remembered caller before anything is written; the
/// statement checks the key again and writes only if it is still exactly that caller.
/// `Ok(None)`: take the unit of work (the limits may then count this request twice, which
/// happens once per change of the key).
async fn create_in_one_statement<S: ContactCreateByApiKey>(
    req: &HttpRequest,
    state: &ApiState<S>,
    input: &ContactInput,
) -> Result<Option<Contact>, ApiError> {
    let request_state = RequestState::of(req);
    let RequestCredential::Recognised(credential) = request_state.credential(req.headers()) else {
        return Ok(None);
    };
    if credential.kind != CredentialKind::ApiKey || request_state.idempotent_request().is_some() {
        return Ok(None);
    }
    let Some(create) = RememberedCreate::prepare(&state.store, &credential.hash, input) else {
        return Ok(None);
    };
    admit(&request_state, state, &credential, create.caller()).await?;
    // The statement runs in a task of its own (see the adapter): its time is taken here.
    let started = std::time::Instant::now();
    let created = create.run(&state.store, &credential.hash).await;
    add_database_time(started.elapsed());
    Ok(created?)
}

/// Fetch a contact.
#[utoipa::path(get, path = "/v1/contacts/{id}", tag = "contacts",
    params(("id" = Uuid, Path, description = "Contact id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The contact", body = crate::envelope::Success<ContactResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn get<S: TenantStore + ContactReadByApiKey>(
    req: HttpRequest,
    state: web::Data<ApiState<S>>,
) -> Result<HttpResponse, actix_web::Error> {
    let request_state = RequestState::of(&req);
    match request_state.credential(req.headers()) {
        // An API key: one statement authenticates, scopes and reads (SPEC §9).
        RequestCredential::Recognised(credential) if credential.kind == CredentialKind::ApiKey => {
            let id = match path_id(&req).await {
                Ok(id) => ContactId::from_uuid(*id),
                Err(malformed) => {
                    // A malformed id is answered after authentication, as on every route.
                    Authenticated::<S>::from_request(&req, &mut Payload::None).await?;
                    return Err(malformed);
                }
            };
            // The statement runs to completion in a task of its own (see the adapter), out
            // of reach of the statement observer's request scope: its time is taken here.
            let started = std::time::Instant::now();
            let read = get_contact_with_api_key(&state.store, &credential.hash, id).await;
            add_database_time(started.elapsed());
            let Some((principal, outcome)) = read.map_err(ApiError::from)? else {
                return Err(unauthenticated().into());
            };
            // Counted like any authenticated request, before the answer leaves.
            admit(&request_state, &state, &credential, &principal).await?;
            let contact = outcome.map_err(ApiError::from)?;
            Ok(contact_response(StatusCode::OK, &contact))
        }
        // A session (or no credential: the extractor answers 401) takes the unit of work.
        _ => {
            let auth = Authenticated::<S>::from_request(&req, &mut Payload::None).await?;
            let id = ContactId::from_uuid(*path_id(&req).await?);
            let contact = get_contact(auth.uow, &auth.principal, id)
                .await
                .map_err(ApiError::from)?;
            Ok(contact_response(StatusCode::OK, &contact))
        }
    }
}

/// The `{id}` of the path, extracted after authentication as a `web::Path<Uuid>` argument
/// would be (the configured 400 for a malformed id), so a request without credentials is
/// still 401.
async fn path_id(req: &HttpRequest) -> Result<web::Path<Uuid>, actix_web::Error> {
    web::Path::<Uuid>::extract(req).await
}

/// Replace a contact: fields left out are cleared.
#[utoipa::path(put, path = "/v1/contacts/{id}", tag = "contacts", request_body = ContactBody,
    params(("id" = Uuid, Path, description = "Contact id"),
           ("If-Match" = Option<String>, Header, description = "ETag the change is based on; 412 when stale")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The replaced contact", body = crate::envelope::Success<ContactResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn replace<S: TenantStore>(
    req: HttpRequest,
    body: web::Json<ContactBody>,
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let input = garde_and_domain_checked(body.into_inner())?;
    let precondition = if_match(&req);
    let change = ContactChange::Replace(input);
    let contact = update_contact(
        auth.uow,
        &auth.principal,
        ContactId::from_uuid(*id),
        precondition.as_ref(),
        change,
    )
    .await?;
    Ok(contact_response(StatusCode::OK, &contact))
}

/// Change some fields of a contact (JSON merge-patch).
#[utoipa::path(patch, path = "/v1/contacts/{id}", tag = "contacts", request_body = ContactPatchBody,
    params(("id" = Uuid, Path, description = "Contact id"),
           ("If-Match" = Option<String>, Header, description = "ETag the change is based on; 412 when stale")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The changed contact", body = crate::envelope::Success<ContactResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn patch<S: TenantStore>(
    req: HttpRequest,
    body: web::Json<ContactPatchBody>,
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let precondition = if_match(&req);
    let change = ContactChange::Patch(body.into_inner().into());
    let contact = update_contact(
        auth.uow,
        &auth.principal,
        ContactId::from_uuid(*id),
        precondition.as_ref(),
        change,
    )
    .await?;
    Ok(contact_response(StatusCode::OK, &contact))
}

/// Delete a contact.
#[utoipa::path(delete, path = "/v1/contacts/{id}", tag = "contacts",
    params(("id" = Uuid, Path, description = "Contact id"),
           ("If-Match" = Option<String>, Header, description = "ETag the deletion is based on; 412 when stale")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deleted", body = crate::envelope::Success<DeletedResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn delete<S: TenantStore>(
    req: HttpRequest,
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let precondition = if_match(&req);
    delete_contact(
        auth.uow,
        &auth.principal,
        ContactId::from_uuid(*id),
        precondition.as_ref(),
    )
    .await?;
    Ok(respond(
        StatusCode::OK,
        DeletedResponse {
            id: *id,
            deleted: true,
        },
    ))
}

/// This module's operations in the OpenAPI document, next to the routes that serve them
/// (`openapi`'s test checks the two lists agree).
#[derive(OpenApi)]
#[openapi(paths(list, create, get, replace, patch, delete))]
pub struct ApiDoc;

/// Registers the contact routes (under `/v1`).
pub fn configure<
    S: TenantStore + ContactReadByApiKey + ContactCreateByApiKey + ContactListByApiKey,
>(
    routes: &mut Routes<'_>,
) {
    routes
        .resource("/contacts", |r| r.get(list::<S>).post(create::<S>))
        .resource("/contacts/{id}", |r| {
            r.get(get::<S>)
                .put(replace::<S>)
                .patch(patch::<S>)
                .delete(delete::<S>)
        });
}
