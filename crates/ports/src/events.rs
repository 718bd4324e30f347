//! Rendering events for delivery: the core decides when an event is sent and signs the
//! bytes; the API's adapter decides what they are, with the same code that renders the
//! HTTP responses, so a delivered object and `GET /v1/<resource>/{id}` cannot disagree.

use domain::event::DomainEvent;
use thiserror::Error;

/// An event that could not be rendered (a bug, never the receiver's fault).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("the event could not be rendered: {0}")]
pub struct EventRenderError(pub String);

/// Renders an event into the exact body of a delivery (`{id, type, tenantId, createdAt,
/// data}`), the bytes that are then signed and sent.
pub trait EventRenderer: Send + Sync {
    /// The body of one delivery of `event`.
    ///
    /// # Errors
    /// [`EventRenderError`] when the event cannot be serialised.
    fn render(&self, event: &DomainEvent) -> Result<Vec<u8>, EventRenderError>;
}
