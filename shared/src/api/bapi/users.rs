//! `POST /v1/users`, `GET /v1/users/{user_id}` and `PATCH /v1/users/{user_id}`.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::app::users::written;
use crate::domain::{NewUser, User};
use crate::error::ApiError;
use crate::http::activity::origin;
use crate::http::request::json_body;
use crate::http::response::{self, Response};
use crate::http::{Request, RequestExt};
use crate::state::AppState;
use crate::webhooks::EventType;
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
        let username = username(self.username)?;
        let public_metadata = metadata("public_metadata", self.public_metadata)?;
        let private_metadata = metadata("private_metadata", self.private_metadata)?;
        let unsafe_metadata = metadata("unsafe_metadata", self.unsafe_metadata)?;
        Ok(NewUser {
            external_id: text("external_id", self.external_id, 256)?,
            first_name: text("first_name", self.first_name, 256)?,
            last_name: text("last_name", self.last_name, 256)?,
            username,
            image_url: text("image_url", self.image_url, 2048)?,
            email_addresses: emails,
            phone_numbers: phones,
            public_metadata,
            private_metadata,
            unsafe_metadata,
        })
    }
}

/// One kind of metadata, absent = empty, within [`crate::limits::METADATA_MAX_BYTES`].
fn metadata(
    param: &str,
    value: Option<Map<String, Value>>,
) -> Result<Map<String, Value>, ApiError> {
    let value = value.unwrap_or_default();
    crate::limits::check_metadata(&value).map_err(|e| ApiError::limit_exceeded(param, e))?;
    Ok(value)
}

fn username(value: Option<String>) -> Result<Option<String>, ApiError> {
    let username = text("username", value, 64)?;
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
    Ok(username)
}

/// `null` and absent differ on update: `null` clears the field, absent keeps it.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// An update body (Clerk's `UpdateUser`, the fields this service keeps). Metadata given
/// replaces that kind whole, as Clerk's update does.
#[derive(Deserialize)]
struct UpdateUser {
    #[serde(default, deserialize_with = "present")]
    external_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    username: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    image_url: Option<Option<String>>,
    public_metadata: Option<Map<String, Value>>,
    private_metadata: Option<Map<String, Value>>,
    unsafe_metadata: Option<Map<String, Value>>,
}

impl UpdateUser {
    /// Checks every field before anything changes, then applies them to `user`.
    fn apply(self, user: &mut User) -> Result<(), ApiError> {
        let external_id = self
            .external_id
            .map(|v| text("external_id", v, 256))
            .transpose()?;
        let first_name = self
            .first_name
            .map(|v| text("first_name", v, 256))
            .transpose()?;
        let last_name = self
            .last_name
            .map(|v| text("last_name", v, 256))
            .transpose()?;
        let username = self.username.map(username).transpose()?;
        let image_url = self
            .image_url
            .map(|v| text("image_url", v, 2048))
            .transpose()?;
        let check = |param: &str, m: Option<Map<String, Value>>| {
            m.map(|m| match crate::limits::check_metadata(&m) {
                Ok(()) => Ok(m),
                Err(e) => Err(ApiError::limit_exceeded(param, e)),
            })
            .transpose()
        };
        let public_metadata = check("public_metadata", self.public_metadata)?;
        let private_metadata = check("private_metadata", self.private_metadata)?;
        let unsafe_metadata = check("unsafe_metadata", self.unsafe_metadata)?;
        let set = |slot: &mut Option<String>, v: Option<Option<String>>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut user.external_id, external_id);
        set(&mut user.first_name, first_name);
        set(&mut user.last_name, last_name);
        set(&mut user.username, username);
        set(&mut user.image_url, image_url);
        if let Some(m) = public_metadata {
            user.public_metadata = m;
        }
        if let Some(m) = private_metadata {
            user.private_metadata = m;
        }
        if let Some(m) = unsafe_metadata {
            user.unsafe_metadata = m;
        }
        Ok(())
    }
}

pub async fn create(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let new = json_body::<CreateUser>(&req)?.parse()?;
    let user = User::create(new, state.now());
    let writes = written(state, &user, EventType::UserCreated, &origin(state, &req)).await?;
    state.store.commit(writes).await?;
    response::ok(&wire::user(&user, Audience::Backend))
}

pub async fn get(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let user = state
        .store
        .get_user(req.path_param("user_id"))
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    response::ok(&wire::user(&user, Audience::Backend))
}

/// `PATCH /v1/users/{user_id}`: changes the fields given; metadata kinds given are replaced.
pub async fn update(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let body = json_body::<UpdateUser>(&req)?;
    let mut user = state
        .store
        .get_user(req.path_param("user_id"))
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    body.apply(&mut user)?;
    user.updated_at = state.now();
    user.version += 1;
    let writes = written(state, &user, EventType::UserUpdated, &origin(state, &req)).await?;
    match state.store.commit(writes).await {
        Ok(()) => response::ok(&wire::user(&user, Audience::Backend)),
        Err(crate::store::StoreError::Conflict) => Err(ApiError::conflict("The user")),
        Err(e) => Err(e.into()),
    }
}

/// `POST /v1/users/{user_id}/ban`: every signed-in session of the user is revoked and its
/// sign-ins are refused (403 `user_banned`) until it is unbanned.
pub async fn ban(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let user =
        crate::app::users::ban(state, req.path_param("user_id"), &origin(state, &req)).await?;
    response::ok(&wire::user(&user, Audience::Backend))
}

/// `POST /v1/users/{user_id}/unban`
pub async fn unban(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let user =
        crate::app::users::unban(state, req.path_param("user_id"), &origin(state, &req)).await?;
    response::ok(&wire::user(&user, Audience::Backend))
}

/// `DELETE /v1/users/{user_id}`: the user's signed-in sessions end, then the user goes.
pub async fn delete(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let id =
        crate::app::users::delete(state, req.path_param("user_id"), &origin(state, &req)).await?;
    response::ok(&serde_json::json!({ "object": "user", "id": id, "deleted": true }))
}
