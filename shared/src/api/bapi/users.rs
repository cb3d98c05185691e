//! `POST /v1/users`, `GET /v1/users/{user_id}` and `PATCH /v1/users/{user_id}`.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::app::passwords::{self, NewPassword};
use crate::app::users;
use crate::domain::password::{DigestRejected, Hasher, PasswordDigest};
use crate::domain::{NewUser, User};
use crate::error::ApiError;
use crate::http::activity::origin;
use crate::http::request::json_body;
use crate::http::response::{self, Response};
use crate::http::{Request, RequestExt};
use crate::state::AppState;
use crate::wire;

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
    #[serde(flatten)]
    password: PasswordFields,
}

/// `password`, or `password_digest` with `password_hasher`, as create and update take them.
#[derive(Deserialize, Default)]
struct PasswordFields {
    password: Option<String>,
    password_digest: Option<String>,
    password_hasher: Option<String>,
    skip_password_checks: Option<bool>,
}

impl PasswordFields {
    /// The password given, its form checked (the rules and hashing come later, in
    /// `app::passwords`); `None` when none is given.
    fn parse(self) -> Result<Option<NewPassword>, ApiError> {
        let skip_checks = self.skip_password_checks.unwrap_or(false);
        match (self.password, self.password_digest, self.password_hasher) {
            (None, None, None) => Ok(None),
            (Some(password), None, None) => Ok(Some(NewPassword::Plain {
                password,
                skip_checks,
            })),
            (Some(_), Some(_), _) | (Some(_), None, Some(_)) => Err(ApiError::param_invalid(
                "password",
                "Give either password, or password_digest with password_hasher; not both.",
            )),
            (None, None, Some(_)) => Err(ApiError::param_missing("password_digest")),
            (None, Some(_), None) => Err(ApiError::param_missing("password_hasher")),
            (None, Some(digest), Some(hasher)) => {
                let hasher = Hasher::parse(&hasher).ok_or_else(|| {
                    ApiError::param_invalid(
                        "password_hasher",
                        "password_hasher must be one of argon2id, argon2i, bcrypt, \
                         pbkdf2_sha256, pbkdf2_sha256_django.",
                    )
                })?;
                match PasswordDigest::import(hasher, &digest) {
                    Ok(digest) => Ok(Some(NewPassword::Imported(digest))),
                    Err(DigestRejected::Malformed) => Err(format_error(
                        "password_digest",
                        "password_digest is not in the format of its password_hasher.",
                    )),
                    Err(DigestRejected::TooCostly) => Err(ApiError::param_invalid(
                        "password_digest",
                        "password_digest costs more to verify than this service allows \
                         (docs/sign-in.md, \"Imported digests\").",
                    )),
                }
            }
        }
    }
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
    /// Checks every field; what comes out is a valid new user, and the password to give it
    /// (hashed later).
    fn parse(self) -> Result<(NewUser, Option<NewPassword>), ApiError> {
        let password = self.password.parse()?;
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
        let new = NewUser {
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
            password: None,
        };
        Ok((new, password))
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
        if !crate::domain::identifier::valid_username(u) {
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
    #[serde(flatten)]
    password: PasswordFields,
    /// With a new password: every signed-in session of the user is revoked.
    sign_out_of_other_sessions: Option<bool>,
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
    let (new, password) = json_body::<CreateUser>(&req)?.parse()?;
    let user = users::create(state, new, password, &origin(state, &req)).await?;
    response::ok(&wire::backend_user(&user, state.now()))
}

pub async fn get(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let user = state
        .store
        .get_user(req.path_param("user_id"))
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    response::ok(&wire::backend_user(&user, state.now()))
}

/// `PATCH /v1/users/{user_id}`: changes the fields given; metadata kinds given are replaced.
pub async fn update(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let mut body = json_body::<UpdateUser>(&req)?;
    let password = std::mem::take(&mut body.password).parse()?;
    let sign_out = match (body.sign_out_of_other_sessions.take(), &password) {
        (Some(true), None) => {
            return Err(ApiError::param_invalid(
                "sign_out_of_other_sessions",
                "sign_out_of_other_sessions can only be used with a new password.",
            ))
        }
        (sign_out, _) => sign_out.unwrap_or(false),
    };
    let user = users::update(
        state,
        req.path_param("user_id"),
        |user| body.apply(user),
        password,
        sign_out,
        &origin(state, &req),
    )
    .await?;
    response::ok(&wire::backend_user(&user, state.now()))
}

#[derive(Deserialize)]
struct VerifyPassword {
    password: Option<String>,
}

/// `POST /v1/users/{user_id}/verify_password`: `{"verified": true}` when the password is
/// the user's; 422 `form_password_incorrect` when not.
pub async fn verify_password(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let password = json_body::<VerifyPassword>(&req)?
        .password
        .ok_or_else(|| ApiError::param_missing("password"))?;
    passwords::verify(state, req.path_param("user_id"), password).await?;
    response::ok(&serde_json::json!({ "verified": true }))
}

/// `POST /v1/users/{user_id}/ban`: every signed-in session of the user is revoked and its
/// sign-ins are refused (403 `user_banned`) until it is unbanned.
pub async fn ban(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let user = users::ban(state, req.path_param("user_id"), &origin(state, &req)).await?;
    response::ok(&wire::backend_user(&user, state.now()))
}

/// `POST /v1/users/{user_id}/unban`
pub async fn unban(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let user = users::unban(state, req.path_param("user_id"), &origin(state, &req)).await?;
    response::ok(&wire::backend_user(&user, state.now()))
}

/// `POST /v1/users/{user_id}/unlock`: the failed sign-in attempts are forgotten and a
/// lock lifted.
pub async fn unlock(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let user = users::unlock(state, req.path_param("user_id")).await?;
    response::ok(&wire::backend_user(&user, state.now()))
}

/// `DELETE /v1/users/{user_id}`: the user's signed-in sessions end, then the user goes.
pub async fn delete(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let id = users::delete(state, req.path_param("user_id"), &origin(state, &req)).await?;
    response::ok(&serde_json::json!({ "object": "user", "id": id, "deleted": true }))
}
