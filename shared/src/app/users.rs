//! A user's lifecycle from the Backend API: creation and update (with a password hashed,
//! or a digest imported), a ban (every signed-in session revoked, and sign-ins refused
//! until the user is unbanned), an unban, and a deletion (every signed-in session ended,
//! then the user record deleted).

use super::passwords::{digest_of, user_inputs, NewPassword};
use super::{commit_per_session, events, landed, retrying, session_event};
use crate::domain::identifier::changed_identifiers;
use crate::domain::{Identifier, NewUser, SessionAction, User};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{SessionFilter, StoreError, Write};
use crate::webhooks::{EventType, RequestOrigin};

/// Creates the user, with `password` hashed (or imported) first: nothing is written
/// when it is refused.
pub async fn create(
    state: &AppState,
    new: NewUser,
    password: Option<NewPassword>,
    origin: &RequestOrigin,
) -> Result<User, ApiError> {
    let mut user = User::create(new, state.now());
    if let Some(password) = password {
        user.password = Some(digest_of(password, user_inputs(&user)).await?);
        user.password_last_updated_at = Some(user.created_at);
    }
    let mut writes = identifier_writes(state, None, Some(&user)).await?;
    writes.extend(written(state, &user, EventType::UserCreated, origin).await?);
    match state.store.commit(writes).await {
        Ok(()) => Ok(user),
        // Only an identifier can conflict for a new user: another took it meanwhile.
        Err(StoreError::Conflict) => Err(identifier_taken(state, &user).await?),
        Err(e) => Err(e.into()),
    }
}

/// The identifier writes of a user going from `before` to `after` (`None`: new, or
/// deleted): each new email address or username must be free (else 422
/// `form_identifier_exists`), and each one given up is released if the user held it.
pub(crate) async fn identifier_writes(
    state: &AppState,
    before: Option<&User>,
    after: Option<&User>,
) -> Result<Vec<Write>, ApiError> {
    let (taken, released) = changed_identifiers(before, after);
    let mut writes = Vec::new();
    if let Some(user) = after {
        for key in taken {
            match state.store.get_identifier(&key).await? {
                None => writes.push(Write::Identifier(Identifier {
                    key,
                    user_id: user.id.clone(),
                })),
                Some(held) if held.user_id == user.id => {}
                Some(_) => return Err(ApiError::identifier_exists(param_of(&key))),
            }
        }
    }
    if let Some(user) = before {
        for key in released {
            if let Some(held) = state.store.get_identifier(&key).await? {
                if held.user_id == user.id {
                    writes.push(Write::ReleaseIdentifier { key });
                }
            }
        }
    }
    Ok(writes)
}

/// The parameter an identifier key came from.
fn param_of(key: &str) -> &'static str {
    if key.starts_with("username:") {
        "username"
    } else {
        "email_address"
    }
}

/// After a commit that conflicted: the identifier of `user` someone else holds now, as
/// its error (a plain 409 when none is: the race was over something else).
async fn identifier_taken(state: &AppState, user: &User) -> Result<ApiError, ApiError> {
    for key in user.identifier_keys() {
        if let Some(held) = state.store.get_identifier(&key).await? {
            if held.user_id != user.id {
                return Ok(ApiError::identifier_exists(param_of(&key)));
            }
        }
    }
    Ok(ApiError::conflict("The user"))
}

/// Applies `changes` (which check their own input first) and `password` to the user, in
/// one write conditioned on the version read (a lost race is 409: the caller's update was
/// made against a user that changed). With `sign_out` and a new password, every
/// signed-in session of the user is then revoked.
pub async fn update(
    state: &AppState,
    id: &str,
    changes: impl FnOnce(&mut User) -> Result<(), ApiError>,
    password: Option<NewPassword>,
    sign_out: bool,
    origin: &RequestOrigin,
) -> Result<User, ApiError> {
    let before = find(state, id).await?;
    let mut user = before.clone();
    changes(&mut user)?;
    let now = state.now();
    let new_password = password.is_some();
    if let Some(password) = password {
        user.password = Some(digest_of(password, user_inputs(&user)).await?);
        user.password_last_updated_at = Some(now);
    }
    user.updated_at = now;
    user.version += 1;
    let mut writes = identifier_writes(state, Some(&before), Some(&user)).await?;
    writes.extend(written(state, &user, EventType::UserUpdated, origin).await?);
    match state.store.commit(writes).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Err(identifier_taken(state, &user).await?),
        Err(e) => return Err(e.into()),
    }
    if new_password && sign_out {
        let user = &user;
        retrying("sign_out_user", "The user's sessions", || async move {
            sign_out_everywhere(state, user, SessionAction::Revoke, origin).await
        })
        .await?;
    }
    Ok(user)
}

async fn find(state: &AppState, id: &str) -> Result<User, ApiError> {
    state
        .store
        .get_user(id)
        .await?
        .ok_or_else(|| ApiError::not_found("User"))
}

/// Signs out (revoke or end) every session of the user that is signed in now. Answers how
/// many it moved, or `None` when one of them changed meanwhile (the caller reads again;
/// those already moved are not signed in on the next read, so it converges).
async fn sign_out_everywhere(
    state: &AppState,
    user: &User,
    action: SessionAction,
    origin: &RequestOrigin,
) -> Result<Option<u64>, ApiError> {
    sign_out_all_but(state, user, action, None, origin).await
}

/// Revokes every signed-in session of the user but `keep` (a password reset's
/// `sign_out_of_other_sessions`: the session it made stays).
pub(crate) async fn revoke_other_sessions(
    state: &AppState,
    user: &User,
    keep: &str,
    origin: &RequestOrigin,
) -> Result<u64, ApiError> {
    retrying("sign_out_user", "The user's sessions", || async move {
        sign_out_all_but(state, user, SessionAction::Revoke, Some(keep), origin).await
    })
    .await
}

/// [`sign_out_everywhere`], but for the session `keep`.
async fn sign_out_all_but(
    state: &AppState,
    user: &User,
    action: SessionAction,
    keep: Option<&str>,
    origin: &RequestOrigin,
) -> Result<Option<u64>, ApiError> {
    // Every one of them: a ban or a deletion must reach them all.
    let filter = SessionFilter {
        client_id: None,
        user_id: Some(user.id.clone()),
        newest: None,
    };
    let now = state.now();
    let kind = session_event(action);
    let events = events(state, origin, now, kind).await?;
    // Each session's status write, with its event.
    let writes: Vec<Vec<Write>> = state
        .store
        .list_sessions(&filter)
        .await?
        .iter()
        .filter(|s| s.status_at(now).is_signed_in() && Some(s.id.as_str()) != keep)
        .filter_map(|s| {
            let to = s.check(action, now).ok()?;
            let mut writes = vec![Write::session_status(s, to, now)];
            if let (Some(events), Some(kind)) = (&events, kind) {
                let next = s.with_status(to, now);
                writes.push(Write::Event(events.session(kind, &next, Some(user))));
            }
            Some(writes)
        })
        .collect();
    let moved = writes.len() as u64;
    if !commit_per_session(state, writes).await? {
        return Ok(None);
    }
    crate::metrics::session_transitions(action.verb(), moved);
    Ok(Some(moved))
}

/// Bans the user: its sessions are revoked, then the user is marked banned (conditioned on
/// the version read, so a sign-in racing the ban either lands first, and its session is
/// revoked on the re-read, or reads the ban and is refused). Banning a banned user revokes
/// whatever is signed in and changes nothing else.
pub async fn ban(state: &AppState, id: &str, origin: &RequestOrigin) -> Result<User, ApiError> {
    retrying("ban_user", "The user", || async move {
        let user = find(state, id).await?;
        if sign_out_everywhere(state, &user, SessionAction::Revoke, origin)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        if user.banned {
            return Ok(Some(user));
        }
        let next = user.with_banned(true, state.now());
        let writes = updated(state, &next, origin).await?;
        Ok(landed(state.store.commit(writes).await)?.then_some(next))
    })
    .await
}

/// The write of a new or changed user (at its version), and its `kind` event
/// (`user.created` or `user.updated`), as every user write commits them.
pub(crate) async fn written(
    state: &AppState,
    user: &User,
    kind: EventType,
    origin: &RequestOrigin,
) -> Result<Vec<Write>, ApiError> {
    let mut writes = vec![Write::user(user.clone())];
    if let Some(events) = events(state, origin, user.updated_at, Some(kind)).await? {
        writes.push(Write::Event(events.user(kind, user)));
    }
    Ok(writes)
}

async fn updated(
    state: &AppState,
    user: &User,
    origin: &RequestOrigin,
) -> Result<Vec<Write>, ApiError> {
    written(state, user, EventType::UserUpdated, origin).await
}

/// Forgets the user's failed sign-in attempts, lifting a lock (conditioned on the
/// version read, so a failure counted meanwhile is decided again on the re-read).
pub async fn unlock(state: &AppState, id: &str) -> Result<User, ApiError> {
    retrying("unlock_user", "The user", || async move {
        let user = find(state, id).await?;
        if user.lockout.is_clear() {
            return Ok(Some(user));
        }
        let next = user.with_lockout(crate::domain::lockout::Lockout::cleared());
        Ok(landed(state.store.commit(vec![Write::user(next.clone())]).await)?.then_some(next))
    })
    .await
}

/// Lifts a ban: the user may sign in again (its revoked sessions stay revoked).
pub async fn unban(state: &AppState, id: &str, origin: &RequestOrigin) -> Result<User, ApiError> {
    retrying("unban_user", "The user", || async move {
        let user = find(state, id).await?;
        if !user.banned {
            return Ok(Some(user));
        }
        let next = user.with_banned(false, state.now());
        let writes = updated(state, &next, origin).await?;
        Ok(landed(state.store.commit(writes).await)?.then_some(next))
    })
    .await
}

/// Deletes the user: its sessions end, then the user record goes (conditioned on the
/// version read, as for a ban). Answers the id of the user deleted.
pub async fn delete(
    state: &AppState,
    id: &str,
    origin: &RequestOrigin,
) -> Result<String, ApiError> {
    retrying("delete_user", "The user", || async move {
        let user = find(state, id).await?;
        if sign_out_everywhere(state, &user, SessionAction::End, origin)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let mut writes = identifier_writes(state, Some(&user), None).await?;
        writes.push(Write::DeleteUser {
            id: user.id.clone(),
            version: user.version,
        });
        let kind = Some(EventType::UserDeleted);
        if let Some(events) = events(state, origin, state.now(), kind).await? {
            writes.push(Write::Event(events.user_deleted(&user)));
        }
        Ok(landed(state.store.commit(writes).await)?.then_some(user.id))
    })
    .await
}
