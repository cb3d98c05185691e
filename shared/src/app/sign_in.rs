//! Ticket sign-in: redeeming a Backend API sign-in token on the caller's client (or a new
//! one), in one all-or-nothing commit.

use super::clients;
use super::{landed, retrying};
use crate::clock::Millis;
use crate::domain::{
    ticket_hash, Client, ClientState, Session, SessionActivity, SignInRefused, SignInToken,
    SignInTokenStatus, User,
};
use crate::error::ApiError;
use crate::http::auth::ClientAuth;
use crate::state::AppState;
use crate::store::Write;
use crate::webhooks::{EventType, RequestOrigin};

/// Longer than any ticket this service makes: not worth a hash and a read.
const MAX_TICKET_BYTES: usize = 256;

/// What a redeemed ticket leaves: the client (new, or the caller's) holding the new
/// session, which is its last active one, and the user, as stored.
pub struct SignedIn {
    pub client: ClientState,
    pub session: Session,
    pub user: User,
}

/// Redeems `ticket`: the ticket becomes accepted, a session starts for its user on the
/// caller's client (a caller without one, or whose token was rejected, gets a new client),
/// and the user's last sign-in moves, all in one commit conditioned on what was read. Of
/// two requests racing with one ticket, exactly one signs in; the other re-reads and
/// answers 400 `ticket_invalid` ("already been used"). A user already signed in on the
/// client, or a client at its mode's limit (`ClientState::may_sign_in`), is refused with
/// nothing written; since the commit is conditioned on the client's version, of sign-ins
/// racing on one client each re-reads the others' sessions before it decides.
pub async fn redeem_ticket(
    state: &AppState,
    auth: &ClientAuth,
    ticket: &str,
    seen: &SessionActivity,
    origin: &RequestOrigin,
) -> Result<SignedIn, ApiError> {
    if ticket.len() > MAX_TICKET_BYTES {
        return Err(ApiError::ticket_invalid(
            "This sign-in ticket is not valid.",
        ));
    }
    let hash = &ticket_hash(ticket);
    let signed_in = retrying("sign_in", "The sign-in ticket", || async move {
        let now = state.now();
        let (existing, _) = clients::load_or_start_over(state, auth).await?;
        let token = state
            .store
            .get_sign_in_token(hash)
            .await?
            .ok_or_else(|| ApiError::ticket_invalid("This sign-in ticket is not valid."))?;
        match token.status {
            SignInTokenStatus::Pending if now >= token.expires_at => {
                return Err(ApiError::ticket_expired())
            }
            SignInTokenStatus::Pending => {}
            SignInTokenStatus::Accepted => {
                if let Some(done) = retried(state, auth, &token, now).await? {
                    return Ok(Some((done, Redeemed::Again)));
                }
                return Err(ApiError::ticket_invalid(
                    "This sign-in ticket has already been used.",
                ));
            }
            SignInTokenStatus::Revoked => {
                return Err(ApiError::ticket_invalid(
                    "This sign-in ticket has already been used.",
                ))
            }
        }
        let user = state.store.get_user(&token.user_id).await?.ok_or_else(|| {
            ApiError::ticket_invalid("The user of this sign-in ticket no longer exists.")
        })?;
        // Refused before anything is written: the ticket stays unused.
        if user.banned {
            return Err(ApiError::user_banned());
        }
        let mut client = existing.unwrap_or_else(|| clients::unstored(state));
        let user = user.signed_in(now);
        let (session, mut writes) =
            start_session(state, &mut client, &user, seen, origin, now).await?;
        writes.push(Write::sign_in_token(token.accepted(
            now,
            &client.client.id,
            &session.id,
        )));
        writes.push(Write::user(user.clone()));
        if !landed(state.store.commit(writes).await)? {
            return Ok(None);
        }
        client.sessions.push(session.clone());
        let done = SignedIn {
            client,
            session,
            user,
        };
        Ok(Some((done, Redeemed::Now)))
    })
    .await?;
    if let (_, Redeemed::Now) = signed_in {
        crate::metrics::sign_in("ticket");
        crate::metrics::session_transitions("sign_in", 1);
    }
    Ok(signed_in.0)
}

/// Starts a session for `user` (as it will be written) on `cs` at `now`, refused with
/// nothing written when the user is signed in there already or the client is at its
/// mode's limit (`ClientState::may_sign_in`). `cs.client` becomes the client signed in:
/// its next version (a client not stored yet is at version 0), a fresh rotating token,
/// no sign-in in progress. Answers the session and its writes (the session, the client,
/// `session.created`); the caller adds its own, and commits them all at once.
pub(crate) async fn start_session(
    state: &AppState,
    cs: &mut ClientState,
    user: &User,
    seen: &SessionActivity,
    origin: &RequestOrigin,
    now: Millis,
) -> Result<(Session, Vec<Write>), ApiError> {
    cs.may_sign_in(&user.id, now, state.config.sessions_per_client)
        .map_err(|refused| match refused {
            SignInRefused::AlreadySignedIn(id) => ApiError::identifier_already_signed_in(id),
            SignInRefused::SessionExists => ApiError::session_exists(),
            SignInRefused::TooManySessions(max) => ApiError::too_many_sessions(max),
        })?;
    let mut session = Session::start(&cs.client.id, &user.id, now, state.lifetimes());
    session.latest_activity = Some(seen.clone());
    cs.client = Client {
        sign_in: None,
        ..cs.client.signed_in(&session.id, now)
    };
    let mut writes = vec![
        Write::NewSession(session.clone()),
        Write::client(cs.client.clone()),
    ];
    let kind = EventType::SessionCreated;
    if let Some(events) = super::events(state, origin, now, Some(kind)).await? {
        writes.push(Write::Event(events.session(kind, &session, Some(user))));
    }
    Ok((session, writes))
}

/// Whether a sign-in made its session now, or was made before (a retry, answered again).
enum Redeemed {
    Now,
    Again,
}

/// How long after a sign-in its caller's retry is answered with what it made.
const RETRY_WINDOW_MS: Millis = 120_000;

/// A caller retrying its own sign-in, whose answer it never got (a time-out, a dropped
/// connection): it presents the ticket again with the client token it sent the first time,
/// which that sign-in superseded (a caller with the client's current token had its
/// answer). Within [`RETRY_WINDOW_MS`], and while the session is signed in, it is answered
/// what the sign-in made, with the client's current token, and nothing is written; anyone
/// else presenting the ticket is told it was used.
async fn retried(
    state: &AppState,
    auth: &ClientAuth,
    token: &SignInToken,
    now: Millis,
) -> Result<Option<SignedIn>, ApiError> {
    let Some((made, sent)) = auth.verified.iter().find_map(|t| {
        token
            .redeemed_by(&t.claims.id, now, RETRY_WINDOW_MS)
            .map(|made| (made, &t.claims))
    }) else {
        return Ok(None);
    };
    let Some(client) = state.store.get_client(&made.client_id).await? else {
        return Ok(None);
    };
    // The token the first attempt sent, which its sign-in replaced. A caller holding the
    // client's current token got the answer already: the ticket is used, as for anyone.
    let superseded = aws_lc_rs::constant_time::verify_slices_are_equal(
        client.client.rotating_token.as_bytes(),
        sent.rotating_token.as_bytes(),
    )
    .is_err();
    if !superseded {
        return Ok(None);
    }
    let Some(session) = client
        .session(&made.session_id)
        .filter(|s| s.status_at(now).is_signed_in())
        .cloned()
    else {
        return Ok(None);
    };
    let Some(user) = state.store.get_user(&session.user_id).await? else {
        return Ok(None);
    };
    Ok(Some(SignedIn {
        client,
        session,
        user,
    }))
}
