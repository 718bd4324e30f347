//! `/v1/companies`: list, create, get, replace, patch, delete, and a company's contacts.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use app::companies::{
    CompanyChange, company_contacts, create_company, delete_company, get_company, list_companies,
    update_company,
};
use domain::FieldErrors;
use domain::company::{
    Company, CompanyInput, CompanyPatch, CompanyQuery, CompanySortField, Domain,
};
use domain::contact::ContactQuery;
use domain::ids::CompanyId;
use domain::list::{Limit, Sort};
use garde::Validate;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::Routes;
use super::common::{
    DeletedResponse, check_body, filter_text, if_match, parse_time, present, versioned_response,
};
use super::contacts::ContactResponse;
use crate::Store;
use crate::auth::Authenticated;
use crate::envelope::{Pagination, respond, respond_with};
use crate::error::ApiError;
use crate::validation::field_errors;

/// A postal address; every part optional.
#[derive(Debug, Default, Deserialize, Serialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddressDto {
    /// Street and number.
    #[garde(length(chars, max = 200))]
    #[schema(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub street: Option<String>,
    /// City.
    #[garde(length(chars, max = 200))]
    #[schema(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub city: Option<String>,
    /// Region, state or county.
    #[garde(length(chars, max = 200))]
    #[schema(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub region: Option<String>,
    /// Postal code.
    #[garde(length(chars, max = 200))]
    #[schema(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub postal_code: Option<String>,
    /// Country.
    #[garde(length(chars, max = 200))]
    #[schema(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub country: Option<String>,
}

impl AddressDto {
    fn parts(self) -> [Option<String>; 5] {
        [
            self.street,
            self.city,
            self.region,
            self.postal_code,
            self.country,
        ]
    }
}

/// Head-count bands.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
pub enum CompanySizeDto {
    /// 1-10 people.
    #[serde(rename = "1-10")]
    Micro,
    /// 11-50.
    #[serde(rename = "11-50")]
    Small,
    /// 51-200.
    #[serde(rename = "51-200")]
    Medium,
    /// 201-1000.
    #[serde(rename = "201-1000")]
    Large,
    /// 1001-5000.
    #[serde(rename = "1001-5000")]
    Enterprise,
    /// More than 5000.
    #[serde(rename = "5000+")]
    Huge,
}

impl CompanySizeDto {
    fn as_str(self) -> &'static str {
        match self {
            Self::Micro => "1-10",
            Self::Small => "11-50",
            Self::Medium => "51-200",
            Self::Large => "201-1000",
            Self::Enterprise => "1001-5000",
            Self::Huge => "5000+",
        }
    }
}

/// A company as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompanyResponse {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Web domain, normalised (lower-case, no `www.`), unique in the tenant.
    pub domain: Option<String>,
    /// Industry.
    pub industry: Option<String>,
    /// Head-count band.
    pub size: Option<String>,
    /// Address.
    #[schema(value_type = Object)]
    pub address: serde_json::Value,
    /// Tags.
    pub tags: Vec<String>,
    /// Flat custom fields.
    #[schema(value_type = Object)]
    pub custom_fields: serde_json::Value,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// Version; the ETag is this number, quoted.
    pub version: i64,
}

impl From<&Company> for CompanyResponse {
    fn from(company: &Company) -> Self {
        let f = &company.fields;
        Self {
            id: company.id.as_uuid(),
            name: f.name.clone(),
            domain: f.domain.as_ref().map(|d| d.as_str().to_owned()),
            industry: f.industry.clone(),
            size: f.size.map(|s| s.as_str().to_owned()),
            address: f.address.to_value(),
            tags: f.tags.as_slice().to_vec(),
            custom_fields: f.custom_fields.to_value(),
            created_at: company.created_at,
            updated_at: company.updated_at,
            version: company.version,
        }
    }
}

/// The body of `POST` and `PUT` (on `PUT`, fields left out are cleared).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompanyBody {
    /// Name (required).
    #[garde(length(chars, min = 1, max = 200))]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$",
        example = "Acme Ltd"
    )]
    pub name: String,
    /// Web domain: a host name such as `acme.example` (no scheme or path).
    #[garde(length(chars, max = 253))]
    #[schema(
        max_length = 253,
        pattern = "^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$",
        example = "acme.example"
    )]
    pub domain: Option<String>,
    /// Industry.
    #[garde(length(chars, max = 100))]
    #[schema(
        max_length = 100,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$",
        example = "Manufacturing"
    )]
    pub industry: Option<String>,
    /// Head-count band.
    #[garde(skip)]
    pub size: Option<CompanySizeDto>,
    /// Address.
    #[garde(dive)]
    pub address: Option<AddressDto>,
    /// Tags, de-duplicated case-insensitively.
    #[garde(length(max = 50), inner(inner(length(chars, max = 50))))]
    #[schema(schema_with = crate::schemas::tags)]
    pub tags: Option<Vec<String>>,
    /// Flat custom fields.
    #[garde(skip)]
    #[schema(schema_with = crate::schemas::custom_fields)]
    pub custom_fields: Option<serde_json::Value>,
}

impl From<CompanyBody> for CompanyInput {
    fn from(body: CompanyBody) -> Self {
        Self {
            name: Some(body.name),
            domain: body.domain,
            industry: body.industry,
            size: body.size.map(|s| s.as_str().to_owned()),
            address: body.address.map(AddressDto::parts),
            tags: body.tags,
            custom_fields: body.custom_fields,
        }
    }
}

/// A JSON merge-patch of a company.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(clippy::option_option)]
pub struct CompanyPatchBody {
    /// Name (cannot be cleared: `null` is refused).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, required = false, min_length = 1, max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub name: Option<Option<String>>,
    /// Domain.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 253, pattern = "^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")]
    pub domain: Option<Option<String>>,
    /// Industry.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 100, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub industry: Option<Option<String>>,
    /// Size.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<CompanySizeDto>)]
    pub size: Option<Option<CompanySizeDto>>,
    /// Address (replaced whole).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<AddressDto>)]
    pub address: Option<Option<AddressDto>>,
    /// Tags (replaced whole).
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = crate::schemas::tags)]
    pub tags: Option<Option<Vec<String>>>,
    /// Custom fields (replaced whole).
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = crate::schemas::custom_fields)]
    pub custom_fields: Option<Option<serde_json::Value>>,
}

impl CompanyPatchBody {
    fn into_patch(self) -> Result<CompanyPatch, ApiError> {
        if let Some(Some(address)) = &self.address {
            address
                .validate()
                .map_err(|report| ApiError::validation(&field_errors(&report)))?;
        }
        Ok(CompanyPatch {
            name: self.name,
            domain: self.domain,
            industry: self.industry,
            size: self.size.map(|o| o.map(|s| s.as_str().to_owned())),
            address: self.address.map(|o| o.map(AddressDto::parts)),
            tags: self.tags,
            custom_fields: self.custom_fields,
        })
    }
}

/// Sort orders of a company list.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
pub enum CompanySort {
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
    /// By name, A-Z.
    #[serde(rename = "name")]
    Name,
    /// By name, Z-A.
    #[serde(rename = "-name")]
    NameDesc,
    /// By domain, A-Z (none first).
    #[serde(rename = "domain")]
    Domain,
    /// By domain, Z-A.
    #[serde(rename = "-domain")]
    DomainDesc,
}

impl From<CompanySort> for Sort<CompanySortField> {
    fn from(sort: CompanySort) -> Self {
        let (field, descending) = match sort {
            CompanySort::CreatedAt => (CompanySortField::CreatedAt, false),
            CompanySort::CreatedAtDesc => (CompanySortField::CreatedAt, true),
            CompanySort::UpdatedAt => (CompanySortField::UpdatedAt, false),
            CompanySort::UpdatedAtDesc => (CompanySortField::UpdatedAt, true),
            CompanySort::Name => (CompanySortField::Name, false),
            CompanySort::NameDesc => (CompanySortField::Name, true),
            CompanySort::Domain => (CompanySortField::Domain, false),
            CompanySort::DomainDesc => (CompanySortField::Domain, true),
        };
        Self { field, descending }
    }
}

/// Query parameters of `GET /v1/companies`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListCompaniesParams {
    /// Page size, 1-100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    #[param(max_length = 1024)]
    pub cursor: Option<String>,
    /// Order (default `-createdAt`).
    #[param(inline)]
    pub sort: Option<CompanySort>,
    /// Case-insensitive search in name and domain.
    #[param(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub q: Option<String>,
    /// Exact domain (normalised like stored ones).
    #[param(
        max_length = 253,
        pattern = "^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
    )]
    pub domain: Option<String>,
    /// Carrying this tag.
    #[param(max_length = 50, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub tag: Option<String>,
    /// Industry, exact.
    #[param(max_length = 100, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub industry: Option<String>,
    /// Created strictly after (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub created_after: Option<String>,
    /// Changed strictly after (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub updated_after: Option<String>,
}

impl ListCompaniesParams {
    fn into_query(self) -> Result<CompanyQuery, ApiError> {
        let mut errors = FieldErrors::new();
        let limit = errors
            .check("limit", Limit::new(self.limit))
            .unwrap_or_default();
        let (cursor, sort) = crate::cursor::resolve::<CompanySortField>(
            self.cursor.as_deref(),
            self.sort.map(Sort::from),
            &mut errors,
        );
        let q = filter_text("q", self.q, 200, &mut errors);
        let tag = filter_text("tag", self.tag, 50, &mut errors);
        let industry = filter_text("industry", self.industry, 100, &mut errors);
        let domain = self
            .domain
            .and_then(|raw| errors.check("domain", Domain::parse(&raw)));
        let created_after = parse_time("createdAfter", self.created_after.as_deref(), &mut errors);
        let updated_after = parse_time("updatedAfter", self.updated_after.as_deref(), &mut errors);
        if !errors.is_empty() {
            return Err(ApiError::validation(&errors));
        }
        let default = CompanyQuery::default();
        Ok(CompanyQuery {
            limit,
            sort: sort.unwrap_or(default.sort),
            cursor,
            q,
            domain,
            tag,
            industry,
            created_after,
            updated_after,
        })
    }
}

/// Query parameters of `GET /v1/companies/{id}/contacts`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CompanyContactsParams {
    /// Page size, 1-100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    #[param(max_length = 1024)]
    pub cursor: Option<String>,
}

fn company_response(status: StatusCode, company: &Company) -> HttpResponse {
    versioned_response(
        status,
        &company.etag(),
        "/v1/companies",
        company.id,
        CompanyResponse::from(company),
    )
}

/// List companies.
#[utoipa::path(get, path = "/v1/companies", tag = "companies", params(ListCompaniesParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of companies", body = crate::envelope::Success<Vec<CompanyResponse>>),
        crate::schemas::CommonErrors,
    ))]
pub async fn list<S: Store>(
    auth: Authenticated<S>,
    params: web::Query<ListCompaniesParams>,
) -> Result<HttpResponse, ApiError> {
    let query = params.into_inner().into_query()?;
    let limit = query.limit.get();
    let page = list_companies(auth.uow, &auth.principal, query).await?;
    let data: Vec<CompanyResponse> = page.items.iter().map(CompanyResponse::from).collect();
    let pagination = Pagination {
        limit,
        has_more: page.next.is_some(),
        next_cursor: page.next.as_ref().map(crate::cursor::encode),
    };
    Ok(respond_with(
        HttpResponseBuilder::new(StatusCode::OK),
        data,
        Some(pagination),
    ))
}

/// Create a company.
#[utoipa::path(post, path = "/v1/companies", tag = "companies", request_body = CompanyBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = crate::envelope::Success<CompanyResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn create<S: Store>(
    body: web::Json<CompanyBody>,
    auth: Authenticated<S>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_body(&body)?;
    let input = CompanyInput::from(body);
    let company = create_company(auth.uow, &auth.principal, input).await?;
    Ok(company_response(StatusCode::CREATED, &company))
}

/// Fetch a company.
#[utoipa::path(get, path = "/v1/companies/{id}", tag = "companies",
    params(("id" = Uuid, Path, description = "Company id")), security(("bearer" = [])),
    responses(
        (status = 200, description = "The company", body = crate::envelope::Success<CompanyResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn get<S: Store>(
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let company = get_company(auth.uow, &auth.principal, CompanyId::from_uuid(*id)).await?;
    Ok(company_response(StatusCode::OK, &company))
}

/// Replace a company: fields left out are cleared.
#[utoipa::path(put, path = "/v1/companies/{id}", tag = "companies", request_body = CompanyBody,
    params(("id" = Uuid, Path, description = "Company id"),
           ("If-Match" = Option<String>, Header, description = "ETag the change is based on; 412 when stale")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The replaced company", body = crate::envelope::Success<CompanyResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn replace<S: Store>(
    req: HttpRequest,
    body: web::Json<CompanyBody>,
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_body(&body)?;
    let input = CompanyInput::from(body);
    let precondition = if_match(&req);
    let company = update_company(
        auth.uow,
        &auth.principal,
        CompanyId::from_uuid(*id),
        precondition.as_ref(),
        CompanyChange::Replace(input),
    )
    .await?;
    Ok(company_response(StatusCode::OK, &company))
}

/// Change some fields of a company (JSON merge-patch).
#[utoipa::path(patch, path = "/v1/companies/{id}", tag = "companies", request_body = CompanyPatchBody,
    params(("id" = Uuid, Path, description = "Company id"),
           ("If-Match" = Option<String>, Header, description = "ETag the change is based on; 412 when stale")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The changed company", body = crate::envelope::Success<CompanyResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn patch<S: Store>(
    req: HttpRequest,
    body: web::Json<CompanyPatchBody>,
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let patch = body.into_inner().into_patch()?;
    let precondition = if_match(&req);
    let company = update_company(
        auth.uow,
        &auth.principal,
        CompanyId::from_uuid(*id),
        precondition.as_ref(),
        CompanyChange::Patch(patch),
    )
    .await?;
    Ok(company_response(StatusCode::OK, &company))
}

/// Delete a company. Its contacts stay, without a company.
#[utoipa::path(delete, path = "/v1/companies/{id}", tag = "companies",
    params(("id" = Uuid, Path, description = "Company id"),
           ("If-Match" = Option<String>, Header, description = "ETag the deletion is based on; 412 when stale")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deleted", body = crate::envelope::Success<DeletedResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn delete<S: Store>(
    req: HttpRequest,
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let precondition = if_match(&req);
    delete_company(
        auth.uow,
        &auth.principal,
        CompanyId::from_uuid(*id),
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

/// A company's contacts, newest first.
#[utoipa::path(get, path = "/v1/companies/{id}/contacts", tag = "companies",
    params(("id" = Uuid, Path, description = "Company id"), CompanyContactsParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the company's contacts", body = crate::envelope::Success<Vec<ContactResponse>>),
        crate::schemas::CommonErrors,
    ))]
pub async fn contacts<S: Store>(
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
    params: web::Query<CompanyContactsParams>,
) -> Result<HttpResponse, ApiError> {
    let params = params.into_inner();
    let mut errors = FieldErrors::new();
    let limit = errors
        .check("limit", Limit::new(params.limit))
        .unwrap_or_default();
    let default = ContactQuery::default();
    let cursor = match params.cursor.as_deref() {
        None => None,
        Some(raw) => match crate::cursor::decode(raw) {
            Some(cursor) if cursor.sort == default.sort => Some(cursor),
            _ => {
                errors.add("cursor", "is not a cursor of this list");
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(&errors));
    }
    let query = ContactQuery {
        limit,
        cursor,
        ..default
    };
    let page =
        company_contacts(auth.uow, &auth.principal, CompanyId::from_uuid(*id), query).await?;
    let data: Vec<ContactResponse> = page.items.iter().map(ContactResponse::from).collect();
    let pagination = Pagination {
        limit: limit.get(),
        has_more: page.next.is_some(),
        next_cursor: page.next.as_ref().map(crate::cursor::encode),
    };
    Ok(respond_with(
        HttpResponseBuilder::new(StatusCode::OK),
        data,
        Some(pagination),
    ))
}

/// This module's operations in the OpenAPI document, next to the routes that serve them
/// (`openapi`'s test checks the two lists agree).
#[derive(OpenApi)]
#[openapi(paths(list, create, get, replace, patch, delete, contacts))]
pub struct ApiDoc;

/// Registers the routes (under `/v1`).
pub fn configure<S: Store>(routes: &mut Routes<'_>) {
    routes
        .resource("/companies", |r| r.get(list::<S>).post(create::<S>))
        .resource("/companies/{id}", |r| {
            r.get(get::<S>)
                .put(replace::<S>)
                .patch(patch::<S>)
                .delete(delete::<S>)
        })
        .resource("/companies/{id}/contacts", |r| r.get(contacts::<S>));
}
