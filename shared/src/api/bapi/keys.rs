//! Extensions to Clerk's Backend API (Clerk has no such endpoints): the keyring's
//! lifecycle, and rotating it. docs/keys.md is the runbook.

use crate::error::ApiError;
use crate::http::response::{self, Response};
use crate::http::Request;
use serde_json::Value;

use crate::keyring::{KeyringRecord, Rotation};
use crate::state::AppState;
use crate::store::StoreError;

/// `GET /v1/instance/keys`: every key's kid, state and times; never key material.
pub async fn get(state: &AppState) -> Result<Response, ApiError> {
    let record = state
        .store
        .keyring()
        .await?
        .ok_or_else(|| ApiError::from(StoreError::Fault("the keyring is missing".into())))?;
    response::ok(&described(state, &record))
}

/// The keyring's lifecycle, with each signing key's public PEM where this process has the
/// key loaded: what a networkless `jwtKey` verifier needs (docs/keys.md).
fn described(state: &AppState, record: &KeyringRecord) -> Value {
    let mut value = record.describe(state.now());
    let keys = state.keys();
    if let Some(list) = value["session_signing_keys"].as_array_mut() {
        for key in list {
            let pem = key["kid"]
                .as_str()
                .and_then(|kid| keys.signing_key(kid))
                .map(|k| k.public_key_pem().to_string());
            key["public_key_pem"] = pem.map_or(Value::Null, Value::String);
        }
    }
    value
}

/// `POST /v1/instance/keys/rotate` with `{"keys": "all" | "session_signing" |
/// "client_token", "emergency": false}` (both optional): answers the keyring as
/// `GET /v1/instance/keys` does. 409 `key_rotation_pending` while the previous rotation's
/// next key waits to sign.
pub async fn rotate(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let rotation: Rotation = crate::http::request::json_body(&req)?;
    let record = crate::app::keys::rotate(state, rotation).await?;
    response::ok(&described(state, &record))
}
