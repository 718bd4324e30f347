//! Time-dependent rules under a clock the test sets: expiries are shown by moving time,
//! not by sleeping. The store and the use cases read the same clock (through the unit of
//! work and the pre-authentication store), so what a use case computes and what the
//! adapter checks agree.

use std::sync::Arc;
use std::time::Duration;

use adapters_memory::{ManualClock, MemoryStore};
use app::api_keys::{ApiKeyError, NewKeyInput, create_api_key};
use app::auth::{AuthError, Credential, authenticate};
use app::identity::ClientInfo;
use app::invitations::InvitationError;
use app::qr::{QrError, generate_qr, scan_qr};
use domain::principal::Role;
use ports::Clock;
use time::macros::datetime;

use crate::identity::{hasher, session, settings, sign_up};
use crate::invitations::{invite, try_accept};

/// A store on a clock that shows a whole second (so timestamps compare exactly).
fn store_on_manual_clock() -> (MemoryStore, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(datetime!(2026-12-01 09:00 UTC)));
    (MemoryStore::with_clock(clock.clone()), clock)
}

#[tokio::test]
async fn an_invitation_works_until_its_seventh_day_ends_and_not_after() {
    let (store, clock) = store_on_manual_clock();
    let hasher = hasher();
    let owner = sign_up(&store, &hasher, "owner@example.com").await;
    let early = invite(&store, &session(&owner), "early@example.com", Role::Member)
        .await
        .expect("invited");
    let late = invite(&store, &session(&owner), "late@example.com", Role::Member)
        .await
        .expect("invited");

    clock.advance(Duration::from_secs(7 * 24 * 3600 - 60));
    let joined = try_accept(&store, &hasher, &early, Some("my own password"), None)
        .await
        .expect("a minute before expiry the invitation works");
    assert_eq!(joined.tenant.id, owner.tenant.id);

    clock.advance(Duration::from_secs(120));
    let expired = try_accept(&store, &hasher, &late, Some("my own password"), None).await;
    assert!(
        matches!(expired, Err(InvitationError::NotFound)),
        "a minute after expiry the token opens nothing: {expired:?}"
    );
}

#[tokio::test]
async fn an_api_key_stops_working_at_its_expiry_and_a_past_expiry_is_refused() {
    let (store, clock) = store_on_manual_clock();
    let owner = sign_up(&store, &hasher(), "owner@example.com").await;
    let in_an_hour = clock.now() + Duration::from_secs(3600);
    let (principal, uow) = authenticate(&store, &settings(), &session(&owner))
        .await
        .expect("auth");
    let created = create_api_key(
        uow,
        &principal,
        NewKeyInput {
            name: "for an hour".into(),
            scopes: vec!["contacts:read".into()],
            expires_at: Some(in_an_hour),
        },
    )
    .await
    .expect("created");
    assert_eq!(created.record.expires_at, Some(in_an_hour));
    let key = Credential::ApiKey(created.secret);
    assert!(authenticate(&store, &settings(), &key).await.is_ok());

    clock.advance(Duration::from_secs(3600));
    assert!(matches!(
        authenticate(&store, &settings(), &key).await,
        Err(AuthError::Unauthenticated)
    ));
    // The use case's own check reads the same clock: that hour is in the past now.
    let (principal, uow) = authenticate(&store, &settings(), &session(&owner))
        .await
        .expect("the owner's session is still live");
    let refused = create_api_key(
        uow,
        &principal,
        NewKeyInput {
            name: "too late".into(),
            scopes: vec!["contacts:read".into()],
            expires_at: Some(in_an_hour),
        },
    )
    .await;
    assert!(matches!(refused, Err(ApiKeyError::Invalid(_))));
}

#[tokio::test]
async fn a_qr_code_expires_after_its_lifetime_without_waiting_for_it() {
    let (store, clock) = store_on_manual_clock();
    let owner = sign_up(&store, &hasher(), "owner@example.com").await;
    let qr = generate_qr(&store, &settings(), &ClientInfo::default())
        .await
        .expect("generated");
    assert_eq!(qr.expires_at, clock.now() + settings().qr_ttl);

    clock.advance(settings().qr_ttl + Duration::from_secs(1));
    let (scanner, uow) = authenticate(&store, &settings(), &session(&owner))
        .await
        .expect("auth");
    assert!(matches!(
        scan_qr(uow, &scanner, qr.code.expose()).await,
        Err(QrError::Expired)
    ));
}
