//! Sign-up (Clerk's `SignUp`): the fields, the email address verified by a code, then
//! the user and its first session created in one commit. The attempt lives on the
//! caller's client (`Client::sign_up`), like a sign-in's; its state machine is
//! `domain::sign_up`.

use super::clients;
use super::passwords::blocking;
use super::sign_ins::{send, Seen};
use super::users::identifier_writes;
use super::{landed, retrying};
use crate::auth_settings::SignUpMode;
use crate::clock::Millis;
use crate::domain::identifier::{email_key, username_key, valid_username};
use crate::domain::one_time_code::CodeRefused;
use crate::domain::sign_up::{SignUpAttempt, SignUpFields, SignUpRefused};
use crate::domain::{ClientState, NewUser, Session, User};
use crate::email::CodePurpose;
use crate::error::ApiError;
use crate::http::auth::ClientAuth;
use crate::state::AppState;
use crate::store::Write;
use crate::webhooks::EventType;

/// The fields a request gives, owned (hashing runs on the blocking pool).
#[derive(Default)]
pub struct Fields {
    pub email_address: Option<String>,
    pub password: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
}

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fields")
            .field("password", &self.password.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

/// A sign-up after a step: the client as stored, the attempt, and what a complete one
/// made.
pub struct SignUpView {
    pub client: ClientState,
    pub attempt: SignUpAttempt,
    pub user: Option<User>,
    pub session: Option<Session>,
}

pub fn refused(why: SignUpRefused) -> ApiError {
    match why {
        SignUpRefused::Password(rejected) => ApiError::password_rejected(rejected),
        SignUpRefused::Hashing(_) => ApiError::internal(),
        SignUpRefused::Code(CodeRefused::Incorrect { .. }) => ApiError::code_incorrect(),
        SignUpRefused::Code(CodeRefused::Expired) => ApiError::verification_expired(),
        SignUpRefused::Code(CodeRefused::Failed) => ApiError::verification_failed(),
        SignUpRefused::EmailInvalid => ApiError::param_invalid(
            "email_address",
            "email_address must be a valid email address.",
        ),
        SignUpRefused::WrongStatus => ApiError::status_invalid("sign-up", "missing_requirements"),
        SignUpRefused::TooManyCodes => ApiError::too_many_codes(),
    }
}

/// Checks what the instance does not take before anything is read or hashed.
fn admit(state: &AppState, fields: &Fields) -> Result<(), ApiError> {
    let auth = &state.config.auth;
    // Closed, or closed in effect: an address to verify and no way to send its code.
    if auth.sign_up == SignUpMode::Restricted
        || (auth.requirements.verify_email && !state.mailer.can_deliver())
    {
        return Err(ApiError::sign_up_restricted());
    }
    if let Some(username) = &fields.username {
        if !auth.username {
            return Err(ApiError::param_invalid(
                "username",
                "This application does not use usernames.",
            ));
        }
        if !valid_username(username) {
            return Err(ApiError::param_invalid(
                "username",
                "username must be 4 to 64 letters, digits, '_' or '-'.",
            ));
        }
    }
    if fields.password.is_some() && !auth.password {
        return Err(ApiError::param_invalid(
            "password",
            "This application does not use passwords.",
        ));
    }
    for (param, value) in [
        ("first_name", &fields.first_name),
        ("last_name", &fields.last_name),
    ] {
        if value.as_ref().is_some_and(|v| v.chars().count() > 256) {
            return Err(ApiError::param_invalid(
                param,
                format!("{param} must be at most 256 characters."),
            ));
        }
    }
    Ok(())
}

/// An email address or username another user holds is 422 `form_identifier_exists`,
/// answered as early as Clerk does (and decided again by the commit that creates the
/// user).
async fn free(state: &AppState, attempt: &SignUpAttempt) -> Result<(), ApiError> {
    let keys = [
        attempt.email_address.as_deref().map(email_key),
        attempt.username.as_deref().map(username_key),
    ];
    for (param, key) in ["email_address", "username"].into_iter().zip(keys) {
        if let Some(key) = key {
            if state.store.get_identifier(&key).await?.is_some() {
                return Err(ApiError::identifier_exists(param));
            }
        }
    }
    Ok(())
}

/// The attempt with `fields` applied (a new one when `current` is `None`), the password
/// checked and hashed on the blocking pool.
async fn apply(
    state: &AppState,
    current: Option<SignUpAttempt>,
    client_id: &str,
    fields: &Fields,
    now: Millis,
) -> Result<SignUpAttempt, ApiError> {
    let req = state.config.auth.requirements;
    // Hashing a password takes tens of milliseconds: off the request's thread.
    let hashes = fields.password.is_some();
    let (client_id, fields) = (
        client_id.to_string(),
        Fields {
            email_address: fields.email_address.clone(),
            password: fields.password.clone(),
            first_name: fields.first_name.clone(),
            last_name: fields.last_name.clone(),
            username: fields.username.clone(),
        },
    );
    let step = move || {
        let given = SignUpFields {
            email_address: fields.email_address.as_deref(),
            password: fields.password.as_deref(),
            first_name: fields.first_name.as_deref(),
            last_name: fields.last_name.as_deref(),
            username: fields.username.as_deref(),
        };
        match current {
            None => SignUpAttempt::start(crate::ids::new_id("sua"), &client_id, &given, &req, now),
            Some(current) => current.with(&given, &req, now),
        }
        .map_err(refused)
    };
    if hashes {
        blocking(step).await
    } else {
        step()
    }
}

/// `POST /v1/client/sign_ups`: a new sign-up on the caller's client (a new client when
/// it has none), replacing any in progress. When nothing more is needed (no email
/// verification asked), it completes at once.
pub async fn create(
    state: &AppState,
    auth: &ClientAuth,
    fields: Fields,
    seen: &Seen,
) -> Result<SignUpView, ApiError> {
    admit(state, &fields)?;
    let fields = &fields;
    retrying("sign_up_start", "The sign-up", || async move {
        let now = state.now();
        let (existing, _) = clients::load_or_start_over(state, auth).await?;
        let cs = existing.unwrap_or_else(|| clients::unstored(state));
        let attempt = apply(state, None, &cs.client.id, fields, now).await?;
        free(state, &attempt).await?;
        store_or_complete(state, cs, attempt, seen, now).await
    })
    .await
}

/// The caller's sign-up `id`: another client's, a replaced or an abandoned one is 404.
async fn load(
    state: &AppState,
    auth: &ClientAuth,
    id: &str,
) -> Result<(ClientState, SignUpAttempt), ApiError> {
    let cs = clients::require(state, auth).await?;
    let now = state.now();
    let attempt = cs
        .client
        .sign_up
        .clone()
        .filter(|a| a.id == id && now < a.expires_at)
        .map(|a| *a)
        .ok_or_else(|| ApiError::not_found("Sign up"))?;
    Ok((cs, attempt))
}

/// `GET /v1/client/sign_ups/{id}`.
pub async fn get(state: &AppState, auth: &ClientAuth, id: &str) -> Result<SignUpView, ApiError> {
    let (client, attempt) = load(state, auth, id).await?;
    Ok(SignUpView {
        client,
        attempt,
        user: None,
        session: None,
    })
}

/// `PATCH /v1/client/sign_ups/{id}`: more fields (a changed email address must be
/// verified again).
pub async fn update(
    state: &AppState,
    auth: &ClientAuth,
    id: &str,
    fields: Fields,
    seen: &Seen,
) -> Result<SignUpView, ApiError> {
    admit(state, &fields)?;
    let fields = &fields;
    retrying("sign_up_update", "The sign-up", || async move {
        let (cs, current) = load(state, auth, id).await?;
        let now = state.now();
        let attempt = apply(state, Some(current), &cs.client.id, fields, now).await?;
        free(state, &attempt).await?;
        store_or_complete(state, cs, attempt, seen, now).await
    })
    .await
}

/// `POST …/prepare_verification` (`strategy=email_code`): a code to the email address,
/// stored (hashed) before it is sent.
pub async fn prepare_verification(
    state: &AppState,
    auth: &ClientAuth,
    id: &str,
) -> Result<SignUpView, ApiError> {
    let (view, code) = retrying("sign_up_prepare", "The sign-up", || async move {
        let (cs, current) = load(state, auth, id).await?;
        if !state.mailer.can_deliver() {
            return Err(ApiError::strategy_for_user_invalid());
        }
        let now = state.now();
        let (attempt, code) = current.prepare_email_verification(now).map_err(refused)?;
        let client = cs.client.with_sign_up(Some(attempt.clone()), now);
        let Some(client) = clients::store(state, client, cs.sessions).await? else {
            return Ok(None);
        };
        let view = SignUpView {
            client,
            attempt,
            user: None,
            session: None,
        };
        Ok(Some((view, code)))
    })
    .await?;
    let to = view.attempt.email_address.clone().unwrap_or_default();
    send(state, CodePurpose::VerifyEmailAddress, &to, &code).await?;
    Ok(view)
}

/// `POST …/attempt_verification` (`strategy=email_code`): tries the code; a right one
/// completes the sign-up when nothing else is missing. Every attempt is counted.
pub async fn attempt_verification(
    state: &AppState,
    auth: &ClientAuth,
    id: &str,
    code: &str,
    seen: &Seen,
) -> Result<SignUpView, ApiError> {
    let outcome = retrying("sign_up_attempt", "The sign-up", || async move {
        let (cs, current) = load(state, auth, id).await?;
        let now = state.now();
        let (attempt, verified) = current.attempt_email_verification(code, now);
        if let Err(why) = verified {
            if attempt != current {
                let client = cs.client.with_sign_up(Some(attempt), now);
                if !landed(state.store.commit(vec![Write::client(client)]).await)? {
                    return Ok(None);
                }
            }
            return Ok(Some(Err(refused(why))));
        }
        Ok(store_or_complete(state, cs, attempt, seen, now)
            .await?
            .map(Ok))
    })
    .await?;
    outcome
}

/// Stores the attempt on the client; or, when it is ready, creates the user and its
/// session in one commit with the identifiers it takes (of two sign-ups racing for one
/// address, one lands; the other re-reads and is told the address is taken).
async fn store_or_complete(
    state: &AppState,
    cs: ClientState,
    attempt: SignUpAttempt,
    seen: &Seen,
    now: Millis,
) -> Result<Option<SignUpView>, ApiError> {
    let req = state.config.auth.requirements;
    if !attempt.is_ready(&req) {
        let client = cs.client.with_sign_up(Some(attempt.clone()), now);
        let Some(client) = clients::store(state, client, cs.sessions).await? else {
            return Ok(None);
        };
        return Ok(Some(SignUpView {
            client,
            attempt,
            user: None,
            session: None,
        }));
    }
    // (`identifier_writes` below refuses a taken address or username, as `free` did
    // when the fields were given, on the reads it needs anyway.)
    let mut user = User::create(
        NewUser {
            first_name: attempt.first_name.clone(),
            last_name: attempt.last_name.clone(),
            username: attempt.username.clone(),
            email_addresses: attempt.email_address.iter().cloned().collect(),
            password: attempt.password_digest.clone(),
            ..NewUser::default()
        },
        now,
    );
    for email in &mut user.email_addresses {
        email.verified = req.verify_email;
    }
    // Written as new: `start_session` is handed the user as it will be stored.
    let user = User {
        last_sign_in_at: Some(now),
        ..user
    };
    let mut cs = cs;
    let (session, mut writes) =
        super::sign_in::start_session(state, &mut cs, &user, &seen.activity, &seen.origin, now)
            .await?;
    cs.client.sign_up = None;
    writes.extend(identifier_writes(state, None, Some(&user)).await?);
    writes.extend(super::users::written(state, &user, EventType::UserCreated, &seen.origin).await?);
    // The client write `start_session` made is replaced by this one, without the sign-up.
    writes.retain(|w| !matches!(w, Write::Client(..)));
    writes.push(Write::client(cs.client.clone()));
    if !landed(state.store.commit(writes).await)? {
        return Ok(None);
    }
    crate::metrics::session_transitions("sign_in", 1);
    crate::metrics::sign_in("sign_up");
    let attempt = attempt.completed(&user.id, &session.id, now);
    cs.sessions.push(session.clone());
    Ok(Some(SignUpView {
        client: cs,
        attempt,
        user: Some(user),
        session: Some(session),
    }))
}
