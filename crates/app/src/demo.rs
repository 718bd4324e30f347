//! The demo sandbox: a fresh tenant per call, seeded with realistic data, deleted by a
//! background sweep after its expiry.

use domain::contact::{ContactDraft, ContactInput, Email};
use domain::identity::NewUser;
use domain::ids::{ContactId, TenantId, UserId};
use domain::principal::Role;
use ports::{
    ContactRepository, IdentityRepository, PreAuthStore, RepoError, TenantStore, UnitOfWork,
};
use serde_json::json;
use time::OffsetDateTime;

use crate::auth::AuthSettings;
use crate::identity::{ClientInfo, IdentityError, SessionGrant, UserSummary, open_session};

/// (first name, last name, company domain, title, tags)
const PEOPLE: &[(&str, &str, &str, &str, &[&str])] = &[
    (
        "Ada",
        "Lovelace",
        "analytical-engines.example",
        "Head of Research",
        &["vip", "engineering"],
    ),
    (
        "Grace",
        "Hopper",
        "navy-systems.example",
        "Rear Admiral",
        &["decision-maker"],
    ),
    (
        "Alan",
        "Turing",
        "bletchley-labs.example",
        "Principal Scientist",
        &["engineering"],
    ),
    (
        "Katherine",
        "Johnson",
        "langley-aero.example",
        "Lead Mathematician",
        &["vip"],
    ),
    (
        "Linus",
        "Torvalds",
        "kernel-works.example",
        "Maintainer",
        &["open-source"],
    ),
    (
        "Margaret",
        "Hamilton",
        "apollo-software.example",
        "Director of Engineering",
        &["decision-maker", "engineering"],
    ),
    (
        "Tim",
        "Berners-Lee",
        "web-foundation.example",
        "Founder",
        &["partner"],
    ),
    (
        "Radia",
        "Perlman",
        "spanning-networks.example",
        "Fellow",
        &["engineering"],
    ),
    (
        "Dennis",
        "Ritchie",
        "bell-labs.example",
        "Researcher",
        &["open-source"],
    ),
    (
        "Barbara",
        "Liskov",
        "substitution.example",
        "Professor",
        &["academic"],
    ),
    (
        "Donald",
        "Knuth",
        "tex-press.example",
        "Author",
        &["academic", "vip"],
    ),
    (
        "Frances",
        "Allen",
        "optimizing-compilers.example",
        "Research Fellow",
        &["engineering"],
    ),
];

/// Creates a sandbox tenant with sample data and a session for its demo user.
///
/// # Errors
/// Storage failures (then nothing was created).
pub async fn demo_login<S: TenantStore>(
    store: &S,
    settings: &AuthSettings,
    client: &ClientInfo,
) -> Result<SessionGrant, IdentityError> {
    let tenant_id = TenantId::new();
    let expires_at = OffsetDateTime::now_utc() + settings.demo_ttl;
    let mut uow = store.begin_for_tenant(tenant_id).await?;
    let tenant = uow
        .insert_tenant("Demo workspace", Some(expires_at))
        .await?;
    let email = Email::parse(&format!(
        "demo+{}@demo.crm.invalid",
        tenant_id.as_uuid().simple()
    ))
    .map_err(|e| RepoError::Unexpected(format!("demo e-mail: {e}")))?;
    let user = UserSummary {
        id: UserId::new(),
        email: email.as_str().to_owned(),
        name: "Demo User".to_owned(),
    };
    uow.insert_user(&NewUser {
        id: user.id,
        email,
        name: user.name.clone(),
        password_hash: None,
    })
    .await?;
    uow.insert_membership(user.id, Role::Owner).await?;
    for (index, (first, last, domain, title, tags)) in PEOPLE.iter().enumerate() {
        let input = ContactInput {
            first_name: Some((*first).to_owned()),
            last_name: Some((*last).to_owned()),
            email: Some(format!(
                "{}.{}@{domain}",
                first.to_lowercase(),
                last.to_lowercase().replace('-', "")
            )),
            phone: Some(format!("+1 555 01{index:02}")),
            title: Some((*title).to_owned()),
            tags: Some(tags.iter().map(|t| (*t).to_owned()).collect()),
            custom_fields: Some(json!({"source": "demo", "score": (index * 7) % 100})),
            owner_id: Some(user.id),
            company_id: None,
        };
        let draft = ContactDraft::new(input)
            .map_err(|e| RepoError::Unexpected(format!("demo contact {index}: {e}")))?;
        uow.insert_contact(ContactId::new(), &draft)
            .await
            .map_err(|e| RepoError::Unexpected(format!("demo contact {index}: {e}")))?;
    }
    let (token, session_expires_at) = open_session(&mut uow, user.id, settings, client).await?;
    uow.commit().await?;
    Ok(SessionGrant {
        tenant,
        user,
        token,
        expires_at: session_expires_at.min(expires_at),
    })
}

/// Deletes expired sandboxes; returns how many.
///
/// # Errors
/// Storage failures.
pub async fn sweep_expired<P: PreAuthStore>(store: &P) -> Result<u64, RepoError> {
    store.sweep_expired_tenants().await
}
