//! Identity use cases: sign-up, login, sessions, roles, keys, members, demo, QR login.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use adapters_memory::MemoryStore;
use app::api_keys::{ApiKeyError, NewKeyInput, create_api_key, revoke_api_key};
use app::auth::{AuthError, AuthSettings, Credential, authenticate};
use app::contacts::{ContactError, create_contact};
use app::identity::{
    ClientInfo, IdentityError, LoginInput, SessionGrant, SignupInput, login, logout, signup,
};
use app::invitations::{AcceptInput, InviteInput, accept_invitation, create_invitation};
use app::members::{MemberError, change_member_role, list_members, remove_member};
use app::passwords::Argon2Hasher;
use app::qr::{QrError, generate_qr, link_qr, poll_qr, scan_qr};
use domain::contact::ContactInput;
use domain::identity::QrStatus;
use domain::password::Password;
use domain::principal::Role;
use ports::{BoxFuture, PasswordHasher, RepoError};

/// The real argon2 hasher, with its calls counted.
pub(crate) struct CountingHasher {
    inner: Argon2Hasher,
    verifications: AtomicUsize,
}

impl PasswordHasher for CountingHasher {
    fn hash<'a>(&'a self, password: &'a Password) -> BoxFuture<'a, Result<String, RepoError>> {
        self.inner.hash(password)
    }

    fn verify<'a>(&'a self, password: &'a Password, stored: &'a str) -> BoxFuture<'a, bool> {
        self.verifications.fetch_add(1, Ordering::SeqCst);
        self.inner.verify(password, stored)
    }

    fn dummy_hash(&self) -> &str {
        self.inner.dummy_hash()
    }
}

pub(crate) fn hasher() -> Arc<CountingHasher> {
    Arc::new(CountingHasher {
        inner: Argon2Hasher::new().expect("hasher"),
        verifications: AtomicUsize::new(0),
    })
}

pub(crate) fn settings() -> AuthSettings {
    AuthSettings {
        qr_poll_interval_seconds: 1,
        ..AuthSettings::default()
    }
}

pub(crate) async fn sign_up(
    store: &MemoryStore,
    hasher: &CountingHasher,
    email: &str,
) -> SessionGrant {
    signup(
        store,
        hasher,
        &settings(),
        SignupInput {
            tenant_name: format!("Tenant of {email}"),
            name: "Ada".into(),
            email: email.into(),
            password: "correct horse battery".into(),
        },
        &ClientInfo::default(),
    )
    .await
    .expect("signed up")
}

pub(crate) fn session(grant: &SessionGrant) -> Credential {
    Credential::Session(grant.token.clone())
}

#[tokio::test]
async fn a_signed_up_owner_logs_in_and_out() {
    let store = MemoryStore::new();
    let hasher = hasher();
    let grant = sign_up(&store, &hasher, "ada@example.com").await;
    let (principal, _) = authenticate(&store, &settings(), &session(&grant))
        .await
        .expect("session works");
    assert_eq!(principal.role, Role::Owner);
    assert_eq!(principal.tenant_id, grant.tenant.id);

    let again = login(
        &store,
        hasher.as_ref(),
        &settings(),
        LoginInput {
            email: "ADA@example.com".into(),
            password: "correct horse battery".into(),
            tenant_id: None,
        },
        &ClientInfo::default(),
    )
    .await
    .expect("logged in");
    let (principal, uow) = authenticate(&store, &settings(), &session(&again))
        .await
        .expect("auth");
    logout(uow, &principal).await.expect("logged out");
    assert!(matches!(
        authenticate(&store, &settings(), &session(&again)).await,
        Err(AuthError::Unauthenticated)
    ));
    assert!(
        authenticate(&store, &settings(), &session(&grant))
            .await
            .is_ok(),
        "only that session ended"
    );
}

#[tokio::test]
async fn a_second_signup_with_the_same_email_conflicts() {
    let store = MemoryStore::new();
    let hasher = hasher();
    sign_up(&store, &hasher, "ada@example.com").await;
    let again = signup(
        &store,
        hasher.as_ref(),
        &settings(),
        SignupInput {
            tenant_name: "B".into(),
            name: "B".into(),
            email: "Ada@Example.com".into(),
            password: "another long password".into(),
        },
        &ClientInfo::default(),
    )
    .await;
    assert!(matches!(again, Err(IdentityError::EmailTaken)));
}

#[tokio::test]
async fn unknown_email_and_wrong_password_do_the_same_hashing_work() {
    let store = MemoryStore::new();
    let hasher = hasher();
    sign_up(&store, &hasher, "ada@example.com").await;
    let attempt = |email: &str, password: &str| LoginInput {
        email: email.into(),
        password: password.into(),
        tenant_id: None,
    };
    for (what, input) in [
        (
            "unknown e-mail",
            attempt("nobody@example.com", "correct horse battery"),
        ),
        (
            "wrong password",
            attempt("ada@example.com", "wrong horse battery"),
        ),
        (
            "malformed e-mail",
            attempt("not an e-mail", "correct horse battery"),
        ),
    ] {
        let before = hasher.verifications.load(Ordering::SeqCst);
        let result = login(
            &store,
            hasher.as_ref(),
            &settings(),
            input,
            &ClientInfo::default(),
        )
        .await;
        assert!(
            matches!(result, Err(IdentityError::InvalidCredentials)),
            "{what}"
        );
        assert_eq!(
            hasher.verifications.load(Ordering::SeqCst) - before,
            1,
            "{what}: exactly one verification"
        );
    }
    let before = hasher.verifications.load(Ordering::SeqCst);
    login(
        &store,
        hasher.as_ref(),
        &settings(),
        attempt("ada@example.com", "correct horse battery"),
        &ClientInfo::default(),
    )
    .await
    .expect("right password");
    assert_eq!(
        hasher.verifications.load(Ordering::SeqCst) - before,
        1,
        "success costs the same"
    );
}

/// `inviter` invites `email` with `role`; its holder accepts with `password` (the
/// account's own, or a new account's).
pub(crate) async fn join(
    store: &MemoryStore,
    hasher: &Arc<CountingHasher>,
    inviter: &SessionGrant,
    email: &str,
    role: Role,
    password: &str,
) -> SessionGrant {
    let (principal, uow) = authenticate(store, &settings(), &session(inviter))
        .await
        .expect("auth");
    let invited = create_invitation(
        uow,
        &principal,
        InviteInput {
            email: email.into(),
            role,
        },
    )
    .await
    .expect("invited");
    accept_invitation(
        store,
        hasher.as_ref(),
        &settings(),
        AcceptInput {
            token: invited.token.expose().to_owned(),
            name: None,
            password: Some(password.into()),
        },
        None,
        &ClientInfo::default(),
    )
    .await
    .expect("accepted")
}

#[tokio::test]
async fn a_person_in_two_tenants_chooses_where_to_log_in() {
    let store = MemoryStore::new();
    let hasher = hasher();
    let first = sign_up(&store, &hasher, "ada@example.com").await;
    let second = sign_up(&store, &hasher, "grace@example.com").await;
    join(
        &store,
        &hasher,
        &second,
        "ada@example.com",
        Role::Member,
        "correct horse battery",
    )
    .await;

    let into_second = login(
        &store,
        hasher.as_ref(),
        &settings(),
        LoginInput {
            email: "ada@example.com".into(),
            password: "correct horse battery".into(),
            tenant_id: Some(second.tenant.id),
        },
        &ClientInfo::default(),
    )
    .await
    .expect("login into the second tenant");
    assert_eq!(into_second.tenant.id, second.tenant.id);
    let (principal, _) = authenticate(&store, &settings(), &session(&into_second))
        .await
        .expect("auth");
    assert_eq!(principal.role, Role::Member);

    let default = login(
        &store,
        hasher.as_ref(),
        &settings(),
        LoginInput {
            email: "ada@example.com".into(),
            password: "correct horse battery".into(),
            tenant_id: None,
        },
        &ClientInfo::default(),
    )
    .await
    .expect("default login");
    assert_eq!(
        default.tenant.id, first.tenant.id,
        "the oldest membership by default"
    );

    let elsewhere = login(
        &store,
        hasher.as_ref(),
        &settings(),
        LoginInput {
            email: "ada@example.com".into(),
            password: "correct horse battery".into(),
            tenant_id: Some(domain::ids::TenantId::new()),
        },
        &ClientInfo::default(),
    )
    .await;
    assert!(matches!(elsewhere, Err(IdentityError::NotAMember)));
}

#[tokio::test]
async fn the_last_owner_can_be_neither_removed_nor_demoted() {
    let store = MemoryStore::new();
    let hasher = hasher();
    let grant = sign_up(&store, &hasher, "ada@example.com").await;
    let (owner, uow) = authenticate(&store, &settings(), &session(&grant))
        .await
        .expect("auth");
    let demoted = change_member_role(uow, &owner, grant.user.id, Role::Admin).await;
    assert!(matches!(demoted, Err(MemberError::LastOwner)));
    let (owner, uow) = authenticate(&store, &settings(), &session(&grant))
        .await
        .expect("auth");
    assert!(matches!(
        remove_member(uow, &owner, grant.user.id).await,
        Err(MemberError::LastOwner)
    ));

    let (owner, uow) = authenticate(&store, &settings(), &session(&grant))
        .await
        .expect("auth");
    drop(uow);
    let _ = owner;
    let second = join(
        &store,
        &hasher,
        &grant,
        "grace@example.com",
        Role::Owner,
        "a long enough password",
    )
    .await;
    let (owner, uow) = authenticate(&store, &settings(), &session(&grant))
        .await
        .expect("auth");
    change_member_role(uow, &owner, grant.user.id, Role::Admin)
        .await
        .expect("now demotable");
    let (admin, uow) = authenticate(&store, &settings(), &session(&grant))
        .await
        .expect("auth");
    assert_eq!(admin.role, Role::Admin);
    let promote = change_member_role(uow, &admin, grant.user.id, Role::Owner).await;
    assert!(
        matches!(promote, Err(MemberError::Forbidden(_))),
        "admins cannot make owners"
    );
    let (admin, uow) = authenticate(&store, &settings(), &session(&grant))
        .await
        .expect("auth");
    assert!(
        matches!(
            remove_member(uow, &admin, second.user.id).await,
            Err(MemberError::Forbidden(_))
        ),
        "nor remove them"
    );
}

#[tokio::test]
async fn members_and_viewers_cannot_manage_keys_or_members_and_viewers_cannot_write() {
    let store = MemoryStore::new();
    let hasher = hasher();
    let grant = sign_up(&store, &hasher, "ada@example.com").await;
    for (email, role) in [
        ("member@example.com", Role::Member),
        ("viewer@example.com", Role::Viewer),
    ] {
        join(
            &store,
            &hasher,
            &grant,
            email,
            role,
            "a long enough password",
        )
        .await;
        let theirs = login(
            &store,
            hasher.as_ref(),
            &settings(),
            LoginInput {
                email: email.into(),
                password: "a long enough password".into(),
                tenant_id: None,
            },
            &ClientInfo::default(),
        )
        .await
        .expect("login");
        let (principal, uow) = authenticate(&store, &settings(), &session(&theirs))
            .await
            .expect("auth");
        let key = create_api_key(
            uow,
            &principal,
            NewKeyInput {
                name: "k".into(),
                scopes: vec!["*".into()],
                expires_at: None,
            },
        )
        .await;
        assert!(
            matches!(key, Err(ApiKeyError::Forbidden(_))),
            "{role}: keys"
        );
        let (principal, uow) = authenticate(&store, &settings(), &session(&theirs))
            .await
            .expect("auth");
        assert!(
            matches!(
                list_members(uow, &principal).await,
                Err(MemberError::Forbidden(_))
            ),
            "{role}: members"
        );
        let (principal, uow) = authenticate(&store, &settings(), &session(&theirs))
            .await
            .expect("auth");
        let write = create_contact(
            uow,
            &principal,
            ContactInput {
                first_name: Some("x".into()),
                ..ContactInput::default()
            },
        )
        .await;
        assert_eq!(
            matches!(write, Err(ContactError::Forbidden(_))),
            role == Role::Viewer,
            "{role}: contacts"
        );
    }
}

#[tokio::test]
async fn a_read_only_key_cannot_write_and_a_revoked_key_stops_at_once() {
    let store = MemoryStore::new();
    let hasher = hasher();
    let grant = sign_up(&store, &hasher, "ada@example.com").await;
    let (owner, uow) = authenticate(&store, &settings(), &session(&grant))
        .await
        .expect("auth");
    let reader = create_api_key(
        uow,
        &owner,
        NewKeyInput {
            name: "reader".into(),
            scopes: vec!["contacts:read".into()],
            expires_at: None,
        },
    )
    .await
    .expect("created");
    assert_eq!(reader.record.role, Role::Owner);
    let key = Credential::ApiKey(reader.secret.clone());
    let (principal, uow) = authenticate(&store, &settings(), &key)
        .await
        .expect("key works");
    let write = create_contact(
        uow,
        &principal,
        ContactInput {
            first_name: Some("x".into()),
            ..ContactInput::default()
        },
    )
    .await;
    assert!(matches!(write, Err(ContactError::Forbidden(_))));
    let (principal, uow) = authenticate(&store, &settings(), &key)
        .await
        .expect("key works");
    let escalate = create_api_key(
        uow,
        &principal,
        NewKeyInput {
            name: "more".into(),
            scopes: vec!["*".into()],
            expires_at: None,
        },
    )
    .await;
    assert!(
        matches!(escalate, Err(ApiKeyError::Forbidden(_))),
        "a read-only key cannot mint keys"
    );

    let (owner, uow) = authenticate(&store, &settings(), &session(&grant))
        .await
        .expect("auth");
    let revoked = revoke_api_key(uow, &owner, reader.record.id)
        .await
        .expect("revoked");
    assert!(revoked.revoked_at.is_some());
    assert!(matches!(
        authenticate(&store, &settings(), &key).await,
        Err(AuthError::Unauthenticated)
    ));
}

#[tokio::test]
async fn two_demo_logins_never_see_each_other_and_expired_ones_are_swept() {
    let store = MemoryStore::new();
    let first = app::demo::demo_login(&store, &settings(), &ClientInfo::default())
        .await
        .expect("demo");
    let second = app::demo::demo_login(&store, &settings(), &ClientInfo::default())
        .await
        .expect("demo");
    assert_ne!(first.tenant.id, second.tenant.id);
    assert!(first.tenant.expires_at.is_some());
    assert_eq!(store.contact_count(first.tenant.id).expect("count"), 12);
    let (principal, _) = authenticate(&store, &settings(), &session(&first))
        .await
        .expect("auth");
    assert_eq!(principal.tenant_id, first.tenant.id);

    store
        .set_tenant_expiry(
            first.tenant.id,
            time::OffsetDateTime::now_utc() - Duration::from_secs(1),
        )
        .expect("expire");
    assert!(matches!(
        authenticate(&store, &settings(), &session(&first)).await,
        Err(AuthError::Unauthenticated)
    ));
    assert_eq!(app::demo::sweep_expired(&store).await.expect("swept"), 1);
    assert!(!store.has_tenant(first.tenant.id).expect("lookup"));
    assert!(store.has_tenant(second.tenant.id).expect("lookup"));
}

#[tokio::test]
async fn a_qr_login_hands_out_one_session_to_the_poll_token_holder_only() {
    let store = MemoryStore::new();
    let hasher = hasher();
    let grant = sign_up(&store, &hasher, "ada@example.com").await;
    let qr = generate_qr(
        &store,
        &settings(),
        &ClientInfo {
            user_agent: Some("TV".into()),
            ip: Some("10.1.2.3".into()),
        },
    )
    .await
    .expect("generated");
    assert!(qr.qr_svg.contains("<svg"));

    let pending = poll_qr(&store, &settings(), qr.session_id, qr.poll_token.expose())
        .await
        .expect("poll");
    assert_eq!(pending.status, QrStatus::Pending);
    let too_fast = poll_qr(&store, &settings(), qr.session_id, qr.poll_token.expose()).await;
    assert!(matches!(too_fast, Err(QrError::SlowDown(1))));

    let (scanner, uow) = authenticate(&store, &settings(), &session(&grant))
        .await
        .expect("auth");
    let requester = scan_qr(uow, &scanner, qr.code.expose())
        .await
        .expect("scanned");
    assert_eq!(requester.user_agent.as_deref(), Some("TV"));
    let (scanner, uow) = authenticate(&store, &settings(), &session(&grant))
        .await
        .expect("auth");
    assert!(matches!(
        scan_qr(uow, &scanner, qr.code.expose()).await,
        Err(QrError::AlreadyUsed(QrStatus::Scanned))
    ));
    let (scanner, uow) = authenticate(&store, &settings(), &session(&grant))
        .await
        .expect("auth");
    link_qr(uow, &scanner, qr.session_id).await.expect("linked");
    let (scanner, uow) = authenticate(&store, &settings(), &session(&grant))
        .await
        .expect("auth");
    assert!(
        matches!(
            link_qr(uow, &scanner, qr.session_id).await,
            Err(QrError::AlreadyUsed(QrStatus::Linked))
        ),
        "cannot be linked twice"
    );

    let stranger = app::secrets::generate(domain::token::TokenKind::QrPoll).expect("token");
    assert!(matches!(
        poll_qr(&store, &settings(), qr.session_id, stranger.expose()).await,
        Err(QrError::WrongPollToken)
    ));

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let collected = poll_qr(&store, &settings(), qr.session_id, qr.poll_token.expose())
        .await
        .expect("poll");
    let (token, _) = collected.session.expect("the session, once");
    let (device, _) = authenticate(&store, &settings(), &Credential::Session(token))
        .await
        .expect("new session works");
    assert_eq!(device.tenant_id, grant.tenant.id);
    assert_eq!(device.user_id(), Some(grant.user.id));

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = poll_qr(&store, &settings(), qr.session_id, qr.poll_token.expose())
        .await
        .expect("poll");
    assert_eq!(after.status, QrStatus::Consumed);
    assert!(after.session.is_none(), "exactly once");
}

#[tokio::test]
async fn an_expired_qr_code_cannot_be_scanned_and_api_keys_cannot_scan() {
    let store = MemoryStore::new();
    let hasher = hasher();
    let grant = sign_up(&store, &hasher, "ada@example.com").await;
    let short = AuthSettings {
        qr_ttl: Duration::from_millis(50),
        ..settings()
    };
    let qr = generate_qr(&store, &short, &ClientInfo::default())
        .await
        .expect("generated");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (scanner, uow) = authenticate(&store, &settings(), &session(&grant))
        .await
        .expect("auth");
    assert!(matches!(
        scan_qr(uow, &scanner, qr.code.expose()).await,
        Err(QrError::Expired)
    ));
    let polled = poll_qr(&store, &settings(), qr.session_id, qr.poll_token.expose())
        .await
        .expect("poll");
    assert_eq!(polled.status, QrStatus::Expired);

    let (owner, uow) = authenticate(&store, &settings(), &session(&grant))
        .await
        .expect("auth");
    let key = create_api_key(
        uow,
        &owner,
        NewKeyInput {
            name: "k".into(),
            scopes: vec!["*".into()],
            expires_at: None,
        },
    )
    .await
    .expect("key");
    let fresh = generate_qr(&store, &settings(), &ClientInfo::default())
        .await
        .expect("generated");
    let (by_key, uow) = authenticate(&store, &settings(), &Credential::ApiKey(key.secret))
        .await
        .expect("auth");
    assert!(matches!(
        scan_qr(uow, &by_key, fresh.code.expose()).await,
        Err(QrError::SessionRequired)
    ));
}
