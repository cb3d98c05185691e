//! The JSON shapes of the Frontend and Backend APIs, kept apart from the domain types so
//! the wire can match Clerk exactly (OpenAPI `Client.Session-2`, `Client.Client-2`,
//! `Client.User`, BAPI `Session`, `User`, `SignInToken`). Timestamps are Unix milliseconds.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::clock::Millis;
use crate::domain::{Client, ClientState, Session, SessionStatus, SignInToken, User};

/// Which API a user object is rendered for: only the Backend API sees private metadata.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Frontend,
    Backend,
}

fn verification(verified: bool) -> Value {
    if verified {
        json!({"object": "verification_admin", "status": "verified", "strategy": "admin", "attempts": null, "expire_at": null})
    } else {
        Value::Null
    }
}

pub fn user(u: &User, audience: Audience) -> Value {
    let emails: Vec<Value> = u
        .email_addresses
        .iter()
        .map(|e| {
            json!({
                "id": e.id, "object": "email_address", "email_address": e.email_address,
                "reserved": false, "verification": verification(e.verified), "linked_to": [],
                "matches_sso_connection": false, "created_at": u.created_at, "updated_at": u.updated_at,
            })
        })
        .collect();
    let phones: Vec<Value> = u
        .phone_numbers
        .iter()
        .map(|p| {
            json!({
                "id": p.id, "object": "phone_number", "phone_number": p.phone_number,
                "reserved_for_second_factor": false, "default_second_factor": false, "reserved": false,
                "verification": verification(p.verified), "linked_to": [], "backup_codes": null,
                "created_at": u.created_at, "updated_at": u.updated_at,
            })
        })
        .collect();
    let image_url = u.image_url.clone().unwrap_or_default();
    let mut out = json!({
        "id": u.id,
        "object": "user",
        "username": u.username,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "image_url": image_url,
        "profile_image_url": image_url,
        "has_image": u.image_url.is_some(),
        "primary_email_address_id": u.primary_email_address_id,
        "primary_phone_number_id": u.primary_phone_number_id,
        "primary_web3_wallet_id": null,
        "password_enabled": false,
        "two_factor_enabled": false,
        "totp_enabled": false,
        "backup_code_enabled": false,
        "email_addresses": emails,
        "phone_numbers": phones,
        "web3_wallets": [],
        "passkeys": [],
        "organization_memberships": [],
        "external_accounts": [],
        "saml_accounts": [],
        "enterprise_accounts": [],
        "password_last_updated_at": null,
        "public_metadata": u.public_metadata,
        "unsafe_metadata": u.unsafe_metadata,
        "external_id": u.external_id,
        "last_sign_in_at": u.last_sign_in_at,
        "banned": false,
        "locked": false,
        "deprovisioned": false,
        "lockout_expires_in_seconds": null,
        "verification_attempts_remaining": null,
        "created_at": u.created_at,
        "updated_at": u.updated_at,
        "delete_self_enabled": false,
        "create_organization_enabled": false,
        "create_organizations_limit": 0,
        "last_active_at": u.last_sign_in_at,
        "mfa_enabled_at": null,
        "mfa_disabled_at": null,
        "legal_accepted_at": null,
    });
    if audience == Audience::Backend {
        out["private_metadata"] = Value::Object(u.private_metadata.clone());
        out["bypass_client_trust"] = Value::Bool(false);
    }
    out
}

pub fn public_user_data(u: &User) -> Value {
    json!({
        "first_name": u.first_name,
        "last_name": u.last_name,
        "image_url": u.image_url,
        "profile_image_url": u.image_url,
        "has_image": u.image_url.is_some(),
        "identifier": u.identifier(),
        "user_id": u.id,
        "username": u.username,
        "banned": false,
        "deprovisioned": false,
    })
}

/// Session tokens by session id, for `last_active_token` (minted at answer time, never
/// stored: see `app::minting::last_active_tokens`).
pub type LastActiveTokens = HashMap<String, String>;

fn token(jwt: Option<&str>) -> Value {
    match jwt {
        Some(jwt) => json!({"object": "token", "jwt": jwt}),
        None => Value::Null,
    }
}

/// The Frontend API session (`Client.Session-2`), with its status as of `now`.
pub fn session(
    s: &Session,
    user: Option<&User>,
    now: Millis,
    last_active_token: Option<&str>,
) -> Value {
    json!({
        "id": s.id,
        "object": "session",
        "status": s.status_at(now).as_str(),
        "expire_at": s.expire_at,
        "abandon_at": s.abandon_at,
        "last_active_at": s.last_active_at,
        "last_active_token": token(last_active_token),
        "last_active_organization_id": s.last_active_organization_id,
        "actor": s.actor,
        "tasks": null,
        "user": user.map(|u| self::user(u, Audience::Frontend)),
        "public_user_data": user.map(public_user_data),
        "factor_verification_age": [((now - s.created_at) / 60_000).max(0), -1],
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    })
}

/// The Frontend API client (`Client.Client-2`): its sessions except removed ones.
pub fn client(
    state: &ClientState,
    users: &HashMap<String, User>,
    now: Millis,
    tokens: &LastActiveTokens,
) -> Value {
    let sessions: Vec<Value> = state
        .sessions
        .iter()
        .filter(|s| s.status != SessionStatus::Removed)
        .map(|s| {
            let jwt = tokens.get(&s.id).map(String::as_str);
            session(s, users.get(&s.user_id), now, jwt)
        })
        .collect();
    client_object(&state.client, state.last_active_session_id(now), sessions)
}

fn client_object(c: &Client, last_active_session_id: Option<&str>, sessions: Vec<Value>) -> Value {
    json!({
        "object": "client",
        "id": c.id,
        "sessions": sessions,
        "sign_in": null,
        "sign_up": null,
        "last_active_session_id": last_active_session_id,
        "last_authentication_strategy": null,
        "cookie_expires_at": c.expires_at,
        "captcha_bypass": false,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    })
}

/// A completed ticket sign-in (`Client.SignIn-2`).
pub fn completed_sign_in(id: &str, session_id: &str, user: &User, abandon_at: Millis) -> Value {
    json!({
        "object": "sign_in_attempt",
        "id": id,
        "status": "complete",
        "supported_identifiers": [],
        "supported_first_factors": [],
        "supported_second_factors": null,
        "first_factor_verification": {
            "object": "verification_ticket", "status": "verified", "strategy": "ticket",
            "attempts": null, "expire_at": null,
        },
        "second_factor_verification": null,
        "identifier": user.identifier(),
        "user_data": {
            "first_name": user.first_name, "last_name": user.last_name,
            "image_url": user.image_url, "has_image": user.image_url.is_some(),
        },
        "created_session_id": session_id,
        "abandon_at": abandon_at,
    })
}

/// The Backend API session (BAPI `Session`).
pub fn backend_session(s: &Session, now: Millis) -> Value {
    json!({
        "object": "session",
        "id": s.id,
        "user_id": s.user_id,
        "client_id": s.client_id,
        "actor": s.actor,
        "status": s.status_at(now).as_str(),
        "last_active_organization_id": s.last_active_organization_id,
        "last_active_at": s.last_active_at,
        "latest_activity": null,
        "expire_at": s.expire_at,
        "abandon_at": s.abandon_at,
        "updated_at": s.updated_at,
        "created_at": s.created_at,
        "tasks": null,
    })
}

/// The Backend API sign-in token. `ticket` is shown only in the answer that creates it.
pub fn sign_in_token(
    t: &SignInToken,
    ticket: Option<&str>,
    url: Option<String>,
    now: Millis,
) -> Value {
    let mut out = json!({
        "object": "sign_in_token",
        "id": t.id,
        "status": t.wire_status(now),
        "user_id": t.user_id,
        "url": url,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    });
    if let Some(ticket) = ticket {
        out["token"] = Value::String(ticket.to_string());
    }
    out
}

pub fn token_response(jwt: &str) -> Value {
    json!({"object": "token", "jwt": jwt})
}

/// The Backend API JWT template. The signing key is write-only: never here.
pub fn jwt_template(t: &crate::domain::JwtTemplate) -> Value {
    json!({
        "object": "jwt_template",
        "id": t.id,
        "name": t.name,
        "claims": t.claims,
        "lifetime": t.lifetime,
        "allowed_clock_skew": t.allowed_clock_skew,
        "custom_signing_key": t.custom_signing_key,
        "signing_algorithm": t.signing_algorithm.as_str(),
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    })
}
