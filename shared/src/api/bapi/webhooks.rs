//! Webhook endpoints (an extension, not part of Clerk's Backend API, where endpoints are
//! managed in the Dashboard): list, create, delete, and rotate an endpoint's signing
//! secret. The `whsec_…` secret is shown when it is made (create, rotate), never listed.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::http::request::json_body;
use crate::http::response::{self, Response};
use crate::http::{Request, RequestExt};
use crate::state::AppState;
use crate::store::{StoreError, Write};
use crate::webhooks::{
    parse_url, signing, EventType, WebhookEndpoint, MAX_ENDPOINTS, PREVIOUS_SECRET_GRACE_MS,
};

fn render(e: &WebhookEndpoint) -> Value {
    json!({
        "object": "webhook_endpoint",
        "id": e.id,
        "url": e.url,
        "events": e.events.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "created_at": e.created_at,
        "updated_at": e.updated_at,
    })
}

/// The endpoint and, once, its secret.
fn with_secret(e: &WebhookEndpoint, secret: &str) -> Value {
    let mut body = render(e);
    body["secret"] = Value::String(secret.to_string());
    body
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateEndpoint {
    url: String,
    #[serde(default)]
    events: Vec<String>,
}

fn conflict_or(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict => ApiError::conflict("The webhook endpoint"),
        e => e.into(),
    }
}

/// Stores `endpoint` at its version (a new one, or one read at the version before).
async fn save(state: &AppState, endpoint: &WebhookEndpoint) -> Result<(), ApiError> {
    state
        .store
        .commit(vec![Write::webhook_endpoint(endpoint.clone())])
        .await
        .map_err(conflict_or)
}

async fn find(state: &AppState, id: &str) -> Result<WebhookEndpoint, ApiError> {
    state
        .store
        .list_webhook_endpoints()
        .await?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| ApiError::not_found("Webhook endpoint"))
}

/// `GET /v1/webhooks/endpoints`
pub async fn list(state: &AppState) -> Result<Response, ApiError> {
    let all = state.store.list_webhook_endpoints().await?;
    let data: Vec<Value> = all.iter().map(render).collect();
    response::ok(&json!({ "data": data, "total_count": data.len() }))
}

/// `POST /v1/webhooks/endpoints` `{"url": "https://…", "events": ["session.created", …]}`
/// (no `events`: every type).
pub async fn create(state: &AppState, req: Request) -> Result<Response, ApiError> {
    if !state.config.webhooks.enabled {
        return Err(ApiError::new(
            http::StatusCode::BAD_REQUEST,
            "webhooks_disabled",
            "Webhooks are off",
            "This deployment records no webhook events: set WEBHOOKS=on (template.yaml: Webhooks=true).",
        ));
    }
    let body = json_body::<CreateEndpoint>(&req)?;
    let url = parse_url(&body.url, state.config.webhooks.allow_loopback)
        .map_err(|why| ApiError::param_invalid("url", why))?;
    let mut events = Vec::new();
    for name in &body.events {
        let kind = EventType::parse(name).ok_or_else(|| {
            ApiError::param_invalid(
                "events",
                format!("`{name}` is not an event type this service sends"),
            )
        })?;
        if !events.contains(&kind) {
            events.push(kind);
        }
    }
    if state.store.list_webhook_endpoints().await?.len() >= MAX_ENDPOINTS {
        return Err(ApiError::param_invalid(
            "url",
            format!("at most {MAX_ENDPOINTS} webhook endpoints can be registered"),
        ));
    }
    let id = crate::ids::new_id("ep");
    let (secret, key) = signing::new_secret();
    let sealed = state.sealer.seal(&id, &key).await?;
    let now = state.now();
    let endpoint = WebhookEndpoint {
        id,
        url,
        events,
        secret: sealed,
        previous_secret: None,
        previous_until: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    save(state, &endpoint).await?;
    response::ok(&with_secret(&endpoint, &secret))
}

/// `DELETE /v1/webhooks/endpoints/{endpoint_id}`: nothing more is delivered to it.
pub async fn delete(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let endpoint = find(state, req.path_param("endpoint_id")).await?;
    let write = Write::DeleteWebhookEndpoint {
        id: endpoint.id.clone(),
        version: endpoint.version,
    };
    state.store.commit(vec![write]).await.map_err(conflict_or)?;
    response::ok(&json!({ "object": "webhook_endpoint", "id": endpoint.id, "deleted": true }))
}

/// `POST /v1/webhooks/endpoints/{endpoint_id}/rotate_secret`: a new secret signs from now
/// on; the old one signs beside it for 24 hours, so receivers can switch over.
pub async fn rotate_secret(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let mut endpoint = find(state, req.path_param("endpoint_id")).await?;
    let (secret, key) = signing::new_secret();
    let sealed = state.sealer.seal(&endpoint.id, &key).await?;
    let now = state.now();
    endpoint.previous_secret = Some(std::mem::replace(&mut endpoint.secret, sealed));
    endpoint.previous_until = Some(now + PREVIOUS_SECRET_GRACE_MS);
    endpoint.updated_at = now;
    endpoint.version += 1;
    save(state, &endpoint).await?;
    response::ok(&with_secret(&endpoint, &secret))
}
