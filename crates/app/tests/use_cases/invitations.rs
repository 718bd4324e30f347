//! Invitations and credential chains against the in-memory adapter: nobody joins a tenant
//! without proving control of the account, a token works once, narrow keys hand out no
//! power, and every key answers to the member at the root of its chain.

use adapters_memory::MemoryStore;
use app::api_keys::{NewKeyInput, create_api_key};
use app::auth::{AuthError, Credential, authenticate};
use app::identity::{ClientInfo, LoginInput, SessionGrant, login};
use app::invitations::{
    AcceptInput, InvitationError, InviteInput, accept_invitation, create_invitation,
    revoke_invitation,
};
use app::members::{MemberError, change_member_role, remove_member};
use domain::principal::Role;

use crate::identity::{CountingHasher, hasher, join, session, settings, sign_up};

/// Accepts `token` with `password`, presenting `session` if given.
pub(crate) async fn try_accept(
    store: &MemoryStore,
    hasher: &CountingHasher,
    token: &str,
    password: Option<&str>,
    session: Option<&Credential>,
) -> Result<SessionGrant, InvitationError> {
    accept_invitation(
        store,
        hasher,
        &settings(),
        AcceptInput {
            token: token.to_owned(),
            name: None,
            password: password.map(str::to_owned),
        },
        session,
        &ClientInfo::default(),
    )
    .await
}

pub(crate) async fn invite(
    store: &MemoryStore,
    inviter: &Credential,
    email: &str,
    role: Role,
) -> Result<String, InvitationError> {
    let (principal, uow) = authenticate(store, &settings(), inviter)
        .await
        .expect("auth");
    let created = create_invitation(
        uow,
        &principal,
        InviteInput {
            email: email.into(),
            role,
        },
    )
    .await?;
    Ok(created.token.expose().to_owned())
}

async fn key_of(store: &MemoryStore, creator: &Credential, scopes: &[&str]) -> Credential {
    let (principal, uow) = authenticate(store, &settings(), creator)
        .await
        .expect("auth");
    let created = create_api_key(
        uow,
        &principal,
        NewKeyInput {
            name: "chain".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            expires_at: None,
        },
    )
    .await
    .expect("key created");
    Credential::ApiKey(created.secret)
}

#[tokio::test]
async fn a_pre_registered_address_does_not_let_its_registrant_into_an_inviting_tenant() {
    let store = MemoryStore::new();
    let hasher = hasher();
    // The attacker registers the victim's address first, with a password they know.
    sign_up(&store, &hasher, "victim@corp.example").await;
    let corp = sign_up(&store, &hasher, "boss@corp.example").await;
    let token = invite(&store, &session(&corp), "victim@corp.example", Role::Admin)
        .await
        .expect("invited");
    // Without the token the attacker's password reaches only the attacker's own tenant.
    let attacker = login(
        &store,
        hasher.as_ref(),
        &settings(),
        LoginInput {
            email: "victim@corp.example".into(),
            password: "correct horse battery".into(),
            tenant_id: Some(corp.tenant.id),
        },
        &ClientInfo::default(),
    )
    .await;
    assert!(attacker.is_err(), "not a member of the inviting tenant");
    // The token's holder who does not know the account's password gets nothing either.
    let guessed = try_accept(&store, &hasher, &token, Some("a brand new password"), None).await;
    assert!(matches!(guessed, Err(InvitationError::InvalidCredentials)));
    let missing = try_accept(&store, &hasher, &token, None, None).await;
    assert!(matches!(missing, Err(InvitationError::Invalid(_))));
}

#[tokio::test]
async fn an_invitation_works_once_and_not_after_revocation() {
    let store = MemoryStore::new();
    let hasher = hasher();
    let owner = sign_up(&store, &hasher, "owner@example.com").await;
    let token = invite(&store, &session(&owner), "new@example.com", Role::Member)
        .await
        .expect("invited");
    let joined = try_accept(&store, &hasher, &token, Some("my own password"), None)
        .await
        .expect("new account joins with its own password");
    assert_eq!(joined.tenant.id, owner.tenant.id);
    let again = try_accept(&store, &hasher, &token, Some("my own password"), None).await;
    assert!(
        matches!(again, Err(InvitationError::NotFound)),
        "single use"
    );

    let token = invite(&store, &session(&owner), "late@example.com", Role::Viewer)
        .await
        .expect("invited");
    let (principal, uow) = authenticate(&store, &settings(), &session(&owner))
        .await
        .expect("auth");
    let id = {
        let (p, u) = authenticate(&store, &settings(), &session(&owner))
            .await
            .expect("auth");
        app::invitations::list_invitations(u, &p)
            .await
            .expect("listed")[0]
            .id
    };
    revoke_invitation(uow, &principal, id)
        .await
        .expect("revoked");
    let revoked = try_accept(&store, &hasher, &token, Some("my own password"), None).await;
    assert!(matches!(revoked, Err(InvitationError::NotFound)));
}

#[tokio::test]
async fn an_existing_account_joins_with_its_own_session_and_no_other() {
    let store = MemoryStore::new();
    let hasher = hasher();
    let owner = sign_up(&store, &hasher, "owner@example.com").await;
    let grace = sign_up(&store, &hasher, "grace@example.com").await;
    let mallory = sign_up(&store, &hasher, "mallory@example.com").await;
    let token = invite(&store, &session(&owner), "grace@example.com", Role::Member)
        .await
        .expect("invited");
    let wrong = try_accept(&store, &hasher, &token, None, Some(&session(&mallory))).await;
    assert!(matches!(wrong, Err(InvitationError::WrongAccount)));
    let joined = try_accept(&store, &hasher, &token, None, Some(&session(&grace)))
        .await
        .expect("her own session proves the account");
    assert_eq!(joined.user.id, grace.user.id);
    assert_eq!(joined.tenant.id, owner.tenant.id);
}

#[tokio::test]
async fn a_members_manage_key_invites_members_but_hands_out_no_admin_power() {
    let store = MemoryStore::new();
    let hasher = hasher();
    let owner = sign_up(&store, &hasher, "owner@example.com").await;
    let narrow = key_of(&store, &session(&owner), &["members:manage"]).await;
    assert!(
        invite(&store, &narrow, "m@example.com", Role::Member)
            .await
            .is_ok()
    );
    assert!(matches!(
        invite(&store, &narrow, "a@example.com", Role::Admin).await,
        Err(InvitationError::Forbidden(_))
    ));
    let viewer = join(
        &store,
        &hasher,
        &owner,
        "viewer@example.com",
        Role::Viewer,
        "a long enough password",
    )
    .await;
    let (principal, uow) = authenticate(&store, &settings(), &narrow)
        .await
        .expect("auth");
    let promoted = change_member_role(uow, &principal, viewer.user.id, Role::Admin).await;
    assert!(
        matches!(promoted, Err(MemberError::Forbidden(_))),
        "a scoped key cannot make an admin"
    );
}

#[tokio::test]
async fn every_key_in_a_chain_answers_to_the_member_at_its_root() {
    let store = MemoryStore::new();
    let hasher = hasher();
    let owner = sign_up(&store, &hasher, "owner@example.com").await;
    let admin = join(
        &store,
        &hasher,
        &owner,
        "admin@example.com",
        Role::Admin,
        "a long enough password",
    )
    .await;
    let first = key_of(&store, &session(&admin), &["*"]).await;
    let second = key_of(&store, &first, &["*"]).await;
    let third = key_of(&store, &second, &["*"]).await;
    let (principal, _) = authenticate(&store, &settings(), &third)
        .await
        .expect("auth");
    assert_eq!(principal.acting_for(), admin.user.id);
    assert_eq!(principal.role, Role::Admin);

    let (owner_principal, uow) = authenticate(&store, &settings(), &session(&owner))
        .await
        .expect("auth");
    change_member_role(uow, &owner_principal, admin.user.id, Role::Viewer)
        .await
        .expect("demoted");
    let (principal, _) = authenticate(&store, &settings(), &third)
        .await
        .expect("auth");
    assert_eq!(principal.role, Role::Viewer, "capped at once");

    let (owner_principal, uow) = authenticate(&store, &settings(), &session(&owner))
        .await
        .expect("auth");
    remove_member(uow, &owner_principal, admin.user.id)
        .await
        .expect("removed");
    for key in [&first, &second, &third] {
        assert!(matches!(
            authenticate(&store, &settings(), key).await,
            Err(AuthError::Unauthenticated)
        ));
    }
}
