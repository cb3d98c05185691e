//! Sign-in by identifier (Clerk's `SignIn`): a password, a code sent by email, or a
//! password reset by such a code. The attempt lives on the caller's client
//! (`Client::sign_in`), so each step reads the client and the identified user, decides on
//! the domain's state machine (`domain::sign_in_attempt`), and commits the attempt, the
//! user's lockout and, on success, the session, in one write conditioned on both
//! versions: of racing steps with one code, exactly one signs in.

use super::clients;
use super::passwords::{blocking, user_inputs};
use super::{landed, retrying};
use crate::clock::Millis;
use crate::domain::identifier::key_of_typed;
use crate::domain::lockout::Lockout;
use crate::domain::one_time_code::CodeRefused;
use crate::domain::password::PasswordDigest;
use crate::domain::sign_in_attempt::{
    Credentials, SignInAttempt, SignInRefused, SignInStatus, Stepped, Strategy,
};
use crate::domain::{ClientState, Session, SessionActivity, User};
use crate::email::{CodeEmail, CodePurpose};
use crate::error::ApiError;
use crate::http::auth::ClientAuth;
use crate::state::AppState;
use crate::store::Write;
use crate::webhooks::{EventType, RequestOrigin};

/// Longer than any email address (320 bytes) or username: found by no one, without a read.
const MAX_IDENTIFIER_BYTES: usize = 320;

/// A sign-in after a step: the client as stored (holding the attempt while it is in
/// progress), the attempt, its user, and the session a completed one made.
pub struct SignInView {
    pub client: ClientState,
    pub attempt: SignInAttempt,
    pub user: Option<User>,
    pub session: Option<Session>,
}

/// Where a step's request comes from, for the session it may make and its event.
pub struct Seen {
    pub activity: SessionActivity,
    pub origin: RequestOrigin,
}

/// A credential to attempt.
pub enum Attempt {
    Password(String),
    Code(Strategy, String),
}

impl std::fmt::Debug for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password(_) => f.write_str("Password"),
            Self::Code(s, _) => write!(f, "Code({s:?})"),
        }
    }
}

pub fn refused(why: SignInRefused, status: SignInStatus) -> ApiError {
    match why {
        SignInRefused::IdentifierNotFound => ApiError::identifier_not_found(),
        SignInRefused::PasswordIncorrect => ApiError::password_incorrect(),
        SignInRefused::Code(CodeRefused::Incorrect { .. }) => ApiError::code_incorrect(),
        SignInRefused::Code(CodeRefused::Expired) => ApiError::verification_expired(),
        SignInRefused::Code(CodeRefused::Failed) => ApiError::verification_failed(),
        SignInRefused::Locked(seconds) => ApiError::user_locked(seconds),
        SignInRefused::Banned => ApiError::user_banned(),
        SignInRefused::StrategyNotAvailable => ApiError::strategy_for_user_invalid(),
        SignInRefused::TooManyCodes => ApiError::too_many_codes(),
        SignInRefused::WrongStatus => ApiError::status_invalid(
            "sign-in",
            match status {
                SignInStatus::NeedsIdentifier => "needs_identifier",
                SignInStatus::NeedsFirstFactor => "needs_first_factor",
                SignInStatus::NeedsNewPassword => "needs_new_password",
                SignInStatus::Complete => "complete",
            },
        ),
    }
}

/// `POST /v1/client/sign_ins` with an identifier: a new sign-in on the caller's client
/// (a new client when it has none), replacing any in progress. With `password`, it is
/// tried at once; with `strategy=email_code` a code is sent. An identifier no user has is
/// 422 `form_identifier_not_found`, and nothing is written.
pub async fn create(
    state: &AppState,
    auth: &ClientAuth,
    identifier: Option<&str>,
    then: Option<Attempt>,
    prepare: Option<Strategy>,
    seen: &Seen,
) -> Result<SignInView, ApiError> {
    let started = retrying("sign_in_start", "The sign-in", || async move {
        let now = state.now();
        let (existing, _) = clients::load_or_start_over(state, auth).await?;
        let cs = existing.unwrap_or_else(|| clients::unstored(state));
        let attempt = SignInAttempt::start(crate::ids::new_id("sia"), &cs.client.id, now);
        let (attempt, user) = match identifier {
            None => (attempt, None),
            Some(typed) => {
                let user = find_user(state, typed).await?;
                let attempt = attempt
                    .identify(typed.trim(), user.as_ref().map(|u| u.id.as_str()), now)
                    .map_err(|why| refused(why, SignInStatus::NeedsIdentifier))?;
                (attempt, user)
            }
        };
        let client = cs.client.with_sign_in(Some(attempt.clone()), now);
        let Some(client) = clients::store(state, client, cs.sessions).await? else {
            return Ok(None);
        };
        Ok(Some(SignInView {
            client,
            attempt,
            user,
            session: None,
        }))
    })
    .await?;
    // The next step runs on the client just written (the caller's token may not have
    // named it: a new client's is in this answer).
    let on = Caller::Client(&started.client.client.id);
    let id = &started.attempt.id;
    match (then, prepare) {
        (Some(credential), _) => attempt_as(state, on, id, credential, seen).await,
        (None, Some(strategy)) => prepare_as(state, on, id, strategy, None).await,
        (None, None) => Ok(started),
    }
}

/// Whose sign-in a step is for: the caller's, by its client token; or, within a request
/// that has just written it, a client by id.
#[derive(Clone, Copy)]
enum Caller<'a> {
    Auth(&'a ClientAuth),
    Client(&'a str),
}

/// The user an identifier names, if any: one read of its identifier, one of the user.
async fn find_user(state: &AppState, typed: &str) -> Result<Option<User>, ApiError> {
    let typed = typed.trim();
    if typed.is_empty() || typed.len() > MAX_IDENTIFIER_BYTES {
        return Ok(None);
    }
    let key = key_of_typed(typed);
    if key.starts_with("username:") && !state.config.auth.username {
        return Ok(None);
    }
    let Some(held) = state.store.get_identifier(&key).await? else {
        return Ok(None);
    };
    Ok(state.store.get_user(&held.user_id).await?)
}

/// The caller's sign-in `id`, with its user: another client's, a replaced or an
/// abandoned one is 404.
async fn load(state: &AppState, caller: Caller<'_>, id: &str) -> Result<SignInView, ApiError> {
    let cs = match caller {
        Caller::Auth(auth) => clients::require(state, auth).await?,
        Caller::Client(client_id) => state
            .store
            .get_client(client_id)
            .await?
            .ok_or_else(|| ApiError::not_found("Sign in"))?,
    };
    let now = state.now();
    let attempt = cs
        .client
        .sign_in
        .clone()
        .filter(|a| a.id == id && now < a.expires_at)
        .map(|a| *a)
        .ok_or_else(|| ApiError::not_found("Sign in"))?;
    let user = match &attempt.user_id {
        Some(user_id) => state.store.get_user(user_id).await?,
        None => None,
    };
    Ok(SignInView {
        client: cs,
        attempt,
        user,
        session: None,
    })
}

/// `GET /v1/client/sign_ins/{id}`.
pub async fn get(state: &AppState, auth: &ClientAuth, id: &str) -> Result<SignInView, ApiError> {
    load(state, Caller::Auth(auth), id).await
}

/// Whether the instance offers `strategy` now: on in configuration, and for codes a way
/// to deliver them.
fn offered(state: &AppState, strategy: Strategy) -> bool {
    let auth = &state.config.auth;
    match strategy {
        Strategy::Password => auth.password,
        Strategy::EmailCode | Strategy::ResetPasswordEmailCode => {
            auth.email_code && state.mailer.can_deliver()
        }
    }
}

/// `POST …/prepare_first_factor`: a new code for `strategy`, sent to `email_address_id`
/// (one of the user's addresses; the primary one when not given). The code is stored
/// (hashed) before it is sent, so a code that arrives always verifies.
pub async fn prepare_first_factor(
    state: &AppState,
    auth: &ClientAuth,
    id: &str,
    strategy: Strategy,
    email_address_id: Option<&str>,
) -> Result<SignInView, ApiError> {
    prepare_as(state, Caller::Auth(auth), id, strategy, email_address_id).await
}

async fn prepare_as(
    state: &AppState,
    caller: Caller<'_>,
    id: &str,
    strategy: Strategy,
    email_address_id: Option<&str>,
) -> Result<SignInView, ApiError> {
    let (view, code, to) = retrying("sign_in_prepare", "The sign-in", || async move {
        let view = load(state, caller, id).await?;
        if !offered(state, strategy) {
            return Err(ApiError::strategy_for_user_invalid());
        }
        if strategy == Strategy::Password {
            // Nothing to prepare for a password.
            return Ok(Some((view, None, String::new())));
        }
        let now = state.now();
        let status = view.attempt.status;
        let user = view
            .user
            .as_ref()
            .ok_or_else(|| refused(SignInRefused::WrongStatus, status))?;
        let address = match email_address_id {
            Some(wanted) => user.email_addresses.iter().find(|e| e.id == wanted),
            None => user.primary_email().or(user.email_addresses.first()),
        }
        .ok_or_else(|| {
            ApiError::param_invalid("email_address_id", "This email address is not the user's.")
        })?;
        let (attempt, code) = view
            .attempt
            .prepare_code(strategy, &address.id, now)
            .map_err(|why| refused(why, status))?;
        let code = Some(code);
        let to = address.email_address.clone();
        let client = view.client.client.with_sign_in(Some(attempt.clone()), now);
        let Some(client) = clients::store(state, client, view.client.sessions).await? else {
            return Ok(None);
        };
        let view = SignInView {
            client,
            attempt,
            ..view
        };
        Ok(Some((view, code, to)))
    })
    .await?;
    let Some(code) = code else {
        return Ok(view);
    };
    let purpose = match strategy {
        Strategy::ResetPasswordEmailCode => CodePurpose::ResetPassword,
        _ => CodePurpose::SignIn,
    };
    send(state, purpose, &to, &code).await?;
    Ok(view)
}

/// Hands a code to the mail service. The code itself is never logged.
pub(crate) async fn send(
    state: &AppState,
    purpose: CodePurpose,
    to: &str,
    code: &str,
) -> Result<(), ApiError> {
    let email = CodeEmail {
        purpose,
        to,
        code,
        application_name: &state.config.application_name,
    };
    state.mailer.send_code(&email).await.map_err(|err| {
        tracing::error!(error = %err, "a code could not be sent");
        ApiError::email_not_delivered()
    })
}

/// `POST …/attempt_first_factor` (and the password given with `create`): tries the
/// credential. A right one completes the sign-in with a session (or, for a reset code,
/// asks for the new password); a wrong one counts against the user's lockout, and both
/// are written with the attempt in one commit.
pub async fn attempt(
    state: &AppState,
    auth: &ClientAuth,
    id: &str,
    credential: Attempt,
    seen: &Seen,
) -> Result<SignInView, ApiError> {
    attempt_as(state, Caller::Auth(auth), id, credential, seen).await
}

async fn attempt_as(
    state: &AppState,
    caller: Caller<'_>,
    id: &str,
    credential: Attempt,
    seen: &Seen,
) -> Result<SignInView, ApiError> {
    let strategy = match &credential {
        Attempt::Password(_) => Strategy::Password,
        Attempt::Code(s, _) => *s,
    };
    let credential = &credential;
    let outcome = retrying("sign_in_attempt", "The sign-in", || async move {
        let view = load(state, caller, id).await?;
        if !offered(state, strategy) {
            return Err(ApiError::strategy_for_user_invalid());
        }
        let status = view.attempt.status;
        let Some(user) = view.user.clone() else {
            return Err(refused(SignInRefused::WrongStatus, status));
        };
        let now = state.now();
        let policy = state.config.auth.lockout;
        let stepped = match credential {
            Attempt::Password(password) => {
                let (attempt, digest, password) = (
                    view.attempt.clone(),
                    user.password.clone(),
                    password.clone(),
                );
                let (lockout, banned) = (user.lockout, user.banned);
                blocking(move || {
                    let creds = Credentials {
                        digest: digest.as_ref(),
                        lockout,
                        banned,
                    };
                    Ok(attempt
                        .attempt_password(&password, creds, policy, now)
                        .map(|rehash| Some(rehash.then_some(password))))
                })
                .await?
            }
            Attempt::Code(strategy, code) => {
                let creds = Credentials {
                    digest: user.password.as_ref(),
                    lockout: user.lockout,
                    banned: user.banned,
                };
                view.attempt
                    .attempt_code(*strategy, code, creds, policy, now)
                    .map(|next| (next == SignInStatus::Complete).then_some(None))
            }
        };
        settle(state, view, user, stepped, seen, now).await
    })
    .await?;
    outcome
}

/// What a credential step leads to: `Ok(Some(rehash))` completes the sign-in (`rehash`:
/// the password to keep as argon2id in place of an imported digest); `Ok(None)` moves it
/// on without a session (a reset code: the new password comes next).
type StepOutcome = Stepped<Option<Option<String>>>;

/// Writes what a credential step decided. A refusal that changed nothing (a locked or
/// banned user, a strategy never prepared) writes nothing.
async fn settle(
    state: &AppState,
    view: SignInView,
    user: User,
    stepped: StepOutcome,
    seen: &Seen,
    now: Millis,
) -> Result<Option<Result<SignInView, ApiError>>, ApiError> {
    let Stepped {
        attempt,
        lockout,
        outcome,
    } = stepped;
    let status = view.attempt.status;
    match outcome {
        Err(why) => {
            if attempt == view.attempt && lockout == user.lockout {
                return Ok(Some(Err(refused(why, status))));
            }
            let client = view.client.client.with_sign_in(Some(attempt), now);
            let mut writes = vec![Write::client(client)];
            if lockout != user.lockout {
                writes.push(Write::user(user.with_lockout(lockout)));
            }
            if !landed(state.store.commit(writes).await)? {
                return Ok(None);
            }
            Ok(Some(Err(refused(why, status))))
        }
        Ok(None) => {
            // A reset code verified: the new password comes next.
            let client = view.client.client.with_sign_in(Some(attempt.clone()), now);
            let mut writes = vec![Write::client(client.clone())];
            if lockout != user.lockout {
                writes.push(Write::user(user.with_lockout(lockout)));
            }
            if !landed(state.store.commit(writes).await)? {
                return Ok(None);
            }
            Ok(Some(Ok(SignInView {
                client: ClientState {
                    client,
                    sessions: view.client.sessions,
                },
                attempt,
                ..view
            })))
        }
        Ok(Some(rehash)) => {
            // Changed in place: `complete` writes the user once, at its next version.
            let mut user = user;
            user.lockout = Lockout::cleared();
            if let Some(password) = rehash {
                let digest = blocking(move || {
                    PasswordDigest::new(&password).map_err(|_| ApiError::internal())
                })
                .await?;
                user.password = Some(digest);
            }
            let strategy = attempt.verified_by;
            complete(state, view, attempt, user, None, seen, now)
                .await
                .map(|done| {
                    done.map(|v| {
                        crate::metrics::sign_in(match strategy {
                            Some(Strategy::Password) => "password",
                            _ => "email_code",
                        });
                        Ok(v)
                    })
                })
        }
    }
}

/// Completes the sign-in: a session for `user` (as read, with any change made in place)
/// on the client, which forgets the attempt; the user as signed in (with `event`, if any, beside `session.created`); one commit.
async fn complete(
    state: &AppState,
    view: SignInView,
    attempt: SignInAttempt,
    user: User,
    event: Option<EventType>,
    seen: &Seen,
    now: Millis,
) -> Result<Option<SignInView>, ApiError> {
    let mut cs = view.client;
    let user = user.signed_in(now);
    let (session, mut writes) =
        super::sign_in::start_session(state, &mut cs, &user, &seen.activity, &seen.origin, now)
            .await?;
    writes.push(Write::user(user.clone()));
    if let Some(kind) = event {
        if let Some(events) = super::events(state, &seen.origin, now, Some(kind)).await? {
            writes.push(Write::Event(events.user(kind, &user)));
        }
    }
    if !landed(state.store.commit(writes).await)? {
        return Ok(None);
    }
    crate::metrics::session_transitions("sign_in", 1);
    let attempt = attempt.completed(&session.id, now);
    cs.sessions.push(session.clone());
    Ok(Some(SignInView {
        client: cs,
        attempt,
        user: Some(user),
        session: Some(session),
    }))
}

/// `POST …/reset_password`: after a reset code verified, sets the new password (checked
/// against the rules, hashed off the request's thread) and completes the sign-in. With
/// `sign_out_of_other_sessions`, every other session of the user is then revoked.
pub async fn reset_password(
    state: &AppState,
    auth: &ClientAuth,
    id: &str,
    password: String,
    sign_out_of_other_sessions: bool,
    seen: &Seen,
) -> Result<SignInView, ApiError> {
    let password = &password;
    let done = retrying("sign_in_reset_password", "The sign-in", || async move {
        let view = load(state, Caller::Auth(auth), id).await?;
        let now = state.now();
        let status = view.attempt.status;
        let attempt = view
            .attempt
            .set_new_password(now)
            .map_err(|why| refused(why, status))?;
        let Some(user) = view.user.clone() else {
            return Err(refused(SignInRefused::WrongStatus, status));
        };
        if user.banned {
            return Err(ApiError::user_banned());
        }
        let rules = state.config.auth.requirements.password_rules;
        let inputs = user_inputs(&user);
        let password = password.clone();
        let digest = blocking(move || {
            let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            rules
                .check(&password, &inputs)
                .map_err(ApiError::password_rejected)?;
            PasswordDigest::new(&password).map_err(|_| ApiError::internal())
        })
        .await?;
        // Changed in place: `complete` writes the user once, at its next version.
        let user = User {
            password: Some(digest),
            password_last_updated_at: Some(now),
            lockout: Lockout::cleared(),
            ..user
        };
        complete(
            state,
            view,
            attempt,
            user,
            Some(EventType::UserUpdated),
            seen,
            now,
        )
        .await
    })
    .await?;
    crate::metrics::sign_in("reset_password_email_code");
    if sign_out_of_other_sessions {
        if let (Some(user), Some(session)) = (&done.user, &done.session) {
            super::users::revoke_other_sessions(state, user, &session.id, &seen.origin).await?;
        }
    }
    Ok(done)
}
