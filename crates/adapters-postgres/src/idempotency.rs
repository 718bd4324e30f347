//! Idempotency keys in PostgreSQL (tenant-scoped, RLS).

use ports::{IdempotencyClaim, IdempotencyRepository, RepoError, StoredResponse};
use sea_orm::{ConnectionTrait, FromQueryResult};

use crate::errors::repo_error;
use crate::store::{PgUnitOfWork, statement};

#[derive(Debug, FromQueryResult)]
struct Existing {
    request_hash: Vec<u8>,
    state: String,
    status: Option<i32>,
    response_headers: Option<serde_json::Value>,
    response_body: Option<Vec<u8>>,
}

#[derive(Debug, FromQueryResult)]
struct Claimed {
    claimed: bool,
}

impl IdempotencyRepository for PgUnitOfWork {
    async fn claim_idempotency_key(
        &mut self,
        key: &str,
        request_hash: &[u8; 32],
    ) -> Result<IdempotencyClaim, RepoError> {
        // Insert, or take over a row that expired (24 h) or was abandoned in flight by a
        // crashed request (1 minute, same request only). Otherwise leave the row alone.
        let claimed = Claimed::find_by_statement(statement(
            "INSERT INTO idempotency_keys (tenant_id, key, request_hash, state) \
             VALUES ($1, $2, $3, 'in_flight') \
             ON CONFLICT (tenant_id, key) DO UPDATE \
                SET request_hash = EXCLUDED.request_hash, state = 'in_flight', status = NULL, \
                    response_headers = NULL, response_body = NULL, created_at = now(), completed_at = NULL \
              WHERE idempotency_keys.created_at < now() - interval '24 hours' \
                 OR (idempotency_keys.state = 'in_flight' \
                     AND idempotency_keys.created_at < now() - interval '1 minute' \
                     AND idempotency_keys.request_hash = EXCLUDED.request_hash) \
             RETURNING true AS claimed",
            vec![self.tenant_id.as_uuid().into(), key.to_owned().into(), request_hash.to_vec().into()],
        ))
        .one(&self.txn)
        .await
        .map_err(repo_error)?;
        if claimed.is_some_and(|c| c.claimed) {
            return Ok(IdempotencyClaim::Claimed);
        }
        let existing = Existing::find_by_statement(statement(
            "SELECT request_hash, state, status, response_headers, response_body \
               FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
            vec![self.tenant_id.as_uuid().into(), key.to_owned().into()],
        ))
        .one(&self.txn)
        .await
        .map_err(repo_error)?
        .ok_or_else(|| RepoError::Unexpected("idempotency key vanished".into()))?;
        if existing.request_hash != request_hash {
            return Ok(IdempotencyClaim::Mismatch);
        }
        if existing.state != "completed" {
            return Ok(IdempotencyClaim::InFlight);
        }
        let headers = existing
            .response_headers
            .and_then(|value| serde_json::from_value::<Vec<(String, String)>>(value).ok())
            .unwrap_or_default();
        Ok(IdempotencyClaim::Replay(StoredResponse {
            status: existing
                .status
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(200),
            headers,
            body: existing.response_body.unwrap_or_default(),
        }))
    }

    async fn complete_idempotency_key(
        &mut self,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), RepoError> {
        let headers = serde_json::to_value(&response.headers)
            .map_err(|e| RepoError::Unexpected(e.to_string()))?;
        self.txn
            .execute_raw(statement(
                "UPDATE idempotency_keys SET state = 'completed', status = $3, response_headers = $4, \
                 response_body = $5, completed_at = now() WHERE tenant_id = $1 AND key = $2",
                vec![
                    self.tenant_id.as_uuid().into(),
                    key.to_owned().into(),
                    i32::from(response.status).into(),
                    headers.into(),
                    response.body.clone().into(),
                ],
            ))
            .await
            .map_err(repo_error)?;
        Ok(())
    }

    async fn release_idempotency_key(&mut self, key: &str) -> Result<(), RepoError> {
        self.txn
            .execute_raw(statement(
                "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND state = 'in_flight'",
                vec![self.tenant_id.as_uuid().into(), key.to_owned().into()],
            ))
            .await
            .map_err(repo_error)?;
        Ok(())
    }
}
