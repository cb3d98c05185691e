//! Every error a caller can see, rendered in one place as Clerk's `ClerkErrors` body.

use http::StatusCode;
use serde_json::{json, Map, Value};

use crate::domain::password::PasswordRejected;
use crate::domain::{SessionAction, TransitionError};
use crate::limits::Exceeded;
use crate::store::StoreError;

/// An error answered to a caller. `message`s never carry secrets, tokens or keys.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub long_message: String,
    pub meta: Map<String, Value>,
    /// Seconds, for 429/503 answers.
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        long_message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            long_message: long_message.into(),
            meta: Map::new(),
            retry_after: None,
        }
    }

    pub fn with_meta(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.meta.insert(key.to_string(), value.into());
        self
    }

    pub fn with_param(self, param: &str) -> Self {
        self.with_meta("param_name", param)
    }

    // ----- the catalogue this service answers with (see docs/api.md) -----

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            format!("{what} not found"),
            format!("{what} not found"),
        )
    }

    pub fn session_not_found(id: &str) -> Self {
        Self::not_found("Session").with_meta("session_id", id)
    }

    pub fn route_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "not found",
            "The requested resource does not exist",
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed",
            "The HTTP method is not allowed on this resource",
        )
    }

    /// A request that needs a signed-in client came without one.
    pub fn signed_out() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "signed_out",
            "You are signed out",
            "You are signed out. Sign in to continue.",
        )
    }

    /// A client token that is forged, tampered with, expired or superseded.
    pub fn authentication_invalid(why: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_invalid",
            "Invalid authentication",
            format!("Unable to authenticate the request: {why}."),
        )
    }

    /// The Backend API secret key is missing or wrong.
    pub fn secret_key_invalid() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_invalid",
            "Invalid authentication",
            "The Authorization header must carry the Backend API secret key as a Bearer token.",
        )
    }

    pub fn origin_invalid() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "origin_invalid",
            "Invalid origin",
            "The Origin of this request is not allowed to act on this client.",
        )
    }

    /// A sign-in of a user the Backend API banned (Clerk's code; clerk-js treats it as a
    /// final sign-out).
    pub fn user_banned() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "user_banned",
            "Account banned",
            "This account is banned: it cannot sign in until it is unbanned.",
        )
    }

    /// A sign-in of a user who has `session_id` signed in on this client already (Clerk's
    /// code and meta: clerk-js and `<SignIn/>` make that session active instead).
    pub fn identifier_already_signed_in(session_id: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "identifier_already_signed_in",
            "You're already signed in",
            "You're already signed in.",
        )
        .with_meta("session_id", session_id)
    }

    /// A sign-in beside another signed-in session in single-session mode (Clerk's code).
    pub fn session_exists() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "session_exists",
            "Session already exists",
            "You're currently in single session mode. You can only be signed into one \
             account at a time.",
        )
    }

    /// A sign-in on a client that has as many signed-in sessions as multi-session mode
    /// allows (`MAX_SESSIONS_PER_CLIENT`).
    pub fn too_many_sessions(max: usize) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "too_many_sessions",
            "Too many accounts signed in",
            format!(
                "This client has {max} accounts signed in, as many as this instance allows: \
                 sign one out first."
            ),
        )
    }

    /// A request that did not come through the CDN the instance is configured behind.
    pub fn origin_unverified() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "authorization_invalid",
            "Unauthorized request",
            "Requests must come through the service's public URL.",
        )
    }

    pub fn header_repeated(header: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "multiple_authorization_header_values_forbidden",
            "Multiple header values",
            format!("The {header} header must be sent once."),
        )
    }

    pub fn invalid_action(action: SessionAction, session_id: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_action_for_session",
            "Invalid action",
            format!("Unable to {} session {session_id}", action.verb()),
        )
        .with_meta("session_id", session_id)
    }

    pub fn from_transition(err: TransitionError, session_id: &str) -> Self {
        match err {
            TransitionError::NotAllowed { action, .. } => Self::invalid_action(action, session_id),
            TransitionError::SignedOut => Self::signed_out().with_meta("session_id", session_id),
        }
    }

    pub fn organization_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "organization_not_found_or_unauthorized",
            "Organization not found or unauthorized",
            "Organizations are not supported by this service yet.",
        )
    }

    pub fn param_missing(param: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_missing",
            format!("{param} is missing"),
            format!("{param} must be included."),
        )
        .with_param(param)
    }

    pub fn param_invalid(param: &str, why: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_value_invalid",
            format!("{param} is invalid"),
            why,
        )
        .with_param(param)
    }

    /// `param` over one of the size limits (`limits`).
    pub fn limit_exceeded(param: &str, exceeded: Exceeded) -> Self {
        match exceeded {
            Exceeded::Bytes { len, max } => Self::param_invalid(
                param,
                format!("{param} must be at most {max} bytes of JSON; it is {len}."),
            )
            .with_meta("limit", max),
            Exceeded::Depth { depth, max } => Self::param_invalid(
                param,
                format!("{param} nest {depth} levels deep; at most {max} are allowed."),
            )
            .with_meta("limit", max),
        }
    }

    /// A new password the rules refuse (422, Clerk's codes).
    pub fn password_rejected(why: PasswordRejected) -> Self {
        let (code, message) = match why {
            PasswordRejected::TooShort(min) => (
                "form_password_length_too_short",
                format!("Passwords must be {min} characters or more."),
            ),
            PasswordRejected::TooLong(max) => (
                "form_password_length_too_long",
                format!("Passwords must be {max} characters or fewer."),
            ),
            PasswordRejected::Common => (
                "form_password_pwned",
                "This password is one of the most common passwords. Please use a different password."
                    .to_string(),
            ),
            PasswordRejected::NotStrongEnough => (
                "form_password_not_strong_enough",
                "Given password is not strong enough.".to_string(),
            ),
        };
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
            message.clone(),
            message,
        )
        .with_param("password")
    }

    pub fn password_incorrect() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_password_incorrect",
            "Password is incorrect. Try again, or use another method.",
            "Password is incorrect. Try again, or use another method.",
        )
        .with_param("password")
    }

    /// No user has the identifier a sign-in named.
    pub fn identifier_not_found() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_identifier_not_found",
            "Couldn't find your account.",
            "Couldn't find your account.",
        )
        .with_param("identifier")
    }

    /// Another user holds this email address or username (`param`).
    pub fn identifier_exists(param: &str) -> Self {
        let what = if param == "username" {
            "username"
        } else {
            "email address"
        };
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_identifier_exists",
            format!("That {what} is taken. Please try another."),
            format!("That {what} is taken. Please try another."),
        )
        .with_param(param)
    }

    pub fn code_incorrect() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_code_incorrect",
            "Incorrect code",
            "Incorrect code",
        )
        .with_param("code")
    }

    pub fn verification_expired() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "verification_expired",
            "This verification has expired.",
            "This verification has expired. You must create a new one.",
        )
        .with_param("code")
    }

    /// Too many wrong attempts, or a code already used: a new one must be prepared.
    pub fn verification_failed() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "verification_failed",
            "Too many failed attempts",
            "Too many failed attempts. You have to try again with the same or another method.",
        )
        .with_param("code")
    }

    /// The account is locked after too many failed attempts, for `seconds` more.
    pub fn user_locked(seconds: i64) -> Self {
        let minutes = (seconds + 59) / 60;
        Self::new(
            StatusCode::FORBIDDEN,
            "user_locked",
            "Account locked",
            format!("Your account is locked. You will be able to try again in {minutes} minutes."),
        )
        .with_meta("lockout_expires_in_seconds", seconds)
    }

    /// A strategy the user (or the instance) does not have, or a code never prepared.
    pub fn strategy_for_user_invalid() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "strategy_for_user_invalid",
            "Invalid verification strategy",
            "The verification strategy is not valid for this account.",
        )
        .with_param("strategy")
    }

    /// A sign-in or sign-up asked for a step its status does not take (out of order,
    /// or after it completed or was abandoned).
    pub fn status_invalid(what: &str, status: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "status_invalid",
            format!("This {what} cannot take this step"),
            format!("This {what} cannot take this step in its status ({status})."),
        )
    }

    /// One sign-in or sign-up has sent as many codes as it may.
    pub fn too_many_codes() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many requests",
            "Too many codes were sent for this attempt. Please start again in a bit.",
        )
    }

    /// Sign-ups are closed on this instance.
    pub fn sign_up_restricted() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "sign_up_restricted",
            "Sign-ups are not allowed",
            "This application does not allow sign-ups.",
        )
    }

    /// The email carrying a code could not be handed to the mail service.
    pub fn email_not_delivered() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "email_delivery_failed",
            "The email could not be sent",
            "The email with your code could not be sent. Please try again in a bit.",
        )
    }

    pub fn password_not_set() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "password_not_set",
            "This user has no password",
            "This user has no password to verify.",
        )
    }

    pub fn malformed(why: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed_request_parameters",
            "Malformed request parameters",
            why,
        )
    }

    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_body_too_large",
            "Request body too large",
            format!("The request body must be at most {limit} bytes."),
        )
    }

    pub fn headers_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request_header_fields_too_large",
            "Request headers too large",
            format!("The request headers must be at most {limit} bytes together."),
        )
    }

    /// A template renders more claims than a token may carry (the template and the user's
    /// metadata together, so the fix is in either).
    pub fn token_too_large() -> Self {
        let limit = crate::limits::RENDERED_CLAIMS_MAX_BYTES;
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "jwt_template_claims_too_large",
            "Token too large",
            format!("This JWT template renders more than {limit} bytes of claims for this user; shorten the template or the metadata it names."),
        )
        .with_param("claims")
        .with_meta("limit", limit)
    }

    /// Dev-browser endpoints on a production instance. Clerk's FAPI documents a 400 "The
    /// hostname is invalid" for `POST /v1/dev_browser` on the wrong kind of instance.
    pub fn dev_browser_disabled() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "host_invalid",
            "Invalid host",
            "Development browsers are served only by development instances; this is a production instance.",
        )
    }

    /// A dev-browser token presented to a production instance.
    pub fn dev_browser_unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "dev_browser_unauthenticated",
            "Dev browser unauthenticated",
            "Development browser tokens (__clerk_db_jwt) are accepted only by development instances.",
        )
        .with_param("__clerk_db_jwt")
    }

    pub fn unsupported_content_type(expected: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_type",
            "Unsupported content type",
            format!("The request body must be {expected}."),
        )
    }

    pub fn ticket_invalid(why: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ticket_invalid",
            "Invalid ticket",
            why.to_string(),
        )
        .with_param("ticket")
    }

    pub fn ticket_expired() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ticket_expired",
            "Ticket expired",
            "This sign-in ticket has expired. Ask for a new one.",
        )
        .with_param("ticket")
    }

    pub fn conflict(what: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "resource_conflict",
            "Conflict",
            format!("{what} was changed by another request; try again."),
        )
    }

    /// A rotation was asked for while the previous one's next key is still waiting to sign.
    pub fn key_rotation_pending(signs_from: i64) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "key_rotation_pending",
            "A key rotation is under way",
            "The previous rotation's next key has not started signing yet; rotate again after it has, or use an emergency rotation.",
        )
        .with_meta("signs_from", signs_from)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_clerk_error",
            "Oops, an unexpected error occurred",
            "There was an internal error on our servers. Nothing was changed.",
        )
    }

    pub fn unavailable(retry_after: u32) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "Service temporarily unavailable",
            "The session store is not answering right now. The change was not confirmed: try again, or read it back first (see Retrying in docs/api.md).",
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// The local server holds as many connections as it may.
    pub fn too_many_connections() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "Service temporarily unavailable",
            "The server is at its connection limit. Nothing was changed; try again.",
        );
        e.retry_after = Some(1);
        e
    }

    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "Request timeout",
            "The request body did not arrive in time. Nothing was changed.",
        )
    }

    /// The `ClerkErrors` JSON body.
    pub fn body(&self, trace_id: &str) -> Value {
        let mut error = json!({
            "message": self.message,
            "long_message": self.long_message,
            "code": self.code,
        });
        if !self.meta.is_empty() {
            error["meta"] = Value::Object(self.meta.clone());
        }
        json!({ "errors": [error], "clerk_trace_id": trace_id })
    }
}

impl From<crate::tokens::template_token::MintError> for ApiError {
    fn from(err: crate::tokens::template_token::MintError) -> Self {
        use crate::tokens::template_token::MintError;
        match err {
            MintError::TooLarge => ApiError::token_too_large(),
            MintError::Key(_) => ApiError::internal(),
        }
    }
}

impl From<crate::tokens::KeyError> for ApiError {
    fn from(err: crate::tokens::KeyError) -> Self {
        tracing::error!(error = %err, "key operation failed");
        ApiError::internal()
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => {
                tracing::error!(error = %err, "store unavailable");
                ApiError::unavailable(1)
            }
            StoreError::Conflict => ApiError::conflict("The resource"),
            StoreError::Fault(_) => {
                tracing::error!(error = %err, "store fault");
                ApiError::internal()
            }
        }
    }
}
