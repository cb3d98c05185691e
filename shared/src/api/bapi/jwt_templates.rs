//! JWT template management: `POST/GET /v1/jwt_templates`,
//! `GET/PATCH/DELETE /v1/jwt_templates/{template_id}`.

use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::list_answer;
use crate::domain::{JwtTemplate, SigningAlgorithm, SigningKey, RESERVED_CLAIMS};
use crate::error::ApiError;
use crate::http::request::json_body;
use crate::http::response::{self, Response};
use crate::http::{Request, RequestExt};
use crate::state::AppState;
use crate::store::{Expect, Write};
use crate::tokens::template_token::{CompiledTemplate, TemplateInvalid};
use crate::wire;

pub(crate) const DEFAULT_LIFETIME: u64 = 60;
pub(crate) const DEFAULT_CLOCK_SKEW: u64 = 5;

/// A create or update body. On update, absent fields keep their values.
#[derive(Deserialize)]
struct TemplateBody {
    name: Option<String>,
    /// A JSON object, or a string holding one (as Clerk's dashboard sends it).
    claims: Option<Value>,
    lifetime: Option<i64>,
    allowed_clock_skew: Option<i64>,
    custom_signing_key: Option<bool>,
    signing_algorithm: Option<String>,
    signing_key: Option<String>,
}

fn name(value: &str) -> Result<String, ApiError> {
    let valid = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid {
        Ok(value.to_string())
    } else {
        Err(ApiError::param_invalid(
            "name",
            "name must be 1 to 64 letters, digits, '_', '-' or '.'.",
        ))
    }
}

fn claims(value: Value) -> Result<Map<String, Value>, ApiError> {
    let object = match value {
        Value::Object(map) => map,
        Value::String(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => map,
            _ => return Err(not_an_object()),
        },
        _ => return Err(not_an_object()),
    };
    if let Some(reserved) = RESERVED_CLAIMS.iter().find(|c| object.contains_key(**c)) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "jwt_template_reserved_claim",
            format!("You can't use the reserved claim: '{reserved}'"),
            format!("The claims {} are set by the service or mark session tokens; '{reserved}' cannot be in a template.", RESERVED_CLAIMS.join(", ")),
        )
        .with_param("claims"));
    }
    crate::limits::check_template_claims(&object)
        .map_err(|e| ApiError::limit_exceeded("claims", e))?;
    Ok(object)
}

fn not_an_object() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "form_param_format_invalid",
        "claims is invalid",
        "claims must be a JSON object.",
    )
    .with_param("claims")
}

fn seconds(param: &str, value: i64, min: i64, max: i64) -> Result<u64, ApiError> {
    if (min..=max).contains(&value) {
        Ok(value as u64)
    } else {
        Err(ApiError::param_invalid(
            param,
            format!("{param} must be from {min} to {max} seconds."),
        ))
    }
}

/// The template `body` makes of `base` (or of nothing, on create), checked whole:
/// claims parse and the key signs before anything is saved.
fn build(
    state: &AppState,
    body: TemplateBody,
    base: Option<&JwtTemplate>,
) -> Result<JwtTemplate, ApiError> {
    let now = state.now();
    let name = match (body.name, base) {
        (Some(n), _) => name(&n)?,
        (None, Some(b)) => b.name.clone(),
        (None, None) => return Err(ApiError::param_missing("name")),
    };
    let claims = match (body.claims, base) {
        (Some(c), _) => claims(c)?,
        (None, Some(b)) => b.claims.clone(),
        (None, None) => return Err(ApiError::param_missing("claims")),
    };
    let lifetime = match body.lifetime {
        Some(v) => seconds("lifetime", v, 30, 315_360_000)?,
        None => base.map_or(DEFAULT_LIFETIME, |b| b.lifetime),
    };
    let allowed_clock_skew = match body.allowed_clock_skew {
        Some(v) => seconds("allowed_clock_skew", v, 0, 300)?,
        None => base.map_or(DEFAULT_CLOCK_SKEW, |b| b.allowed_clock_skew),
    };
    let custom_signing_key = body
        .custom_signing_key
        .or(base.map(|b| b.custom_signing_key))
        .unwrap_or(false);
    // Checked even when no custom key uses it: a bad value is refused, never ignored.
    let requested_algorithm = body
        .signing_algorithm
        .as_deref()
        .map(|a| {
            SigningAlgorithm::parse(a).ok_or_else(|| {
                ApiError::param_invalid("signing_algorithm", "signing_algorithm must be one of HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384.")
            })
        })
        .transpose()?;
    let (signing_algorithm, signing_key) = if custom_signing_key {
        let algorithm = match (requested_algorithm, base.filter(|b| b.custom_signing_key)) {
            (Some(a), _) => a,
            (None, Some(b)) => b.signing_algorithm,
            (None, None) => return Err(ApiError::param_missing("signing_algorithm")),
        };
        let key = match (body.signing_key, base.filter(|b| b.custom_signing_key)) {
            (Some(k), _) => SigningKey::new(k),
            (None, Some(b)) => b
                .signing_key
                .clone()
                .ok_or_else(|| ApiError::param_missing("signing_key"))?,
            (None, None) => return Err(ApiError::param_missing("signing_key")),
        };
        (algorithm, Some(key))
    } else {
        (SigningAlgorithm::RS256, None)
    };
    let template = JwtTemplate {
        id: base.map_or_else(|| crate::ids::new_id("jtmp"), |b| b.id.clone()),
        name,
        claims,
        lifetime,
        allowed_clock_skew,
        custom_signing_key,
        signing_algorithm,
        signing_key,
        created_at: base.map_or(now, |b| b.created_at),
        updated_at: now,
        version: base.map_or(1, |b| b.version + 1),
    };
    // Parse once here, so a template that would fail at mint time is never saved.
    CompiledTemplate::compile(&template).map_err(|e| match e {
        TemplateInvalid::Claims(e) => ApiError::param_invalid("claims", e.to_string()),
        TemplateInvalid::Key(why) => ApiError::param_invalid("signing_key", why),
    })?;
    Ok(template)
}

fn name_taken(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "form_identifier_exists",
        "That name is taken",
        format!("A JWT template named '{name}' exists already."),
    )
    .with_param("name")
}

async fn find(state: &AppState, id: &str) -> Result<JwtTemplate, ApiError> {
    state
        .store
        .list_jwt_templates()
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::not_found("JWT template"))
}

pub async fn create(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let template = build(state, json_body::<TemplateBody>(&req)?, None)?;
    // Templates are keyed by name: a second create of a name fails its condition.
    match state
        .store
        .commit(vec![Write::JwtTemplate(template.clone(), Expect::Absent)])
        .await
    {
        Ok(()) => response::ok(&wire::jwt_template(&template)),
        Err(crate::store::StoreError::Conflict) => Err(name_taken(&template.name)),
        Err(e) => Err(e.into()),
    }
}

/// Both list styles: `paginated=true` → `{data, total_count}`, else a bare array.
pub async fn list(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let all = state.store.list_jwt_templates().await?;
    list_answer(&req, &all, wire::jwt_template)
}

pub async fn get(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let template = find(state, req.path_param("template_id")).await?;
    response::ok(&wire::jwt_template(&template))
}

pub async fn update(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let base = find(state, req.path_param("template_id")).await?;
    let template = build(state, json_body::<TemplateBody>(&req)?, Some(&base))?;
    let writes = if template.name == base.name {
        vec![Write::jwt_template(template.clone())]
    } else {
        // A rename moves the template to its new name's key, in one commit.
        vec![
            Write::DeleteJwtTemplate {
                name: base.name.clone(),
                version: base.version,
            },
            Write::JwtTemplate(template.clone(), Expect::Absent),
        ]
    };
    match state.store.commit(writes).await {
        Ok(()) => response::ok(&wire::jwt_template(&template)),
        Err(crate::store::StoreError::Conflict) if template.name != base.name => {
            match state.store.get_jwt_template(&template.name).await? {
                Some(_) => Err(name_taken(&template.name)),
                None => Err(ApiError::conflict("The JWT template")),
            }
        }
        Err(crate::store::StoreError::Conflict) => Err(ApiError::conflict("The JWT template")),
        Err(e) => Err(e.into()),
    }
}

pub async fn delete(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let template = find(state, req.path_param("template_id")).await?;
    match state
        .store
        .commit(vec![Write::DeleteJwtTemplate {
            name: template.name.clone(),
            version: template.version,
        }])
        .await
    {
        Ok(()) => {
            response::ok(&json!({ "object": "jwt_template", "id": template.id, "deleted": true }))
        }
        Err(crate::store::StoreError::Conflict) => Err(ApiError::conflict("The JWT template")),
        Err(e) => Err(e.into()),
    }
}
