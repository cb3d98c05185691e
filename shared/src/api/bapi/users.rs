//! `POST /v1/users` and `GET /v1/users/{user_id}`.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::authorize;
use crate::domain::{NewUser, User};
use crate::error::ApiError;
use crate::http::request::json_body;
use crate::http::response::{self, Response};
use crate::http::{Request, RequestExt};
use crate::state::AppState;
use crate::store::Write;
use crate::wire::{self, Audience};

#[derive(Deserialize)]
struct CreateUser {
    external_id: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    username: Option<String>,
    image_url: Option<String>,
    email_address: Option<Vec<String>>,
    phone_number: Option<Vec<String>>,
    public_metadata: Option<Map<String, Value>>,
    private_metadata: Option<Map<String, Value>>,
    unsafe_metadata: Option<Map<String, Value>>,
}

fn text(param: &str, value: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    match value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    {
        Some(v) if v.chars().count() > max || v.chars().any(char::is_control) => {
            Err(ApiError::param_invalid(
                param,
                format!("{param} must be at most {max} printable characters."),
            ))
        }
        other => Ok(other),
    }
}

fn format_error(param: &str, why: &str) -> ApiError {
    ApiError::new(
        http::StatusCode::UNPROCESSABLE_ENTITY,
        "form_param_format_invalid",
        format!("{param} is invalid"),
        why.to_string(),
    )
    .with_param(param)
}

impl CreateUser {
    /// Checks every field; what comes out is a valid new user.
    fn parse(self) -> Result<NewUser, ApiError> {
        let emails = self.email_address.unwrap_or_default();
        for e in &emails {
            let valid = e.len() <= 320
                && e.split_once('@')
                    .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
                && !e.chars().any(|c| c.is_whitespace() || c.is_control());
            if !valid {
                return Err(format_error(
                    "email_address",
                    "email_address must hold valid email addresses.",
                ));
            }
        }
        let phones = self.phone_number.unwrap_or_default();
        for p in &phones {
            let digits = p.strip_prefix('+').unwrap_or("");
            if !(7..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format_error(
                    "phone_number",
                    "phone_number must hold numbers in E.164 form, like +15555550100.",
                ));
            }
        }
        let username = text("username", self.username, 64)?;
        if let Some(u) = &username {
            if u.len() < 4
                || !u
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(format_error(
                    "username",
                    "username must be 4 to 64 letters, digits, '_' or '-'.",
                ));
            }
        }
        Ok(NewUser {
            external_id: text("external_id", self.external_id, 256)?,
            first_name: text("first_name", self.first_name, 256)?,
            last_name: text("last_name", self.last_name, 256)?,
            username,
            image_url: text("image_url", self.image_url, 2048)?,
            email_addresses: emails,
            phone_numbers: phones,
            public_metadata: self.public_metadata.unwrap_or_default(),
            private_metadata: self.private_metadata.unwrap_or_default(),
            unsafe_metadata: self.unsafe_metadata.unwrap_or_default(),
        })
    }
}

pub async fn create(state: &AppState, req: Request) -> Result<Response, ApiError> {
    authorize(state, &req)?;
    let new = json_body::<CreateUser>(&req)?.parse()?;
    let user = User::create(new, state.now());
    state.store.commit(vec![Write::user(user.clone())]).await?;
    Ok(response::ok(&wire::user(&user, Audience::Backend)))
}

pub async fn get(state: &AppState, req: Request) -> Result<Response, ApiError> {
    authorize(state, &req)?;
    let user = state
        .store
        .get_user(req.path_param("user_id"))
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    Ok(response::ok(&wire::user(&user, Audience::Backend)))
}
