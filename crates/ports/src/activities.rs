//! Activities (calls, meetings, notes, tasks): the repository of the unit of work's tenant.

use std::future::Future;

use domain::activity::{Activity, ActivityDraft, ActivityId, ActivityPage, ActivityQuery};

use crate::errors::{CrmWriteError, RepoError};

/// Activities of the unit of work's tenant.
pub trait ActivityRepository {
    /// One page of activities (a timeline when a link filter is set).
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_activities(
        &mut self,
        query: &ActivityQuery,
    ) -> impl Future<Output = Result<ActivityPage, RepoError>> + Send;

    /// One activity; `for_update` locks it.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn get_activity(
        &mut self,
        id: ActivityId,
        for_update: bool,
    ) -> impl Future<Output = Result<Option<Activity>, RepoError>> + Send;

    /// Stores a new activity.
    ///
    /// # Errors
    /// [`CrmWriteError::UnknownReference`], storage.
    fn insert_activity(
        &mut self,
        id: ActivityId,
        draft: &ActivityDraft,
    ) -> impl Future<Output = Result<Activity, CrmWriteError>> + Send;

    /// Replaces an activity's fields and bumps its version.
    ///
    /// # Errors
    /// As insert, plus [`CrmWriteError::NotFound`].
    fn update_activity(
        &mut self,
        id: ActivityId,
        draft: &ActivityDraft,
    ) -> impl Future<Output = Result<Activity, CrmWriteError>> + Send;

    /// Deletes an activity.
    ///
    /// # Errors
    /// [`CrmWriteError::NotFound`], storage.
    fn delete_activity(
        &mut self,
        id: ActivityId,
    ) -> impl Future<Output = Result<(), CrmWriteError>> + Send;
}
