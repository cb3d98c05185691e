//! `/v1/client/sign_ups`: a sign-up by email address and password, its address verified
//! by an email code (`app::sign_ups`).

use super::{flow_answer, seen};
use crate::app::sign_ups::{self, Fields, SignUpView};
use crate::error::ApiError;
use crate::http::auth::ClientAuth;
use crate::http::request::{form, Form, RequestExt};
use crate::http::response::Response;
use crate::http::Request;
use crate::state::AppState;
use crate::wire;

/// The fields a sign-up request gives (empty ones are not given, as clerk-js sends them).
fn fields(form: &Form) -> Fields {
    let text = |name: &str| form.non_empty(name).map(|v| v.trim().to_string());
    Fields {
        email_address: text("email_address"),
        password: form.non_empty("password").map(str::to_string),
        first_name: text("first_name"),
        last_name: text("last_name"),
        username: text("username"),
    }
}

/// Only `email_code` verifies an email address here.
fn email_code(form: &Form) -> Result<(), ApiError> {
    match form.non_empty("strategy") {
        None => Err(ApiError::param_missing("strategy")),
        Some("email_code") => Ok(()),
        Some(_) => Err(ApiError::param_invalid(
            "strategy",
            "strategy must be email_code.",
        )),
    }
}

/// `POST /v1/client/sign_ups`.
pub async fn create(
    state: &AppState,
    req: Request,
    auth: &ClientAuth,
) -> Result<Response, ApiError> {
    let fields = fields(&form(&req)?);
    let seen = seen(state, &req);
    let view = sign_ups::create(state, auth, fields, &seen).await?;
    answer(state, &req, auth, view).await
}

/// `GET /v1/client/sign_ups/{sign_up_id}`.
pub async fn get(state: &AppState, req: Request, auth: &ClientAuth) -> Result<Response, ApiError> {
    let view = sign_ups::get(state, auth, req.path_param("sign_up_id")).await?;
    answer(state, &req, auth, view).await
}

/// `PATCH /v1/client/sign_ups/{sign_up_id}`.
pub async fn update(
    state: &AppState,
    req: Request,
    auth: &ClientAuth,
) -> Result<Response, ApiError> {
    let fields = fields(&form(&req)?);
    let seen = seen(state, &req);
    let view = sign_ups::update(state, auth, req.path_param("sign_up_id"), fields, &seen).await?;
    answer(state, &req, auth, view).await
}

/// `POST /v1/client/sign_ups/{sign_up_id}/prepare_verification`.
pub async fn prepare_verification(
    state: &AppState,
    req: Request,
    auth: &ClientAuth,
) -> Result<Response, ApiError> {
    email_code(&form(&req)?)?;
    let view = sign_ups::prepare_verification(state, auth, req.path_param("sign_up_id")).await?;
    answer(state, &req, auth, view).await
}

/// `POST /v1/client/sign_ups/{sign_up_id}/attempt_verification`.
pub async fn attempt_verification(
    state: &AppState,
    req: Request,
    auth: &ClientAuth,
) -> Result<Response, ApiError> {
    let form = form(&req)?;
    email_code(&form)?;
    let code = form
        .non_empty("code")
        .ok_or_else(|| ApiError::param_missing("code"))?;
    let seen = seen(state, &req);
    let view =
        sign_ups::attempt_verification(state, auth, req.path_param("sign_up_id"), code, &seen)
            .await?;
    answer(state, &req, auth, view).await
}

/// The sign-up and the client.
async fn answer(
    state: &AppState,
    req: &Request,
    auth: &ClientAuth,
    view: SignUpView,
) -> Result<Response, ApiError> {
    let response =
        wire::sign_up_attempt(&view.attempt, &state.config.auth.requirements, state.now());
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
