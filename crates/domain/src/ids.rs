//! Typed identifiers: a `ContactId` can never be passed where a `TenantId` is expected.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// Declares a UUID newtype with the conversions every identifier needs.
macro_rules! id_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered identifier (UUID v7), so inserts land at the end of indexes.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID (from storage or a parsed path segment).
            #[must_use]
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            #[must_use]
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }
    };
}

id_newtype!(
    /// A tenant: the unit of isolation. Every tenant-owned row carries one.
    TenantId
);
id_newtype!(
    /// A webhook subscription of one tenant.
    SubscriptionId
);
id_newtype!(
    /// One event's delivery to one webhook subscription.
    DeliveryId
);
id_newtype!(
    /// A person who can log in; may belong to several tenants.
    UserId
);
id_newtype!(
    /// An API key of one tenant.
    ApiKeyId
);
id_newtype!(
    /// An invitation into one tenant.
    InvitationId
);
id_newtype!(
    /// A contact of one tenant.
    ContactId
);
id_newtype!(
    /// A login session of one user in one tenant.
    SessionId
);
id_newtype!(
    /// A QR-code login request.
    QrSessionId
);
id_newtype!(
    /// A pipeline of one tenant.
    PipelineId
);
id_newtype!(
    /// A stage of one pipeline.
    StageId
);
id_newtype!(
    /// A lead (deal) of one tenant.
    LeadId
);
id_newtype!(
    /// An activity (note, call, e-mail, meeting, task) of one tenant.
    ActivityId
);
id_newtype!(
    /// A company of one tenant (the resource arrives later; contacts may already name one).
    CompanyId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_text_form() {
        let id = ContactId::new();
        let parsed: ContactId = id.to_string().parse().expect("valid uuid");
        assert_eq!(id, parsed);
    }

    #[test]
    fn new_ids_are_time_ordered() {
        let a = TenantId::new();
        let b = TenantId::new();
        assert!(a < b, "v7 ids created later sort later");
    }

    #[test]
    fn garbage_is_not_an_id() {
        assert!("not-a-uuid".parse::<ContactId>().is_err());
    }
}
