//! Idempotency records in PostgreSQL. The application role has no privilege on the table:
//! both steps go through SECURITY DEFINER functions that work only in the transaction's
//! tenant (`crm_idempotency_begin`, `crm_idempotency_store`, migration 0018), inside the
//! request's own unit of work, so the record commits with the change it answers for.

use domain::principal::Scopes;
use ports::{IdempotencyClaim, IdempotencyRepository, IdempotencyScope, RepoError, StoredResponse};
use sea_orm::{ConnectionTrait, FromQueryResult};

use crate::errors::repo_error;
use crate::identity::role;
use crate::store::{PgUnitOfWork, statement};

#[derive(Debug, FromQueryResult)]
struct Begun {
    outcome: String,
    role: Option<String>,
    scopes: Option<Vec<String>>,
    status: Option<i32>,
    response_headers: Option<serde_json::Value>,
    response_body: Option<Vec<u8>>,
}

impl TryFrom<Begun> for IdempotencyClaim {
    type Error = RepoError;
    fn try_from(row: Begun) -> Result<Self, RepoError> {
        Ok(match row.outcome.as_str() {
            "new" => Self::Claimed,
            "in_flight" => Self::InFlight,
            "mismatch" => Self::Mismatch,
            "replay" => {
                let status = row
                    .status
                    .and_then(|s| u16::try_from(s).ok())
                    .ok_or_else(|| RepoError::Unexpected("replay without a status".into()))?;
                let headers = row
                    .response_headers
                    .map(serde_json::from_value::<Vec<(String, String)>>)
                    .transpose()
                    .map_err(|e| RepoError::Unexpected(e.to_string()))?
                    .unwrap_or_default();
                Self::Replay(StoredResponse {
                    status,
                    headers,
                    body: row.response_body.unwrap_or_default(),
                    role: role(row.role.as_deref().unwrap_or_default())?,
                    scopes: Scopes::from_names(row.scopes.unwrap_or_default()),
                })
            }
            other => {
                return Err(RepoError::Unexpected(format!(
                    "unknown idempotency outcome {other}"
                )));
            }
        })
    }
}

impl IdempotencyRepository for PgUnitOfWork {
    async fn begin_idempotent(
        &mut self,
        scope: &IdempotencyScope,
    ) -> Result<IdempotencyClaim, RepoError> {
        Begun::find_by_statement(statement(
            "SELECT outcome, role, scopes, status, response_headers, response_body \
               FROM crm_idempotency_begin($1, $2, $3)",
            vec![
                scope.credential.into(),
                scope.key.clone().into(),
                scope.request_hash.to_vec().into(),
            ],
        ))
        .one(&self.txn)
        .await
        .map_err(repo_error)?
        .ok_or_else(|| RepoError::Unexpected("crm_idempotency_begin returned no row".into()))?
        .try_into()
    }

    async fn store_idempotent(
        &mut self,
        scope: &IdempotencyScope,
        response: &StoredResponse,
    ) -> Result<(), RepoError> {
        let headers = serde_json::to_value(&response.headers)
            .map_err(|e| RepoError::Unexpected(e.to_string()))?;
        self.txn
            .execute_raw(statement(
                "SELECT crm_idempotency_store($1, $2, $3, $4, $5, $6, $7, $8)",
                vec![
                    scope.credential.into(),
                    scope.key.clone().into(),
                    scope.request_hash.to_vec().into(),
                    response.role.as_str().to_owned().into(),
                    response.scopes.names().to_vec().into(),
                    i32::from(response.status).into(),
                    headers.into(),
                    response.body.clone().into(),
                ],
            ))
            .await
            .map_err(repo_error)?;
        Ok(())
    }
}
