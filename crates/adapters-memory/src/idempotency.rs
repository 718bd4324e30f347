//! Idempotency records in memory, staged with the unit of work like any other change.

use ports::RepoError;

use crate::store::MemoryUnitOfWork;

impl ports::IdempotencyRepository for MemoryUnitOfWork {
    async fn begin_idempotent(
        &mut self,
        scope: &ports::IdempotencyScope,
    ) -> Result<ports::IdempotencyClaim, RepoError> {
        let now = self.now();
        // One unit of work at a time per tenant in tests: nothing is ever in flight here.
        let data = self.data_mut()?;
        let id = (scope.credential, scope.key.clone());
        let expired = data
            .idempotency
            .get(&id)
            .is_some_and(|(_, _, at)| *at < now - time::Duration::hours(24));
        if expired {
            data.idempotency.remove(&id);
        }
        Ok(match data.idempotency.get(&id) {
            None => ports::IdempotencyClaim::Claimed,
            Some((hash, _, _)) if *hash != scope.request_hash => ports::IdempotencyClaim::Mismatch,
            Some((_, stored, _)) => ports::IdempotencyClaim::Replay(stored.clone()),
        })
    }

    async fn store_idempotent(
        &mut self,
        scope: &ports::IdempotencyScope,
        response: &ports::StoredResponse,
    ) -> Result<(), RepoError> {
        let now = self.now();
        self.data_mut()?.idempotency.insert(
            (scope.credential, scope.key.clone()),
            (scope.request_hash, response.clone(), now),
        );
        Ok(())
    }
}
