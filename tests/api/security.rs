//! Adversarial tests over HTTP, each for a way across tenants or around the limits that
//! an outside review found (issue 11): every refusal has its attacker's twin, the same
//! request spelled differently, with another credential, or by a key minted by a key.

use domain::rate_limit::PolicyName;
use serde_json::json;

use crate::events::event_log_when;
use crate::helpers::{Reply, scalar_i64, spawn_app, spawn_app_with};
use crate::identity::{PASSWORD, accept, invite, join, log_in, remove_member, set_role, sign_up};
use crate::rate_limit::{limits, policy};

fn token_of(reply: &Reply) -> String {
    reply.body["data"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("a token in {}", reply.body))
        .to_owned()
}

#[actix_rt::test]
async fn a_pre_registered_address_gives_its_registrant_no_way_into_the_inviting_tenant() {
    let app = spawn_app().await;
    // The attacker registers the victim's address first, with a password they chose.
    let (attacker, attacker_tenant, _) = sign_up(&app, "victim@corp.example").await;
    let (corp, corp_tenant, _) = sign_up(&app, "boss@corp.example").await;

    // The old door is gone, in the envelope.
    let add = app
        .post(
            "/v1/members",
            &corp,
            &json!({"email": "victim@corp.example", "name": "V", "role": "admin", "password": "attacker-chosen"}),
        )
        .await;
    assert_eq!(add.status, 405);
    assert_eq!(add.code(), "METHOD_NOT_ALLOWED");

    // Inviting answers the same whether or not the address has an account.
    let known = invite(&app, &corp, "victim@corp.example", "admin").await;
    let unknown = invite(&app, &corp, "nobody@corp.example", "admin").await;
    assert_eq!((known.status, unknown.status), (201, 201));
    let keys = |reply: &Reply| {
        let mut keys: Vec<String> = reply.body["data"]
            .as_object()
            .expect("object")
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&known), keys(&unknown));
    assert_eq!(known.body["data"]["acceptedAt"], serde_json::Value::Null);
    assert!(token_of(&known).starts_with("crm_inv_"));

    // The attacker's password opens only the attacker's own tenant.
    let into_corp = app
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(&json!({"email": "victim@corp.example", "password": PASSWORD, "tenantId": corp_tenant})),
            &[],
        )
        .await;
    assert_eq!(into_corp.status, 403, "{}", into_corp.body);
    // Holding a session of the pre-registered account is no proof for another invitation
    // (the attacker never sees corp's token), and a token with a made-up password is not
    // proof of the existing account either.
    let guessed = accept(&app, &token_of(&known), "a new password I choose").await;
    assert_eq!(guessed.status, 401, "{}", guessed.body);
    assert_eq!(guessed.code(), "UNAUTHENTICATED");
    let db = app.db.owner().await;
    assert_eq!(
        scalar_i64(
            &db,
            &format!("SELECT count(*) FROM memberships WHERE tenant_id = '{corp_tenant}'")
        )
        .await,
        1,
        "nobody joined"
    );
    // The legitimate holder of the account (here: whoever knows its password) can accept,
    // once; the attacker's own tenant is untouched.
    let joined = accept(&app, &token_of(&known), PASSWORD).await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    assert_eq!(joined.body["data"]["tenant"]["id"], corp_tenant.as_str());
    assert_eq!(accept(&app, &token_of(&known), PASSWORD).await.status, 404);
    assert_eq!(
        app.get("/v1/me", &attacker).await.body["data"]["tenant"]["id"],
        attacker_tenant.as_str()
    );
}

#[actix_rt::test]
async fn an_invitation_token_is_stored_hashed_shown_once_and_announced_without_it() {
    let app = spawn_app().await;
    let (owner, _, _) = sign_up(&app, "owner@example.com").await;
    let invited = invite(&app, &owner, "grace@example.com", "member").await;
    let token = token_of(&invited);
    let listed = app.get("/v1/invitations", &owner).await;
    assert_eq!(listed.status, 200);
    assert!(!listed.body.to_string().contains(&token), "shown once");
    let db = app.db.owner().await;
    assert_eq!(
        scalar_i64(
            &db,
            &format!(
                "SELECT count(*) FROM invitations WHERE token_hash = sha256('{token}'::bytea)"
            )
        )
        .await,
        1,
        "stored as its SHA-256"
    );
    let events = event_log_when(&app, &owner, |log| {
        log.iter().any(|e| e["type"] == "invitation.created")
    })
    .await;
    let created = events
        .iter()
        .find(|e| e["type"] == "invitation.created")
        .expect("announced");
    assert_eq!(created["data"]["object"]["email"], "grace@example.com");
    assert_eq!(created["data"]["object"]["id"], invited.id().as_str());
    assert!(
        !serde_json::Value::Array(events.clone())
            .to_string()
            .contains(&token),
        "the event carries no token"
    );

    // Revoked: the token stops working; a second revocation is a conflict.
    let id = invited.id();
    let revoked = app
        .call(
            "DELETE",
            &format!("/v1/invitations/{id}"),
            Some(&owner),
            None,
            &[],
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(accept(&app, &token, PASSWORD).await.status, 404);
    let again = app
        .call(
            "DELETE",
            &format!("/v1/invitations/{id}"),
            Some(&owner),
            None,
            &[],
        )
        .await;
    assert_eq!(again.status, 409);
}

#[actix_rt::test]
async fn another_tenant_cannot_list_or_revoke_an_invitation() {
    let app = spawn_app().await;
    let (a, _, _) = sign_up(&app, "a@example.com").await;
    let (b, _, _) = sign_up(&app, "b@example.com").await;
    let invited = invite(&app, &b, "grace@example.com", "member").await;
    let id = invited.id();
    let revoke = app
        .call(
            "DELETE",
            &format!("/v1/invitations/{id}"),
            Some(&a),
            None,
            &[],
        )
        .await;
    assert_eq!(revoke.status, 404);
    assert!(
        !app.get("/v1/invitations", &a)
            .await
            .body
            .to_string()
            .contains(&id)
    );
    assert_eq!(
        accept(&app, &token_of(&invited), PASSWORD).await.status,
        200,
        "still valid for its invitee"
    );
}

#[actix_rt::test]
async fn only_the_invited_account_session_accepts_for_an_existing_account() {
    let app = spawn_app().await;
    let (owner, owner_tenant, _) = sign_up(&app, "owner@example.com").await;
    let (grace, _, grace_id) = sign_up(&app, "grace@example.com").await;
    let (mallory, _, _) = sign_up(&app, "mallory@example.com").await;
    let token = token_of(&invite(&app, &owner, "grace@example.com", "viewer").await);
    let body = json!({"token": token});
    let as_mallory = app
        .call(
            "POST",
            "/v1/auth/accept-invitation",
            Some(&mallory),
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(as_mallory.status, 403, "{}", as_mallory.body);
    let as_grace = app
        .call(
            "POST",
            "/v1/auth/accept-invitation",
            Some(&grace),
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(as_grace.status, 200, "{}", as_grace.body);
    assert_eq!(as_grace.body["data"]["user"]["id"], grace_id.as_str());
    assert_eq!(as_grace.body["data"]["tenant"]["id"], owner_tenant.as_str());
}

#[actix_rt::test]
async fn a_members_manage_key_can_neither_invite_nor_promote_an_admin() {
    let app = spawn_app().await;
    let (owner, _, _) = sign_up(&app, "owner@example.com").await;
    let (_, viewer_id) = join(&app, &owner, "viewer@example.com", "viewer").await;
    let narrow = app
        .post(
            "/v1/api-keys",
            &owner,
            &json!({"name": "people", "scopes": ["members:manage"]}),
        )
        .await;
    let narrow = narrow.body["data"]["key"].as_str().expect("key").to_owned();
    for role in ["admin", "owner"] {
        let promoted = set_role(&app, &narrow, &viewer_id, role).await;
        assert_eq!(promoted.status, 403, "{role}: {}", promoted.body);
        assert_eq!(
            invite(&app, &narrow, "x@example.com", role).await.status,
            403
        );
    }
    let member = set_role(&app, &narrow, &viewer_id, "member").await;
    assert_eq!(member.status, 200, "below admin it may: {}", member.body);
}

#[actix_rt::test]
async fn a_key_minted_by_a_key_answers_to_the_member_behind_the_chain() {
    let app = spawn_app().await;
    let (owner, _, _) = sign_up(&app, "owner@example.com").await;
    let (admin, admin_id) = join(&app, &owner, "admin@example.com", "admin").await;
    let mut creator = admin.clone();
    let mut chain = Vec::new();
    for depth in 0..3 {
        let made = app
            .post(
                "/v1/api-keys",
                &creator,
                &json!({"name": format!("depth {depth}"), "scopes": ["*"]}),
            )
            .await;
        assert_eq!(made.status, 201, "{}", made.body);
        let key = made.body["data"]["key"].as_str().expect("key").to_owned();
        let listed = app
            .get(&format!("/v1/api-keys/{}", made.id()), &owner)
            .await;
        assert_eq!(listed.body["data"]["actsFor"], admin_id.as_str());
        chain.push(key.clone());
        creator = key;
    }
    let deepest = chain.last().expect("a chain").clone();
    assert_eq!(
        app.get("/v1/me", &deepest).await.body["data"]["role"],
        "admin"
    );

    let demoted = set_role(&app, &owner, &admin_id, "viewer").await;
    assert_eq!(demoted.status, 200);
    for key in &chain {
        assert_eq!(app.get("/v1/me", key).await.body["data"]["role"], "viewer");
        let write = app
            .post("/v1/contacts", key, &json!({"firstName": "x"}))
            .await;
        assert_eq!(write.status, 403, "capped at once");
    }
    let removed = remove_member(&app, &owner, &admin_id).await;
    assert_eq!(removed.status, 200);
    for key in &chain {
        assert_eq!(
            app.get("/v1/me", key).await.status,
            401,
            "gone with the member"
        );
    }
}

/// Every spelling of the auth routes: either the router does not match it (404) or it is
/// counted under `auth`, and the `auth` quota holds across all of them.
#[actix_rt::test]
async fn auth_routes_are_limited_however_their_path_is_spelled() {
    let app = spawn_app_with(limits(&[policy(PolicyName::Auth, 200, 60)])).await;
    let routes = ["signup", "login", "demo-login", "accept-invitation"];
    let mut counted = 0;
    for route in routes {
        let (first, rest) = route.split_at(1);
        let encoded = format!("%{:02X}{rest}", first.as_bytes()[0]);
        for path in [
            format!("/v1/auth/{route}"),
            format!("/v1/auth/{encoded}"),
            format!("/v1/%61uth/{route}"),
            format!("/v1//auth/{route}"),
            format!("//v1/auth/{route}"),
            format!("/v1/auth/{route}/"),
        ] {
            let reply = app.call("POST", &path, None, Some(&json!({})), &[]).await;
            if reply.status == 404 {
                continue;
            }
            counted += 1;
            let policy = reply.header("ratelimit-policy").unwrap_or_default();
            assert!(
                policy.starts_with("\"auth\""),
                "{path} reached a handler ({}) under {policy:?}",
                reply.status
            );
        }
    }
    assert!(
        counted >= 2 * routes.len(),
        "the encoded spellings reach the handlers"
    );

    let tight = spawn_app_with(limits(&[policy(PolicyName::Auth, 3, 60)])).await;
    let spellings = [
        "/v1/auth/login",
        "/v1/auth/%6Cogin",
        "/v1/auth/l%6Fgin",
        "/v1/%61uth/login",
    ];
    let mut statuses = Vec::new();
    for path in spellings {
        let reply = tight
            .call(
                "POST",
                path,
                None,
                Some(&json!({"email": "a@example.com", "password": "wrong password"})),
                &[],
            )
            .await;
        statuses.push(reply.status);
        if reply.status == 429 {
            assert_eq!(reply.code(), "RATE_LIMITED");
            assert_eq!(reply.body["details"]["policy"], "auth");
        }
    }
    assert_eq!(
        statuses,
        vec![401, 401, 401, 429],
        "one quota for every spelling"
    );
}

#[actix_rt::test]
async fn made_up_credentials_share_their_address_quota_and_buy_no_bucket_of_their_own() {
    let app = spawn_app_with(limits(&[
        policy(PolicyName::Auth, 5, 60),
        policy(PolicyName::Authenticated, 1000, 60),
    ]))
    .await;
    let acme = app.tenant("Acme").await;
    // A real key seen once keeps its own bucket afterwards.
    assert_eq!(app.get("/v1/contacts", &acme.key).await.status, 200);

    let mut statuses = Vec::new();
    for n in 0..20 {
        let junk = format!("crm_sk_{n:040}");
        let reply = app.get("/v1/contacts", &junk).await;
        statuses.push(reply.status);
        let policy = reply.header("ratelimit-policy").unwrap_or_default();
        assert!(
            policy.starts_with("\"auth\""),
            "junk counted under auth: {policy}"
        );
        if reply.status == 429 {
            assert_eq!(reply.body["details"]["policy"], "auth");
        }
    }
    // The seen key used one token of the address's quota; four junk keys get their 401,
    // the other sixteen a 429 before any look-up.
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        16,
        "{statuses:?}"
    );
    // Garbage of any shape counts the same way.
    let garbage = app.get("/v1/contacts", "not-even-a-token").await;
    assert_eq!(garbage.status, 429);

    let known = app.get("/v1/contacts", &acme.key).await;
    assert_eq!(
        known.status, 200,
        "a credential that resolved is not locked out"
    );
    assert_eq!(
        known.header("ratelimit-policy").as_deref(),
        Some("\"authenticated\";q=1000;w=60")
    );
}

#[actix_rt::test]
async fn a_login_session_made_by_invitation_logs_in_like_any_other() {
    let app = spawn_app().await;
    let (owner, tenant, _) = sign_up(&app, "owner@example.com").await;
    let (session, _) = join(&app, &owner, "new@example.com", "member").await;
    assert_eq!(
        app.get("/v1/me", &session).await.body["data"]["tenant"]["id"],
        tenant.as_str()
    );
    let again = log_in(&app, "new@example.com", PASSWORD).await;
    assert_eq!(again.status, 200, "the account's own password");
}
