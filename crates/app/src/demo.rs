//! The demo sandbox: a fresh tenant per call, seeded with realistic data (companies with
//! their people, leads over every stage of the default pipeline in three currencies, and
//! a timeline of activities), deleted by a background sweep after its expiry.

use domain::activity::{ActivityDraft, ActivityId, ActivityInput, ActivityType};
use domain::company::{CompanyDraft, CompanyInput};
use domain::contact::{ContactDraft, ContactInput, Email};
use domain::identity::NewUser;
use domain::ids::{CompanyId, ContactId, TenantId, UserId};
use domain::lead::{LeadDraft, LeadId, LeadInput};
use domain::principal::Role;
use ports::{
    ActivityRepository, Clock, CompanyRepository, ContactRepository, IdentityRepository,
    LeadRepository, PipelineRepository, PreAuthStore, RepoError, TenantStore, UnitOfWork,
};
use serde_json::json;

use crate::auth::AuthSettings;
use crate::identity::{ClientInfo, IdentityError, SessionGrant, UserSummary, open_session};

/// (name, domain, industry, size, city, country): every contact works at one of these.
const COMPANIES: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "Analytical Engines",
        "analytical-engines.example",
        "Hardware",
        "51-200",
        "London",
        "GB",
    ),
    (
        "Navy Systems",
        "navy-systems.example",
        "Defence",
        "1001-5000",
        "Arlington",
        "US",
    ),
    (
        "Bletchley Labs",
        "bletchley-labs.example",
        "Research",
        "11-50",
        "Milton Keynes",
        "GB",
    ),
    (
        "Apollo Software",
        "apollo-software.example",
        "Software",
        "201-1000",
        "Houston",
        "US",
    ),
    (
        "Kernel Works",
        "kernel-works.example",
        "Software",
        "11-50",
        "Helsinki",
        "FI",
    ),
    (
        "TeX Press",
        "tex-press.example",
        "Publishing",
        "1-10",
        "Stanford",
        "US",
    ),
];

/// (first name, last name, index of their company, title, tags)
const PEOPLE: &[(&str, &str, usize, &str, &[&str])] = &[
    (
        "Ada",
        "Lovelace",
        0,
        "Head of Research",
        &["vip", "engineering"],
    ),
    ("Charles", "Babbage", 0, "Founder", &["decision-maker"]),
    ("Grace", "Hopper", 1, "Rear Admiral", &["decision-maker"]),
    ("Katherine", "Johnson", 1, "Lead Mathematician", &["vip"]),
    ("Alan", "Turing", 2, "Principal Scientist", &["engineering"]),
    ("Joan", "Clarke", 2, "Cryptanalyst", &["engineering"]),
    (
        "Margaret",
        "Hamilton",
        3,
        "Director of Engineering",
        &["decision-maker", "engineering"],
    ),
    ("Frances", "Allen", 3, "Research Fellow", &["engineering"]),
    ("Linus", "Torvalds", 4, "Maintainer", &["open-source"]),
    ("Radia", "Perlman", 4, "Fellow", &["engineering"]),
    ("Donald", "Knuth", 5, "Author", &["academic", "vip"]),
    ("Barbara", "Liskov", 5, "Professor", &["academic"]),
];

/// (title, index of the contact, position of the stage in the default pipeline, value in
/// minor units, currency, source): spread over every stage, won and lost included.
const LEADS: &[(&str, usize, usize, i64, &str, &str)] = &[
    (
        "Difference engine retrofit",
        0,
        0,
        1_250_000,
        "GBP",
        "Referral",
    ),
    ("Compiler licences", 2, 1, 4_800_000, "USD", "Conference"),
    ("Trajectory software audit", 3, 2, 960_000, "USD", "Website"),
    ("Cipher machine upgrade", 4, 3, 2_200_000, "EUR", "Outbound"),
    (
        "Flight software support",
        6,
        4,
        7_500_000,
        "USD",
        "Referral",
    ),
    ("Kernel consulting", 8, 2, 1_800_000, "EUR", "Website"),
    ("Typesetting bundle", 10, 5, 350_000, "USD", "Outbound"),
    ("Network design review", 9, 1, 640_000, "EUR", "Conference"),
];

fn demo_error(what: &str, error: impl std::fmt::Display) -> RepoError {
    RepoError::Unexpected(format!("demo {what}: {error}"))
}

/// The sandbox's companies, contacts, leads and activities: something on every screen.
async fn seed<
    U: UnitOfWork
        + Clock
        + ContactRepository
        + CompanyRepository
        + PipelineRepository
        + LeadRepository
        + ActivityRepository,
>(
    uow: &mut U,
    owner: UserId,
) -> Result<(), RepoError> {
    let mut companies = Vec::with_capacity(COMPANIES.len());
    for (name, domain, industry, size, city, country) in COMPANIES {
        let draft = CompanyDraft::new(CompanyInput {
            name: Some((*name).to_owned()),
            domain: Some((*domain).to_owned()),
            industry: Some((*industry).to_owned()),
            size: Some((*size).to_owned()),
            address: Some([
                None,
                Some((*city).to_owned()),
                None,
                None,
                Some((*country).to_owned()),
            ]),
            tags: Some(vec!["demo".to_owned()]),
            custom_fields: None,
        })
        .map_err(|e| demo_error(name, e))?;
        let company = uow
            .insert_company(CompanyId::new(), &draft)
            .await
            .map_err(|e| demo_error(name, e))?;
        companies.push(company.id);
    }
    let mut contacts = Vec::with_capacity(PEOPLE.len());
    for (index, (first, last, company, title, tags)) in PEOPLE.iter().enumerate() {
        let domain = COMPANIES.get(*company).map_or("demo.example", |c| c.1);
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
            owner_id: Some(owner),
            company_id: companies.get(*company).copied(),
        };
        let draft = ContactDraft::new(input).map_err(|e| demo_error("contact", e))?;
        let contact = uow
            .insert_contact(ContactId::new(), &draft)
            .await
            .map_err(|e| demo_error("contact", e))?;
        contacts.push((contact.id, contact.fields.company_id));
    }
    let pipeline = uow
        .list_pipelines()
        .await?
        .into_iter()
        .find(|p| p.is_default)
        .ok_or_else(|| RepoError::Unexpected("a sandbox without its default pipeline".into()))?;
    let today = uow.now();
    let mut leads = Vec::with_capacity(LEADS.len());
    for (index, (title, contact, stage, value, currency, source)) in LEADS.iter().enumerate() {
        let (contact_id, company_id) = contacts.get(*contact).copied().unzip();
        let stage = pipeline
            .stages
            .get(*stage)
            .or(pipeline.stages.first())
            .ok_or_else(|| RepoError::Unexpected("a default pipeline without stages".into()))?;
        let draft = LeadDraft::new(LeadInput {
            title: Some((*title).to_owned()),
            contact_id,
            company_id: company_id.flatten(),
            pipeline_id: Some(pipeline.id),
            stage_id: Some(stage.id),
            value: Some(*value),
            currency: Some((*currency).to_owned()),
            owner_id: Some(owner),
            expected_close_date: Some(
                (today + time::Duration::days(14 * (i64::try_from(index).unwrap_or(0) + 1))).date(),
            ),
            source: Some((*source).to_owned()),
        })
        .map_err(|e| demo_error(title, e))?;
        let lead = uow
            .insert_lead(LeadId::new(), &draft)
            .await
            .map_err(|e| demo_error(title, e))?;
        leads.push((lead.id, contact_id, company_id.flatten()));
    }
    // A timeline: something done, something planned, per lead.
    let kinds = [
        (
            ActivityType::Call,
            "Discovery call",
            Some("Walked through their current process."),
        ),
        (
            ActivityType::Email,
            "Sent the proposal",
            Some("Pricing and timeline attached."),
        ),
        (ActivityType::Meeting, "On-site demo", None),
        (
            ActivityType::Note,
            "Budget confirmed",
            Some("Signed off by finance for this quarter."),
        ),
    ];
    for (index, (lead, contact, company)) in leads.iter().enumerate() {
        let (kind, subject, body) = kinds[index % kinds.len()];
        let done = today - time::Duration::days(i64::try_from(index).unwrap_or(0) + 1);
        let entries = [
            ActivityInput {
                kind,
                subject: Some(subject.to_owned()),
                body: body.map(str::to_owned),
                due_at: None,
                completed_at: Some(done),
                contact_id: *contact,
                company_id: *company,
                lead_id: Some(*lead),
            },
            ActivityInput {
                kind: ActivityType::Task,
                subject: Some("Follow up".to_owned()),
                body: None,
                due_at: Some(today + time::Duration::days(i64::try_from(index).unwrap_or(0) + 2)),
                completed_at: None,
                contact_id: *contact,
                company_id: None,
                lead_id: Some(*lead),
            },
        ];
        for input in entries {
            let draft = ActivityDraft::new(input).map_err(|e| demo_error("activity", e))?;
            uow.insert_activity(ActivityId::new(), &draft)
                .await
                .map_err(|e| demo_error("activity", e))?;
        }
    }
    Ok(())
}

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
    let mut uow = store.begin_for_tenant(tenant_id).await?;
    let expires_at = uow.now() + settings.demo_ttl;
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
    seed(&mut uow, user.id).await?;
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
