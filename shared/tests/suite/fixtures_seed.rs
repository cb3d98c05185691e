//! The fixtures' seed (`shared::fixtures::seed`, what `local-api seed --fixtures` runs) on
//! each store: fixed ids and keyring, times counted from the moment of seeding, the same
//! client token every time; run again, it puts back what fixtures and time changed and
//! leaves every other record; a store with a keyring of its own is refused.

use std::sync::Arc;

use shared::clock::{Clock, ManualClock};
use shared::domain::{NewUser, SessionStatus, SignInTokenStatus, User};
use shared::fixtures::{self as f, SeedError};
use shared::keyring::service::KeyAccess;
use shared::keyring::{Rotation, Sealer};
use shared::state::AppState;
use shared::store::{Expect, SessionFilter, Store, Write};
use testkit::app::*;

testkit::each_store!(
    the_fixtures_seed_is_fixed_and_puts_its_records_back,
    the_fixtures_seed_refuses_a_store_with_a_keyring_of_its_own,
);

const DAY_SECS: i64 = 86_400;

/// A process on `store` with no keyring access, as `local-api seed` runs.
async fn seeder(store: &Arc<dyn Store>, clock: &Arc<ManualClock>) -> AppState {
    AppState::build(
        test_config(&[]),
        Arc::clone(store),
        clock.clone(),
        Sealer::Plain,
        KeyAccess::None,
    )
    .await
    .unwrap()
}

/// A process on `store` that signs and verifies, as a function does.
async fn function(store: &Arc<dyn Store>, clock: &Arc<ManualClock>) -> AppState {
    AppState::new(test_config(&[]), Arc::clone(store), clock.clone())
        .await
        .unwrap()
}

/// What every seed must leave, at `now`.
async fn assert_seeded(store: &Arc<dyn Store>, clock: &Arc<ManualClock>) {
    let now = clock.now_ms();
    let keyring = store.keyring().await.unwrap().unwrap();
    let kids: Vec<&str> = keyring
        .signing_keys
        .iter()
        .chain(&keyring.client_token_secrets)
        .map(|k| k.kid.as_str())
        .collect();
    assert_eq!(kids, [f::SIGNING_KEY_KID, f::CLIENT_SECRET_KID]);

    // The fixed client token verifies, names the client, and needs no re-signing.
    let state = function(store, clock).await;
    let (claims, stale) = state
        .keys()
        .verify_client_token(f::CLIENT_TOKEN, now)
        .unwrap();
    assert_eq!((claims.id.as_str(), stale), (f::CLIENT_ID, false));
    assert_eq!(state.keys().signer(now).unwrap().kid(), f::SIGNING_KEY_KID);

    let user = store.get_user(f::USER_ID).await.unwrap().unwrap();
    assert_eq!(user.first_name.as_deref(), Some("Ada"));
    assert_eq!(user.last_name, None);
    assert_eq!(user.identifier(), "ada@example.com");
    assert_eq!(user.private_metadata["tier"], "gold");

    let client = store.get_client(f::CLIENT_ID).await.unwrap().unwrap();
    let sessions: Vec<(&str, SessionStatus)> = client
        .sessions
        .iter()
        .map(|s| (s.id.as_str(), s.status_at(now)))
        .collect();
    assert_eq!(
        sessions,
        [
            (f::SESSION_ID, SessionStatus::Active),
            (f::ENDED_SESSION_ID, SessionStatus::Ended)
        ]
    );
    assert_eq!(client.last_active_session_id(now), Some(f::SESSION_ID));
    let active = &client.sessions[0];
    assert_eq!(active.last_active_at, now);
    assert!(active.expire_at > now && active.abandon_at > now);
    assert_eq!(client.client.expires_at, f::CLIENT_TOKEN_EXPIRES_AT_MS);
    let by_user = SessionFilter {
        user_id: Some(f::USER_ID.into()),
        ..SessionFilter::default()
    };
    assert_eq!(store.list_sessions(&by_user).await.unwrap().len(), 2);
    assert_eq!(
        store.get_session(f::SESSION_ID).await.unwrap().as_ref(),
        Some(active)
    );

    let ticket = store
        .get_sign_in_token(&shared::domain::ticket_hash(f::TICKET))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ticket.status, SignInTokenStatus::Pending);
    assert_eq!(ticket.expires_at, now + 30 * DAY_SECS * 1000);

    let template = store
        .get_jwt_template(f::TEMPLATE_NAME)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(template.id, f::TEMPLATE_ID);
    let with_id = store.list_jwt_templates().await.unwrap();
    assert_eq!(with_id.iter().filter(|t| t.id == f::TEMPLATE_ID).count(), 1);
}

async fn the_fixtures_seed_is_fixed_and_puts_its_records_back(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::new(START_MS));
    f::seed(&seeder(&store, &clock).await).await.unwrap();
    assert_seeded(&store, &clock).await;

    // What playing fixtures does: end the active session, redeem the ticket, rename the
    // template, edit the user, rotate the keys; and records of others beside them.
    let now = clock.now_ms();
    let active = store.get_session(f::SESSION_ID).await.unwrap().unwrap();
    let ticket = store
        .get_sign_in_token(&shared::domain::ticket_hash(f::TICKET))
        .await
        .unwrap()
        .unwrap();
    let template = store
        .get_jwt_template(f::TEMPLATE_NAME)
        .await
        .unwrap()
        .unwrap();
    let mut renamed = template.clone();
    renamed.name = "renamed".into();
    let mut user = store.get_user(f::USER_ID).await.unwrap().unwrap();
    user.last_name = Some("Hopper".into());
    user.version += 1;
    let other_user = User::create(NewUser::default(), now);
    let mut other_template = template.clone();
    other_template.id = shared::ids::new_id("jtmp");
    other_template.name = "other".into();
    store
        .commit(vec![
            Write::session_status(&active, SessionStatus::Ended, now),
            Write::sign_in_token(ticket.accepted(now, "client_x", "sess_x")),
            Write::DeleteJwtTemplate {
                name: template.name.clone(),
                version: template.version,
            },
            Write::JwtTemplate(renamed, Expect::Absent),
            Write::user(user),
            Write::user(other_user.clone()),
            Write::JwtTemplate(other_template, Expect::Absent),
        ])
        .await
        .unwrap();
    shared::app::keys::rotate(&function(&store, &clock).await, Rotation::default())
        .await
        .unwrap();
    let version = store.keyring().await.unwrap().unwrap().version;

    // Eight days on, the seeded session would have expired anyway (its lifetime is 7).
    clock.advance_secs(8 * DAY_SECS);
    f::seed(&seeder(&store, &clock).await).await.unwrap();
    assert_seeded(&store, &clock).await;
    assert_eq!(store.keyring().await.unwrap().unwrap().version, version + 1);
    assert!(store.get_user(&other_user.id).await.unwrap().is_some());
    let mut names: Vec<String> = store
        .list_jwt_templates()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    names.sort();
    assert_eq!(names, ["hasura", "other"]);
}

async fn the_fixtures_seed_refuses_a_store_with_a_keyring_of_its_own(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::new(START_MS));
    // A function has run on it: it made a keyring of its own.
    let before = function(&store, &clock).await;
    let keyring = store.keyring().await.unwrap();
    let refused = f::seed(&seeder(&store, &clock).await).await;
    assert!(
        matches!(refused, Err(SeedError::ForeignKeyring)),
        "{refused:?}"
    );
    assert_eq!(store.keyring().await.unwrap(), keyring);
    assert!(store.get_user(f::USER_ID).await.unwrap().is_none());
    drop(before);
}
