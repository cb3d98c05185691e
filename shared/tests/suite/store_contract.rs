//! One contract for the store trait, run against both stores: the same cases and the same
//! expectations. The DynamoDB runs use the server the test command starts (moto).

use std::sync::Arc;

use serde_json::json;
use shared::domain::{
    Client, Lifetimes, NewUser, Session, SessionStatus, SignInToken, SignInTokenStatus, User,
};
use shared::store::{Expect, SessionFilter, Store, StoreError, Write};
use testkit::app::*;

const LIFE: Lifetimes = Lifetimes {
    session_max_ms: 7 * 86_400_000,
    inactivity_ms: 30 * 86_400_000,
    activity_interval_ms: 3_600_000,
};

fn client(now: i64) -> Client {
    Client {
        id: shared::ids::new_id("client"),
        rotating_token: shared::ids::new_secret(),
        last_active_session_id: None,
        created_at: now,
        updated_at: now,
        expires_at: now + 86_400_000,
        anonymous_until: None,
        sign_in: None,
        sign_up: None,
        version: 1,
    }
}

fn user(now: i64) -> User {
    User::create(
        NewUser {
            first_name: Some("Ada".into()),
            ..NewUser::default()
        },
        now,
    )
}

testkit::each_store!(
    keyring_first_writer_wins,
    users_round_trip_and_batch,
    writes_check_their_expectations,
    a_failed_commit_writes_nothing,
    client_reads_its_sessions_in_one_call,
    sessions_are_found_by_id_and_listed,
    sign_in_tokens_round_trip,
    racing_session_actions_keep_the_invariants,
    racing_ticket_redemptions_sign_in_once,
    jwt_templates_are_unique_by_name,
    session_field_writes_check_their_conditions,
    concurrent_commits_land_or_conflict_each_alone,
    a_one_time_credential_is_spent_once,
);

/// `Write::UseOnce`: a key is spent once until its record expires; the very same write
/// repeated (a store call retried after a lost answer) finds itself and lands again;
/// `forget_use` (the fixtures' seed) makes it spendable again.
async fn a_one_time_credential_is_spent_once(store: Arc<dyn Store>) {
    let key = shared::ids::new_id("nonce");
    let now = START_MS;
    let first = Write::use_once(key.clone(), now, now + 60_000);
    store.commit(vec![first.clone()]).await.unwrap();
    store
        .commit(vec![first])
        .await
        .expect("the same write again: a retried call");
    let second = Write::use_once(key.clone(), now + 1_000, now + 60_000);
    assert!(matches!(
        store.commit(vec![second]).await,
        Err(StoreError::Conflict)
    ));
    // Expired: the record no longer stands in the way.
    let later = Write::use_once(key.clone(), now + 60_000, now + 120_000);
    store.commit(vec![later]).await.unwrap();
    store
        .commit(vec![Write::forget_use(key.clone())])
        .await
        .unwrap();
    store
        .commit(vec![Write::use_once(key, now + 61_000, now + 120_000)])
        .await
        .unwrap();
}

/// Many commits at once (on SQLite they share transactions: group commit): each lands or
/// conflicts as if it were alone. Of racing updates of one record exactly one lands; a
/// commit holding one stale write writes nothing, even its good writes; the rest land.
async fn concurrent_commits_land_or_conflict_each_alone(store: Arc<dyn Store>) {
    let contested = user(START_MS);
    store
        .commit(vec![Write::user(contested.clone())])
        .await
        .unwrap();
    let mut commits = tokio::task::JoinSet::new();
    for i in 0..48 {
        let store = Arc::clone(&store);
        let contested = contested.clone();
        commits.spawn(async move {
            let fresh = user(START_MS);
            let writes = match i % 3 {
                // A new user: always lands.
                0 => vec![Write::user(fresh.clone())],
                // An update of the contested user read at version 1: one lands.
                1 => {
                    let mut next = contested;
                    next.version = 2;
                    next.first_name = Some(format!("racer {i}"));
                    vec![Write::user(next)]
                }
                // A new user beside a stale write: nothing lands.
                _ => {
                    let mut stale = contested;
                    stale.version = 7;
                    vec![Write::user(fresh.clone()), Write::user(stale)]
                }
            };
            (i % 3, fresh.id, store.commit(writes).await)
        });
    }
    let mut landed_updates = 0;
    while let Some(outcome) = commits.join_next().await {
        let (kind, fresh_id, result) = outcome.unwrap();
        let stored = store.get_user(&fresh_id).await.unwrap();
        match kind {
            0 => {
                result.unwrap();
                assert!(stored.is_some(), "a lone new user lands");
            }
            1 => match result {
                Ok(()) => landed_updates += 1,
                Err(StoreError::Conflict) => {}
                Err(e) => panic!("{e}"),
            },
            _ => {
                assert!(matches!(result, Err(StoreError::Conflict)));
                assert!(stored.is_none(), "nothing of a conflicting commit lands");
            }
        }
    }
    assert_eq!(landed_updates, 1, "one of the racing updates lands");
    let after = store.get_user(&contested.id).await.unwrap().unwrap();
    assert_eq!(after.version, 2);
    assert!(after.first_name.unwrap().starts_with("racer "));
}

async fn keyring_first_writer_wins(store: Arc<dyn Store>) {
    use shared::keyring::{new_client_secret, new_signing_key, KeyringRecord, Sealer};
    use shared::store::Expect;
    assert!(store.keyring().await.unwrap().is_none());
    assert!(store.public_keys().await.unwrap().is_none());
    let fresh = || async {
        KeyringRecord::initial(
            new_signing_key(&Sealer::Plain, START_MS).await.unwrap(),
            new_client_secret(&Sealer::Plain, START_MS).await.unwrap(),
        )
    };
    let first = fresh().await;
    store
        .put_keyring(first.clone(), Expect::Absent)
        .await
        .unwrap();
    assert!(matches!(
        store.put_keyring(fresh().await, Expect::Absent).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.keyring().await.unwrap(), Some(first.clone()));
    assert_eq!(
        store.public_keys().await.unwrap(),
        Some(first.public_view())
    );
    // Later writes name the version they read.
    let mut second = first.clone();
    second.version = 2;
    assert!(matches!(
        store.put_keyring(second.clone(), Expect::Version(2)).await,
        Err(StoreError::Conflict)
    ));
    store
        .put_keyring(second.clone(), Expect::Version(1))
        .await
        .unwrap();
    assert_eq!(store.keyring().await.unwrap(), Some(second.clone()));
    assert_eq!(store.public_keys().await.unwrap().unwrap().version, 2);
}

async fn users_round_trip_and_batch(store: Arc<dyn Store>) {
    let mut u = user(START_MS);
    u.public_metadata
        .insert("plan".into(), json!({"tier": "pro", "seats": [1, 2]}));
    store.commit(vec![Write::user(u.clone())]).await.unwrap();
    assert_eq!(store.get_user(&u.id).await.unwrap(), Some(u.clone()));
    assert_eq!(store.get_user("user_unknown").await.unwrap(), None);

    // More ids than one BatchGetItem takes, with unknown ones among them.
    let mut ids = vec![u.id.clone()];
    let mut writes = Vec::new();
    for _ in 0..104 {
        let other = user(START_MS);
        ids.push(other.id.clone());
        writes.push(Write::user(other));
    }
    for chunk in writes.chunks(25) {
        store.commit(chunk.to_vec()).await.unwrap();
    }
    ids.push("user_unknown".into());
    let found = store.get_users(&ids).await.unwrap();
    assert_eq!(found.len(), 105);
    assert!(found.iter().any(|f| **f == u));

    // A deletion names the version it read; a stale one changes nothing.
    let banned = u.with_banned(true, START_MS + 1);
    store
        .commit(vec![Write::user(banned.clone())])
        .await
        .unwrap();
    assert_eq!(store.get_user(&u.id).await.unwrap(), Some(banned.clone()));
    let delete = |version| Write::DeleteUser {
        id: u.id.clone(),
        version,
    };
    assert!(matches!(
        store.commit(vec![delete(u.version)]).await,
        Err(StoreError::Conflict)
    ));
    assert!(store.get_user(&u.id).await.unwrap().is_some());
    store.commit(vec![delete(banned.version)]).await.unwrap();
    assert_eq!(store.get_user(&u.id).await.unwrap(), None);
    assert!(matches!(
        store.commit(vec![delete(banned.version)]).await,
        Err(StoreError::Conflict)
    ));
}

async fn writes_check_their_expectations(store: Arc<dyn Store>) {
    let c = client(START_MS);
    store.commit(vec![Write::client(c.clone())]).await.unwrap();
    // A second create of the same record is a conflict.
    assert!(matches!(
        store
            .commit(vec![Write::Client(c.clone(), Expect::Absent)])
            .await,
        Err(StoreError::Conflict)
    ));
    // An update names the version it read.
    let mut next = c.clone();
    next.version = 2;
    next.last_active_session_id = Some("sess_x".into());
    store
        .commit(vec![Write::client(next.clone())])
        .await
        .unwrap();
    // A stale writer (also at version 1) loses.
    let mut stale = c.clone();
    stale.version = 2;
    assert!(matches!(
        store.commit(vec![Write::client(stale)]).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.get_client(&c.id).await.unwrap().unwrap().client, next);
    // Updating a record that does not exist is a conflict too.
    let mut ghost = client(START_MS);
    ghost.version = 5;
    assert!(matches!(
        store.commit(vec![Write::client(ghost.clone())]).await,
        Err(StoreError::Conflict)
    ));
    assert!(store.get_client(&ghost.id).await.unwrap().is_none());
}

async fn a_failed_commit_writes_nothing(store: Arc<dyn Store>) {
    let c = client(START_MS);
    let u = user(START_MS);
    store
        .commit(vec![Write::client(c.clone()), Write::user(u.clone())])
        .await
        .unwrap();
    let session = Session::start(&c.id, &u.id, START_MS, LIFE);
    let mut moved = c.clone();
    moved.version = 2;
    moved.last_active_session_id = Some(session.id.clone());
    let mut stale_user = u.clone();
    stale_user.version = 3; // expects version 2, the store has 1
    let result = store
        .commit(vec![
            Write::NewSession(session.clone()),
            Write::client(moved),
            Write::user(stale_user),
        ])
        .await;
    assert!(matches!(result, Err(StoreError::Conflict)));
    let state = store.get_client(&c.id).await.unwrap().unwrap();
    assert_eq!(state.client, c, "the client is unchanged");
    assert!(state.sessions.is_empty(), "no session was created");
    assert!(store.get_session(&session.id).await.unwrap().is_none());
    assert_eq!(store.get_user(&u.id).await.unwrap(), Some(u));
}

async fn client_reads_its_sessions_in_one_call(store: Arc<dyn Store>) {
    let c = client(START_MS);
    let u = user(START_MS);
    store
        .commit(vec![Write::client(c.clone()), Write::user(u.clone())])
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        let s = Session::start(&c.id, &u.id, START_MS + i, LIFE);
        ids.push(s.id.clone());
        store.commit(vec![Write::NewSession(s)]).await.unwrap();
    }
    // A removed session is still the client's (the wire hides it, not the store).
    let read = store.get_session(&ids[1]).await.unwrap().unwrap();
    store
        .commit(vec![Write::session_status(
            &read,
            SessionStatus::Removed,
            START_MS + 10,
        )])
        .await
        .unwrap();
    let other = client(START_MS);
    store
        .commit(vec![Write::client(other.clone())])
        .await
        .unwrap();

    let state = store.get_client(&c.id).await.unwrap().unwrap();
    assert_eq!(
        state
            .sessions
            .iter()
            .map(|s| s.id.clone())
            .collect::<Vec<_>>(),
        ids,
        "oldest first"
    );
    assert_eq!(state.sessions[1].status, SessionStatus::Removed);
    assert!(store
        .get_client(&other.id)
        .await
        .unwrap()
        .unwrap()
        .sessions
        .is_empty());
    assert!(store.get_client("client_unknown").await.unwrap().is_none());
}

async fn sessions_are_found_by_id_and_listed(store: Arc<dyn Store>) {
    let (c1, c2) = (client(START_MS), client(START_MS));
    let (u1, u2) = (user(START_MS), user(START_MS));
    store
        .commit(vec![
            Write::client(c1.clone()),
            Write::client(c2.clone()),
            Write::user(u1.clone()),
            Write::user(u2.clone()),
        ])
        .await
        .unwrap();
    let a = Session::start(&c1.id, &u1.id, START_MS, LIFE);
    let b = Session::start(&c1.id, &u2.id, START_MS + 1, LIFE);
    let c = Session::start(&c2.id, &u1.id, START_MS + 2, LIFE);
    for s in [&a, &b, &c] {
        store
            .commit(vec![Write::NewSession(s.clone())])
            .await
            .unwrap();
    }
    assert_eq!(store.get_session(&b.id).await.unwrap(), Some(b.clone()));
    assert_eq!(store.get_session("sess_unknown").await.unwrap(), None);

    let ids = |v: Vec<Session>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    let by_client = SessionFilter {
        client_id: Some(c1.id.clone()),
        user_id: None,
        ..SessionFilter::default()
    };
    assert_eq!(
        ids(store.list_sessions(&by_client).await.unwrap()),
        [b.id.clone(), a.id.clone()],
        "newest first"
    );
    let by_user = SessionFilter {
        client_id: None,
        user_id: Some(u1.id.clone()),
        ..SessionFilter::default()
    };
    assert_eq!(
        ids(store.list_sessions(&by_user).await.unwrap()),
        [c.id.clone(), a.id.clone()]
    );
    let both = SessionFilter {
        client_id: Some(c1.id.clone()),
        user_id: Some(u1.id.clone()),
        ..SessionFilter::default()
    };
    assert_eq!(
        ids(store.list_sessions(&both).await.unwrap()),
        vec![a.id.clone()]
    );
    // The newest only, read no further (what `/v1/me` asks for).
    let newest = SessionFilter {
        user_id: Some(u1.id.clone()),
        newest: Some(1),
        ..SessionFilter::default()
    };
    assert_eq!(
        ids(store.list_sessions(&newest).await.unwrap()),
        std::slice::from_ref(&c.id)
    );
    let all = store
        .list_sessions(&SessionFilter::default())
        .await
        .unwrap();
    assert_eq!(ids(all), [c.id.clone(), b.id.clone(), a.id.clone()]);
}

async fn sign_in_tokens_round_trip(store: Arc<dyn Store>) {
    let token = SignInToken {
        id: shared::ids::new_id("sit"),
        user_id: "user_1".into(),
        ticket_hash: "ab".repeat(32),
        status: SignInTokenStatus::Pending,
        created_at: START_MS,
        updated_at: START_MS,
        expires_at: START_MS + 60_000,
        version: 1,
        redeemed: None,
    };
    store
        .commit(vec![Write::sign_in_token(token.clone())])
        .await
        .unwrap();
    assert_eq!(
        store.get_sign_in_token(&token.ticket_hash).await.unwrap(),
        Some(token.clone())
    );
    assert_eq!(
        store.get_sign_in_token(&"cd".repeat(32)).await.unwrap(),
        None
    );
    let mut used = token.clone();
    used.status = SignInTokenStatus::Accepted;
    used.version = 2;
    store
        .commit(vec![Write::sign_in_token(used.clone())])
        .await
        .unwrap();
    // A second redemption that read the pending ticket loses.
    assert!(matches!(
        store.commit(vec![Write::sign_in_token(used)]).await,
        Err(StoreError::Conflict)
    ));
}

/// Many requests race end, remove, touch, revoke and token minting on one session. Each
/// answer is one a sequential run could give, and the end state agrees with the answers.
async fn racing_session_actions_keep_the_invariants(store: Arc<dyn Store>) {
    let app = Arc::new(TestApp::on(store).await);
    let (token, sid, _) = app.native_session().await;
    let mut tasks = Vec::new();
    for round in 0..3 {
        for action in ["end", "remove", "touch", "revoke", "tokens", "tokens"] {
            let (app, token, sid) = (Arc::clone(&app), token.clone(), sid.clone());
            tasks.push(tokio::spawn(async move {
                let resp = if action == "revoke" {
                    app.send(Req::post(format!("/v1/sessions/{sid}/revoke")).secret())
                        .await
                } else {
                    app.send(
                        Req::post(format!("/v1/client/sessions/{sid}/{action}")).native(&token),
                    )
                    .await
                };
                (round, action, resp.status, resp.error_code().to_string())
            }));
        }
    }
    let mut wins = std::collections::HashMap::<&str, usize>::new();
    for task in tasks {
        let (_, action, status, code) = task.await.unwrap();
        match (action, status) {
            (_, 200) => *wins.entry(action).or_default() += 1,
            ("tokens", 401) => assert_eq!(code, "signed_out"),
            ("end" | "remove" | "touch" | "revoke", 400) => {
                assert_eq!(code, "invalid_action_for_session")
            }
            _ => panic!("{action}: unexpected {status} {code}"),
        }
    }
    let ended = wins.get("end").copied().unwrap_or(0);
    let revoked = wins.get("revoke").copied().unwrap_or(0);
    let removed = wins.get("remove").copied().unwrap_or(0);
    assert!(
        ended + revoked <= 1,
        "only one of end/revoke can leave active: {wins:?}"
    );
    assert_eq!(removed, 1, "exactly one remove succeeds: {wins:?}");

    let session = app.stored_session(&sid).await;
    assert_eq!(session.status, SessionStatus::Removed);
    let state = app
        .store
        .get_client(&session.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.last_active_session_id(app.now_ms()), None);
    // Nothing mints for it any more.
    let resp = app
        .send(Req::post(format!("/v1/client/sessions/{sid}/tokens")).native(&token))
        .await;
    resp.assert_error(401, "signed_out");
}

/// One ticket redeemed by many requests at once signs in exactly once.
async fn racing_ticket_redemptions_sign_in_once(store: Arc<dyn Store>) {
    let app = Arc::new(TestApp::on(store).await);
    let user = app.create_user().await;
    let ticket = app.ticket(&user).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (app, ticket) = (Arc::clone(&app), ticket.clone());
        tasks.push(tokio::spawn(async move {
            let resp = app
                .send(
                    Req::post("/v1/client/sign_ins?_is_native=1")
                        .form(&format!("strategy=ticket&ticket={ticket}")),
                )
                .await;
            (resp.status, resp.error_code().to_string())
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            (200, _) => ok += 1,
            (400, code) => assert_eq!(code, "ticket_invalid"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 1);
    let sessions = app
        .store
        .list_sessions(&SessionFilter {
            client_id: None,
            user_id: Some(user),
            ..SessionFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1, "one session, whatever the race");
}

async fn jwt_templates_are_unique_by_name(store: Arc<dyn Store>) {
    let template = |name: &str, at: i64| shared::domain::JwtTemplate {
        id: shared::ids::new_id("jtmp"),
        name: name.into(),
        claims: json!({"a": "{{user.id}}"}).as_object().unwrap().clone(),
        lifetime: 60,
        allowed_clock_skew: 5,
        custom_signing_key: true,
        signing_algorithm: shared::domain::SigningAlgorithm::HS256,
        signing_key: Some(shared::domain::SigningKey::new("k".repeat(40))),
        created_at: at,
        updated_at: at,
        version: 1,
    };
    let a = template("a", START_MS);
    store
        .commit(vec![Write::jwt_template(a.clone())])
        .await
        .unwrap();
    store
        .commit(vec![Write::jwt_template(template("b", START_MS + 1))])
        .await
        .unwrap();
    // The same name twice loses, whatever the id.
    assert!(matches!(
        store
            .commit(vec![Write::jwt_template(template("a", START_MS))])
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.get_jwt_template("a").await.unwrap(), Some(a.clone()));

    // A rename is a delete and a create in one commit; onto a taken name it changes nothing.
    let mut renamed = a.clone();
    renamed.name = "b".into();
    renamed.version = 2;
    let rename = |to: shared::domain::JwtTemplate| {
        vec![
            Write::DeleteJwtTemplate {
                name: "a".into(),
                version: 1,
            },
            Write::JwtTemplate(to, Expect::Absent),
        ]
    };
    assert!(matches!(
        store.commit(rename(renamed.clone())).await,
        Err(StoreError::Conflict)
    ));
    assert!(store.get_jwt_template("a").await.unwrap().is_some());
    renamed.name = "c".into();
    store.commit(rename(renamed.clone())).await.unwrap();
    assert!(store.get_jwt_template("a").await.unwrap().is_none());
    assert_eq!(
        store.get_jwt_template("c").await.unwrap(),
        Some(renamed.clone())
    );

    let names: Vec<String> = store
        .list_jwt_templates()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["c", "b"], "oldest first");
    // A delete names the version it read.
    assert!(matches!(
        store
            .commit(vec![Write::DeleteJwtTemplate {
                name: "c".into(),
                version: 1
            }])
            .await,
        Err(StoreError::Conflict)
    ));
    store
        .commit(vec![Write::DeleteJwtTemplate {
            name: "c".into(),
            version: 2,
        }])
        .await
        .unwrap();
    assert_eq!(store.list_jwt_templates().await.unwrap().len(), 1);
}

/// Status and activity writes name no version: each has its own condition, so they never
/// conflict with each other, and a stale one loses.
async fn session_field_writes_check_their_conditions(store: Arc<dyn Store>) {
    let c = client(START_MS);
    let u = user(START_MS);
    let session = Session::start(&c.id, &u.id, START_MS, LIFE);
    store
        .commit(vec![
            Write::client(c.clone()),
            Write::user(u),
            Write::NewSession(session.clone()),
        ])
        .await
        .unwrap();
    let conflict = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Conflict));

    // Activity moves forward only, slides abandon_at, and keeps where it was seen.
    let seen = shared::domain::SessionActivity {
        id: "sess_activity_1".into(),
        browser_name: Some("Firefox".into()),
        browser_version: Some("128.0".into()),
        device_type: Some("Linux".into()),
        is_mobile: false,
        ip_address: Some("192.0.2.7".into()),
        city: Some("Zürich".into()),
        country: Some("CH".into()),
    };
    let later = session.with_activity(START_MS + 5_000, LIFE, Some(&seen));
    store
        .commit(vec![Write::session_activity(&later)])
        .await
        .unwrap();
    let earlier = session.with_activity(START_MS + 4_000, LIFE, None);
    assert!(conflict(
        store.commit(vec![Write::session_activity(&earlier)]).await
    ));
    let stored = store.get_session(&session.id).await.unwrap().unwrap();
    assert_eq!(stored.last_active_at, START_MS + 5_000);
    assert_eq!(stored.abandon_at, START_MS + 5_000 + LIFE.inactivity_ms);
    assert_eq!(stored.latest_activity.as_ref(), Some(&seen));

    // A status write still holds after activity (no version to go stale), and once: the
    // same write repeated (a retry after a lost answer) succeeds, another one conflicts.
    let end = Write::session_status(&session, SessionStatus::Ended, START_MS + 6_000);
    store.commit(vec![end.clone()]).await.unwrap();
    store.commit(vec![end]).await.unwrap();
    let another = Write::session_status(&session, SessionStatus::Ended, START_MS + 6_000);
    assert!(conflict(store.commit(vec![another]).await));
    let ended = store.get_session(&session.id).await.unwrap().unwrap();
    assert_eq!(ended.status, SessionStatus::Ended);
    assert_eq!(ended.last_active_at, START_MS + 5_000, "activity kept");

    // No activity for a signed-out session.
    let after = ended.with_activity(START_MS + 7_000, LIFE, None);
    assert!(conflict(
        store.commit(vec![Write::session_activity(&after)]).await
    ));

    // The client's pointer moves without a version, and only on an existing client.
    let pointer = |client_id: &str| Write::LastActiveSession {
        client_id: client_id.to_string(),
        session_id: session.id.clone(),
        at: START_MS + 8_000,
    };
    store.commit(vec![pointer(&c.id)]).await.unwrap();
    let state = store.get_client(&c.id).await.unwrap().unwrap();
    assert_eq!(
        state.client.last_active_session_id.as_deref(),
        Some(session.id.as_str())
    );
    assert_eq!(state.client.version, c.version, "no version change");
    assert_eq!(state.client.updated_at, START_MS + 8_000);
    assert_eq!(
        state.last_active_session_id(START_MS + 8_000),
        None,
        "shown only while signed in"
    );
    assert!(conflict(store.commit(vec![pointer("client_gone")]).await));
    assert!(store.get_client("client_gone").await.unwrap().is_none());
}
