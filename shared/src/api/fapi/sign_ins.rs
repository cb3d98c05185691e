//! `/v1/client/sign_ins`: a ticket redeemed at once (`app::sign_in`), or a sign-in by
//! identifier carried step by step (`app::sign_ins`): password, email code, reset.

use super::{flow_answer, offered, seen};
use crate::app::sign_in::{redeem_ticket, SignedIn};
use crate::app::sign_ins::{self, Attempt, SignInView};
use crate::domain::sign_in_attempt::Strategy;
use crate::error::ApiError;
use crate::http::auth::ClientAuth;
use crate::http::request::{form, Form, RequestExt};
use crate::http::response::Response;
use crate::http::Request;
use crate::state::AppState;
use crate::wire;

/// A first-factor strategy by its wire name; `what` it is for decides which are valid.
fn strategy(form: &Form) -> Result<Strategy, ApiError> {
    match form.non_empty("strategy") {
        None => Err(ApiError::param_missing("strategy")),
        Some("password") => Ok(Strategy::Password),
        Some("email_code") => Ok(Strategy::EmailCode),
        Some("reset_password_email_code") => Ok(Strategy::ResetPasswordEmailCode),
        Some(_) => Err(ApiError::param_invalid(
            "strategy",
            "strategy must be password, email_code or reset_password_email_code.",
        )),
    }
}

/// The credential a request carries for `strategy`.
fn credential(form: &Form, strategy: Strategy) -> Result<Attempt, ApiError> {
    Ok(match strategy {
        Strategy::Password => Attempt::Password(
            form.non_empty("password")
                .ok_or_else(|| ApiError::param_missing("password"))?
                .to_string(),
        ),
        code => Attempt::Code(
            code,
            form.non_empty("code")
                .ok_or_else(|| ApiError::param_missing("code"))?
                .to_string(),
        ),
    })
}

/// `POST /v1/client/sign_ins`: `strategy=ticket` redeems a ticket; otherwise a sign-in
/// by `identifier`, with `password` tried at once, or a code sent for
/// `strategy=email_code`.
pub async fn create(
    state: &AppState,
    req: Request,
    auth: &ClientAuth,
) -> Result<Response, ApiError> {
    let form = form(&req)?;
    if form.non_empty("strategy") == Some("ticket") {
        return ticket(state, req, auth, &form).await;
    }
    let identifier = form.non_empty("identifier");
    let (then, prepare) = match form.non_empty("strategy") {
        None if form.non_empty("password").is_some() => {
            (Some(credential(&form, Strategy::Password)?), None)
        }
        None => (None, None),
        Some(_) => match strategy(&form)? {
            Strategy::Password => (Some(credential(&form, Strategy::Password)?), None),
            code => (None, Some(code)),
        },
    };
    if identifier.is_none() && (then.is_some() || prepare.is_some()) {
        return Err(ApiError::param_missing("identifier"));
    }
    let seen = seen(state, &req);
    let view = sign_ins::create(state, auth, identifier, then, prepare, &seen).await?;
    answer(state, &req, auth, view).await
}

/// `GET /v1/client/sign_ins/{sign_in_id}`.
pub async fn get(state: &AppState, req: Request, auth: &ClientAuth) -> Result<Response, ApiError> {
    let view = sign_ins::get(state, auth, req.path_param("sign_in_id")).await?;
    answer(state, &req, auth, view).await
}

/// `POST /v1/client/sign_ins/{sign_in_id}/prepare_first_factor`.
pub async fn prepare_first_factor(
    state: &AppState,
    req: Request,
    auth: &ClientAuth,
) -> Result<Response, ApiError> {
    let form = form(&req)?;
    let strategy = strategy(&form)?;
    let view = sign_ins::prepare_first_factor(
        state,
        auth,
        req.path_param("sign_in_id"),
        strategy,
        form.non_empty("email_address_id"),
    )
    .await?;
    answer(state, &req, auth, view).await
}

/// `POST /v1/client/sign_ins/{sign_in_id}/attempt_first_factor`.
pub async fn attempt_first_factor(
    state: &AppState,
    req: Request,
    auth: &ClientAuth,
) -> Result<Response, ApiError> {
    let form = form(&req)?;
    let credential = credential(&form, strategy(&form)?)?;
    let seen = seen(state, &req);
    let view =
        sign_ins::attempt(state, auth, req.path_param("sign_in_id"), credential, &seen).await?;
    answer(state, &req, auth, view).await
}

/// `POST /v1/client/sign_ins/{sign_in_id}/reset_password`.
pub async fn reset_password(
    state: &AppState,
    req: Request,
    auth: &ClientAuth,
) -> Result<Response, ApiError> {
    let form = form(&req)?;
    let password = form
        .non_empty("password")
        .ok_or_else(|| ApiError::param_missing("password"))?
        .to_string();
    let sign_out = match form.non_empty("sign_out_of_other_sessions") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::param_invalid(
                "sign_out_of_other_sessions",
                "sign_out_of_other_sessions must be true or false.",
            ))
        }
    };
    let seen = seen(state, &req);
    let view = sign_ins::reset_password(
        state,
        auth,
        req.path_param("sign_in_id"),
        password,
        sign_out,
        &seen,
    )
    .await?;
    answer(state, &req, auth, view).await
}

/// The sign-in and the client, as clerk-js reads them after every step.
async fn answer(
    state: &AppState,
    req: &Request,
    auth: &ClientAuth,
    view: SignInView,
) -> Result<Response, ApiError> {
    let now = state.now();
    let response = wire::sign_in_attempt(&view.attempt, view.user.as_ref(), offered(state), now);
    let made = view.session.as_ref().map(|s| s.id.as_str());
    flow_answer(
        state,
        req,
        auth,
        &response,
        &view.client,
        view.user.as_ref(),
        made,
    )
    .await
}

/// `strategy=ticket`: redeems a Backend API sign-in token and answers the completed
/// sign-in with the client.
async fn ticket(
    state: &AppState,
    req: Request,
    auth: &ClientAuth,
    form: &Form,
) -> Result<Response, ApiError> {
    let ticket = form
        .non_empty("ticket")
        .ok_or_else(|| ApiError::param_missing("ticket"))?;
    let seen = seen(state, &req);
    let SignedIn {
        client: cs,
        session,
        user,
    } = redeem_ticket(state, auth, ticket, &seen.activity, &seen.origin).await?;
    let attempt_id = crate::ids::new_id("sia");
    let sign_in = wire::rendered(&wire::completed_sign_in(
        &attempt_id,
        &session.id,
        &user,
        session.abandon_at,
    ));
    // Like `GET /v1/client`: the new session comes with a fresh token for clerk-js.
    flow_answer(
        state,
        &req,
        auth,
        &sign_in,
        &cs,
        Some(&user),
        Some(&session.id),
    )
    .await
}
