//! Which event a change makes, in memory: the one place that decides it, so the memory
//! store writes the events PostgreSQL's triggers write (migrations 0013, 0015, 0016,
//! 0023), from the same repository calls, into its tenant's event log.
//!
//! A repository call hands over the resource before and after its change
//! ([`TenantData::record_change`]): created, updated or deleted follows from which of the
//! two exist; an update that changed nothing (the domain's
//! [`domain::event::ResourceSnapshot::changed_fields`] is empty) makes no event; a lead
//! update that moved the lead (the domain's [`DomainEvent::stage_change`]) makes a
//! `lead.stage_changed` after its `lead.updated`. A deletion's cascades record their
//! changes after the deletion's own event, in the order PostgreSQL's foreign-key actions
//! run (the deleting statement's trigger fires first; then contacts, leads, activities).
//!
//! Pipelines change in several calls (the pipeline, then its stages), so their created and
//! updated events are decided at commit with the final stages ([`PendingPipelineEvent`]),
//! as PostgreSQL's deferred trigger does; deleted is recorded at once.
//!
//! The events live in the unit of work's copy of its tenant, so they become visible on
//! commit and vanish with a dropped (rolled-back) unit of work.

use domain::activity::Activity;
use domain::company::Company;
use domain::contact::Contact;
use domain::event::{ChangeKind, DomainEvent, EventId, EventType, ResourceSnapshot};
use domain::identity::Invitation;
use domain::lead::Lead;
use domain::pipeline::{Pipeline, PipelineId};
use ports::RepoError;
use time::OffsetDateTime;

use crate::store::{MemoryUnitOfWork, TenantData};

/// A resource the memory store records events for.
pub(crate) trait Recorded {
    /// The event type of a change of this kind, if this resource has one.
    fn event_type(change: ChangeKind) -> Option<EventType>;

    /// The resource as an event's object.
    fn snapshot(&self) -> ResourceSnapshot;

    /// The resource as an update's `previous` (the same as [`Recorded::snapshot`] unless
    /// the store cannot know all of it then).
    fn previous_snapshot(&self) -> ResourceSnapshot {
        self.snapshot()
    }
}

impl Recorded for Contact {
    fn event_type(change: ChangeKind) -> Option<EventType> {
        Some(match change {
            ChangeKind::Created => EventType::ContactCreated,
            ChangeKind::Updated => EventType::ContactUpdated,
            ChangeKind::Deleted => EventType::ContactDeleted,
        })
    }

    fn snapshot(&self) -> ResourceSnapshot {
        ResourceSnapshot::Contact(self.clone())
    }
}

impl Recorded for Company {
    fn event_type(change: ChangeKind) -> Option<EventType> {
        Some(match change {
            ChangeKind::Created => EventType::CompanyCreated,
            ChangeKind::Updated => EventType::CompanyUpdated,
            ChangeKind::Deleted => EventType::CompanyDeleted,
        })
    }

    fn snapshot(&self) -> ResourceSnapshot {
        ResourceSnapshot::Company(self.clone())
    }
}

impl Recorded for Lead {
    fn event_type(change: ChangeKind) -> Option<EventType> {
        Some(match change {
            ChangeKind::Created => EventType::LeadCreated,
            ChangeKind::Updated => EventType::LeadUpdated,
            ChangeKind::Deleted => EventType::LeadDeleted,
        })
    }

    fn snapshot(&self) -> ResourceSnapshot {
        ResourceSnapshot::Lead(self.clone())
    }
}

impl Recorded for Activity {
    fn event_type(change: ChangeKind) -> Option<EventType> {
        Some(match change {
            ChangeKind::Created => EventType::ActivityCreated,
            ChangeKind::Updated => EventType::ActivityUpdated,
            ChangeKind::Deleted => EventType::ActivityDeleted,
        })
    }

    fn snapshot(&self) -> ResourceSnapshot {
        ResourceSnapshot::Activity(self.clone())
    }
}

impl Recorded for Pipeline {
    fn event_type(change: ChangeKind) -> Option<EventType> {
        Some(match change {
            ChangeKind::Created => EventType::PipelineCreated,
            ChangeKind::Updated => EventType::PipelineUpdated,
            ChangeKind::Deleted => EventType::PipelineDeleted,
        })
    }

    fn snapshot(&self) -> ResourceSnapshot {
        ResourceSnapshot::Pipeline {
            pipeline: self.clone(),
            with_stages: true,
        }
    }

    /// The pipeline row only, as PostgreSQL's `previous` (its old stages are gone by the
    /// time the event is written).
    fn previous_snapshot(&self) -> ResourceSnapshot {
        ResourceSnapshot::Pipeline {
            pipeline: Pipeline {
                stages: Vec::new(),
                ..self.clone()
            },
            with_stages: false,
        }
    }
}

impl Recorded for Invitation {
    /// Only its creation is an event (`invitation.created`): revoking or accepting one is
    /// not.
    fn event_type(change: ChangeKind) -> Option<EventType> {
        match change {
            ChangeKind::Created => Some(EventType::InvitationCreated),
            ChangeKind::Updated | ChangeKind::Deleted => None,
        }
    }

    fn snapshot(&self) -> ResourceSnapshot {
        ResourceSnapshot::Invitation(self.clone())
    }
}

impl TenantData {
    /// Records the event(s) of one change of one resource: `before` and `after` are the
    /// resource around the change (`None` where it does not exist). Nothing for an update
    /// that changed nothing, nor for a change this resource has no event for.
    ///
    /// # Errors
    /// [`RepoError::Unexpected`] if the domain refuses the event's parts (a bug here).
    pub(crate) fn record_change<T: Recorded>(
        &mut self,
        at: OffsetDateTime,
        before: Option<&T>,
        after: Option<&T>,
    ) -> Result<(), RepoError> {
        let (change, object, previous) = match (before, after) {
            (None, None) => return Ok(()),
            (None, Some(after)) => (ChangeKind::Created, after.snapshot(), None),
            (Some(before), Some(after)) => (
                ChangeKind::Updated,
                after.snapshot(),
                Some(before.previous_snapshot()),
            ),
            (Some(before), None) => (ChangeKind::Deleted, before.snapshot(), None),
        };
        let Some(kind) = T::event_type(change) else {
            return Ok(());
        };
        let tenant = self.info.id;
        let build = |kind: EventType| {
            DomainEvent::new(
                EventId::new(),
                kind,
                tenant,
                at,
                object.clone(),
                previous.clone(),
            )
            .map_err(|e| RepoError::Unexpected(format!("memory event: {e}")))
        };
        let event = build(kind)?;
        if change == ChangeKind::Updated && event.changed_fields().is_empty() {
            return Ok(());
        }
        let moved = if kind == EventType::LeadUpdated {
            Some(build(EventType::LeadStageChanged)?)
                .filter(|e| e.stage_change().is_some_and(|(from, to)| from != to))
        } else {
            None
        };
        let sandbox = self.info.expires_at.is_some();
        self.webhooks.append(event, at, sandbox);
        if let Some(moved) = moved {
            self.webhooks.append(moved, at, sandbox);
        }
        Ok(())
    }

    /// Records each `(before, after)` pair, in order (a cascade's many rows).
    ///
    /// # Errors
    /// As [`TenantData::record_change`].
    pub(crate) fn record_changes<T: Recorded>(
        &mut self,
        at: OffsetDateTime,
        changes: &[(Option<T>, Option<T>)],
    ) -> Result<(), RepoError> {
        for (before, after) in changes {
            self.record_change(at, before.as_ref(), after.as_ref())?;
        }
        Ok(())
    }
}

/// A pipeline's created or updated event, decided at commit.
#[derive(Debug)]
pub(crate) struct PendingPipelineEvent {
    /// Which pipeline.
    id: PipelineId,
    /// The pipeline before this change; `None` when the change created it.
    before: Option<Pipeline>,
}

impl MemoryUnitOfWork {
    /// Notes a pipeline change (`before` is `None` for its creation): its event is written
    /// at commit, with the pipeline as it is then, and not at all if it is gone by then.
    pub(crate) fn pipeline_changed(&mut self, id: PipelineId, before: Option<Pipeline>) {
        self.pending_pipelines
            .push(PendingPipelineEvent { id, before });
    }

    /// Writes the pipeline events noted during the unit of work, in the order of their
    /// changes, after every other event (PostgreSQL's deferred trigger fires at commit).
    ///
    /// # Errors
    /// As [`TenantData::record_change`].
    pub(crate) fn record_pending_pipelines(&mut self) -> Result<(), RepoError> {
        let at = self.now();
        let pending = std::mem::take(&mut self.pending_pipelines);
        let Some(data) = self.data.as_mut() else {
            return Ok(());
        };
        for PendingPipelineEvent { id, before } in pending {
            let Some(current) = data.pipelines.get(&id).cloned() else {
                continue;
            };
            data.record_change(at, before.as_ref(), Some(&current))?;
        }
        Ok(())
    }
}
