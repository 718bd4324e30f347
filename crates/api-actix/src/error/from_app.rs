//! Every use-case error as an [`ApiError`]: one exhaustive `match` per error enum (no
//! `_ =>`), so a new variant does not compile until someone decides its status and code.
//! All of them live here, so the statuses of the whole API can be read in one place.

use app::api_keys::ApiKeyError;
use app::auth::AuthError;
use app::companies::CompanyError;
use app::contacts::ContactError;
use app::identity::IdentityError;
use app::invitations::InvitationError;
use app::leads::CrmError;
use app::members::MemberError;
use app::pipelines::PipelineError;
use app::qr::QrError;
use app::webhooks::WebhookError;
use ports::RepoError;
use serde_json::json;

use super::{ApiError, ErrorCode, unauthenticated};
use crate::request_id;

impl From<RepoError> for ApiError {
    fn from(error: RepoError) -> Self {
        match error {
            RepoError::Unavailable(cause) => {
                tracing::warn!(request_id = %request_id::current(), %cause, "storage unavailable");
                Self::new(
                    ErrorCode::Unavailable,
                    "service temporarily unavailable, retry shortly",
                )
            }
            RepoError::Contention(cause) => {
                tracing::info!(request_id = %request_id::current(), %cause, "concurrent change");
                Self::new(
                    ErrorCode::Conflict,
                    "a concurrent change conflicted with this one; retry",
                )
            }
            RepoError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unauthenticated => unauthenticated(),
            AuthError::Repo(repo) => repo.into(),
        }
    }
}

impl From<ContactError> for ApiError {
    fn from(error: ContactError) -> Self {
        match error {
            ContactError::Forbidden(forbidden) => {
                Self::new(ErrorCode::Forbidden, forbidden.to_string())
                    .with_details(json!({ "requiredScope": forbidden.0.scope() }))
            }
            ContactError::Invalid(fields) => Self::validation(&fields),
            ContactError::NotFound => Self::new(ErrorCode::NotFound, "contact not found"),
            ContactError::PreconditionFailed { current_etag } => Self::new(
                ErrorCode::PreconditionFailed,
                "the contact has changed since the ETag you sent; fetch it again",
            )
            .with_details(json!({ "currentEtag": current_etag })),
            ContactError::DuplicateEmail => Self::new(
                ErrorCode::Conflict,
                "a contact with this e-mail address already exists",
            )
            .with_details(json!({ "fields": { "email": ["is already used by another contact"] } })),
            ContactError::Repo(repo) => repo.into(),
        }
    }
}

pub(crate) fn forbidden(forbidden: domain::principal::Forbidden) -> ApiError {
    ApiError::new(ErrorCode::Forbidden, forbidden.to_string())
        .with_details(json!({ "requiredScope": forbidden.0.scope() }))
}

impl From<CompanyError> for ApiError {
    fn from(error: CompanyError) -> Self {
        match error {
            CompanyError::Forbidden(f) => forbidden(f),
            CompanyError::Invalid(fields) => Self::validation(&fields),
            CompanyError::NotFound => Self::new(ErrorCode::NotFound, "company not found"),
            CompanyError::PreconditionFailed { current_etag } => Self::new(
                ErrorCode::PreconditionFailed,
                "the company has changed since the ETag you sent; fetch it again",
            )
            .with_details(json!({ "currentEtag": current_etag })),
            CompanyError::DuplicateDomain => Self::new(
                ErrorCode::Conflict,
                "a company with this domain already exists",
            )
            .with_details(
                json!({ "fields": { "domain": ["is already used by another company"] } }),
            ),
            CompanyError::Repo(repo) => repo.into(),
        }
    }
}

impl From<PipelineError> for ApiError {
    fn from(error: PipelineError) -> Self {
        match error {
            PipelineError::Forbidden(f) => forbidden(f),
            PipelineError::Invalid(fields) => Self::validation(&fields),
            PipelineError::NotFound => {
                Self::new(ErrorCode::NotFound, "pipeline or stage not found")
            }
            PipelineError::PreconditionFailed { current_etag } => Self::new(
                ErrorCode::PreconditionFailed,
                "the pipeline has changed since the ETag you sent; fetch it again",
            )
            .with_details(json!({ "currentEtag": current_etag })),
            PipelineError::DefaultPipeline => Self::new(
                ErrorCode::Conflict,
                "the default pipeline cannot be deleted",
            ),
            PipelineError::LastStage => {
                Self::new(ErrorCode::Conflict, "a pipeline keeps at least one stage")
            }
            PipelineError::InUse => Self::new(
                ErrorCode::Conflict,
                "leads are still in this stage or pipeline; move them first",
            ),
            PipelineError::Repo(repo) => repo.into(),
        }
    }
}

impl From<CrmError> for ApiError {
    fn from(error: CrmError) -> Self {
        match error {
            CrmError::Forbidden(f) => forbidden(f),
            CrmError::Invalid(fields) => Self::validation(&fields),
            CrmError::NotFound => Self::new(ErrorCode::NotFound, "not found"),
            CrmError::PreconditionFailed { current_etag } => Self::new(
                ErrorCode::PreconditionFailed,
                "the record has changed since the ETag you sent; fetch it again",
            )
            .with_details(json!({ "currentEtag": current_etag })),
            CrmError::Repo(repo) => repo.into(),
        }
    }
}

impl From<IdentityError> for ApiError {
    fn from(error: IdentityError) -> Self {
        match error {
            IdentityError::Invalid(fields) => Self::validation(&fields),
            IdentityError::EmailTaken => Self::new(
                ErrorCode::Conflict,
                "an account with this e-mail address already exists; log in instead",
            )
            .with_details(json!({ "fields": { "email": ["is already registered"] } })),
            IdentityError::InvalidCredentials => {
                Self::new(ErrorCode::Unauthenticated, "invalid e-mail or password")
            }
            IdentityError::NotAMember => {
                Self::new(ErrorCode::Forbidden, "you are not a member of this tenant")
            }
            IdentityError::SessionRequired => Self::new(
                ErrorCode::Forbidden,
                "this needs a user session (crm_st_…); API keys are revoked with DELETE /v1/api-keys/{id}",
            ),
            IdentityError::Repo(repo) => repo.into(),
        }
    }
}

impl From<ApiKeyError> for ApiError {
    fn from(error: ApiKeyError) -> Self {
        match error {
            ApiKeyError::Forbidden(f) => forbidden(f),
            ApiKeyError::Invalid(fields) => Self::validation(&fields),
            ApiKeyError::NotFound => Self::new(ErrorCode::NotFound, "API key not found"),
            ApiKeyError::Repo(repo) => repo.into(),
        }
    }
}

impl From<MemberError> for ApiError {
    fn from(error: MemberError) -> Self {
        match error {
            MemberError::Forbidden(f) => forbidden(f),
            MemberError::NotFound => Self::new(ErrorCode::NotFound, "member not found"),
            MemberError::LastOwner => Self::new(
                ErrorCode::Conflict,
                "the last owner can be neither removed nor demoted; make someone else owner first",
            ),
            MemberError::Repo(repo) => repo.into(),
        }
    }
}

impl From<InvitationError> for ApiError {
    fn from(error: InvitationError) -> Self {
        match error {
            InvitationError::Forbidden(f) => forbidden(f),
            InvitationError::Invalid(fields) => Self::validation(&fields),
            InvitationError::NotFound => Self::new(
                ErrorCode::NotFound,
                "invitation not found, already used, revoked or expired",
            ),
            InvitationError::NotPending => Self::new(
                ErrorCode::Conflict,
                "the invitation was already accepted or revoked",
            ),
            InvitationError::DemoSandbox => Self::new(
                ErrorCode::Forbidden,
                "nobody can be invited into a demo sandbox; sign up for a real tenant",
            ),
            InvitationError::AlreadyMember => Self::new(
                ErrorCode::Conflict,
                "this account is already a member of the tenant; log in instead",
            ),
            InvitationError::InvalidCredentials => {
                Self::new(ErrorCode::Unauthenticated, "invalid e-mail or password")
            }
            InvitationError::WrongAccount => Self::new(
                ErrorCode::Forbidden,
                "this invitation is for another account: accept it with the invited account's \
                 password or session",
            ),
            InvitationError::Repo(repo) => repo.into(),
        }
    }
}

impl From<QrError> for ApiError {
    fn from(error: QrError) -> Self {
        match error {
            QrError::SessionRequired => Self::new(
                ErrorCode::Forbidden,
                "scanning a QR code needs a user session (crm_st_…), not an API key",
            ),
            QrError::NotFound => Self::new(ErrorCode::NotFound, "no such QR login request"),
            QrError::Expired => Self::new(
                ErrorCode::Conflict,
                "this QR code has expired; generate a new one",
            )
            .with_details(json!({ "status": "expired" })),
            QrError::AlreadyUsed(status) => Self::new(
                ErrorCode::Conflict,
                format!("this QR code was already used (status {})", status.as_str()),
            )
            .with_details(json!({ "status": status.as_str() })),
            QrError::WrongPollToken => Self::new(
                ErrorCode::Forbidden,
                "this poll token does not belong to the QR login request",
            ),
            QrError::SlowDown(interval) => Self::new(
                ErrorCode::SlowDown,
                format!("slow_down: poll at most every {interval} seconds"),
            )
            .with_details(json!({ "interval": interval, "retryAfterSeconds": interval })),
            QrError::Repo(repo) => repo.into(),
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(error: WebhookError) -> Self {
        match error {
            WebhookError::Forbidden(f) => forbidden(f),
            WebhookError::Invalid(fields) => Self::validation(&fields),
            WebhookError::NotFound => Self::new(ErrorCode::NotFound, "webhook not found"),
            WebhookError::EventNotFound => Self::new(
                ErrorCode::NotFound,
                "no event with this id in your tenant's log (`after`)",
            ),
            WebhookError::Unavailable => Self::new(
                ErrorCode::Unavailable,
                "too many webhook registrations are being checked right now; retry shortly",
            ),
            WebhookError::Repo(repo) => repo.into(),
        }
    }
}
