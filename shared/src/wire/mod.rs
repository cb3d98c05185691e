//! The JSON shapes of the Frontend and Backend APIs, kept apart from the domain types so
//! the wire can match Clerk exactly (OpenAPI `Client.Session-2`, `Client.Client-2`,
//! `Client.User`, BAPI `Session`, `User`, `SignInToken`). Timestamps are Unix milliseconds.
//!
//! Each shape is a `Serialize` struct that borrows from the records, written straight into
//! the response body: no intermediate JSON tree. A session that appears twice in one
//! answer (as `response` and in `client.sessions`) is rendered once, as [`RawValue`], and
//! its text copied. `shared/tests/golden/` holds every endpoint's answer and is compared
//! on every test run.

use std::collections::HashMap;
use std::sync::Arc;

use serde::ser::Serializer;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::clock::Millis;
use crate::domain::{
    Client, ClientState, EmailAddress, JwtTemplate, PhoneNumber, Session, SessionActivity,
    SessionStatus, SignInToken, User,
};

/// Which API a user object is rendered for: only the Backend API sees private metadata.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Frontend,
    Backend,
}

/// A field Clerk always sends as `null` (a feature this service does not have), and an
/// envelope's `response` or `client` when there is none.
pub type Null = Option<()>;
pub const NULL: Null = None;
/// A field Clerk always sends as `[]`.
type Empty = [(); 0];
const EMPTY: Empty = [];

mod flows;
mod rendered;
pub use flows::{
    sign_in as sign_in_attempt, sign_up as sign_up_attempt, strategy_name, ClientFlows, Offered,
};
pub use rendered::{RenderCache, ShownSession, ShownUser};

type Metadata = Map<String, Value>;

/// An identifier verified by the Backend API that created it.
#[derive(Serialize)]
struct AdminVerification {
    object: &'static str,
    status: &'static str,
    strategy: &'static str,
    attempts: Null,
    expire_at: Null,
}

fn verification(verified: bool) -> Option<AdminVerification> {
    verified.then_some(AdminVerification {
        object: "verification_admin",
        status: "verified",
        strategy: "admin",
        attempts: NULL,
        expire_at: NULL,
    })
}

#[derive(Serialize)]
struct EmailAddressJson<'a> {
    id: &'a str,
    object: &'static str,
    email_address: &'a str,
    reserved: bool,
    verification: Option<AdminVerification>,
    linked_to: Empty,
    matches_sso_connection: bool,
    created_at: Millis,
    updated_at: Millis,
}

#[derive(Serialize)]
struct PhoneNumberJson<'a> {
    id: &'a str,
    object: &'static str,
    phone_number: &'a str,
    reserved_for_second_factor: bool,
    default_second_factor: bool,
    reserved: bool,
    verification: Option<AdminVerification>,
    linked_to: Empty,
    backup_codes: Null,
    created_at: Millis,
    updated_at: Millis,
}

/// A user's email addresses, serialized straight from the record.
struct Emails<'a>(&'a User);

impl Serialize for Emails<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let u = self.0;
        serializer.collect_seq(
            u.email_addresses
                .iter()
                .map(|e: &EmailAddress| EmailAddressJson {
                    id: &e.id,
                    object: "email_address",
                    email_address: &e.email_address,
                    reserved: false,
                    verification: verification(e.verified),
                    linked_to: EMPTY,
                    matches_sso_connection: false,
                    created_at: u.created_at,
                    updated_at: u.updated_at,
                }),
        )
    }
}

/// A user's phone numbers, serialized straight from the record.
struct Phones<'a>(&'a User);

impl Serialize for Phones<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let u = self.0;
        serializer.collect_seq(
            u.phone_numbers
                .iter()
                .map(|p: &PhoneNumber| PhoneNumberJson {
                    id: &p.id,
                    object: "phone_number",
                    phone_number: &p.phone_number,
                    reserved_for_second_factor: false,
                    default_second_factor: false,
                    reserved: false,
                    verification: verification(p.verified),
                    linked_to: EMPTY,
                    backup_codes: NULL,
                    created_at: u.created_at,
                    updated_at: u.updated_at,
                }),
        )
    }
}

/// The user (FAPI `Client.User`, BAPI `User`).
#[derive(Serialize)]
pub struct UserJson<'a> {
    id: &'a str,
    object: &'static str,
    username: Option<&'a str>,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    image_url: &'a str,
    profile_image_url: &'a str,
    has_image: bool,
    primary_email_address_id: Option<&'a str>,
    primary_phone_number_id: Option<&'a str>,
    primary_web3_wallet_id: Null,
    password_enabled: bool,
    two_factor_enabled: bool,
    totp_enabled: bool,
    backup_code_enabled: bool,
    email_addresses: Emails<'a>,
    phone_numbers: Phones<'a>,
    web3_wallets: Empty,
    passkeys: Empty,
    organization_memberships: Empty,
    external_accounts: Empty,
    saml_accounts: Empty,
    enterprise_accounts: Empty,
    password_last_updated_at: Option<Millis>,
    public_metadata: &'a Metadata,
    unsafe_metadata: &'a Metadata,
    external_id: Option<&'a str>,
    last_sign_in_at: Option<Millis>,
    banned: bool,
    locked: bool,
    deprovisioned: bool,
    lockout_expires_in_seconds: Option<i64>,
    verification_attempts_remaining: Null,
    created_at: Millis,
    updated_at: Millis,
    delete_self_enabled: bool,
    create_organization_enabled: bool,
    create_organizations_limit: u32,
    last_active_at: Option<Millis>,
    mfa_enabled_at: Null,
    mfa_disabled_at: Null,
    legal_accepted_at: Null,
    /// Backend API only.
    #[serde(skip_serializing_if = "Option::is_none")]
    private_metadata: Option<&'a Metadata>,
    /// Backend API only.
    #[serde(skip_serializing_if = "Option::is_none")]
    bypass_client_trust: Option<bool>,
}

pub fn user(u: &User, audience: Audience) -> UserJson<'_> {
    let (created_at, updated_at) = (u.created_at, u.updated_at);
    let image_url = u.image_url.as_deref().unwrap_or_default();
    let backend = audience == Audience::Backend;
    UserJson {
        id: &u.id,
        object: "user",
        username: u.username.as_deref(),
        first_name: u.first_name.as_deref(),
        last_name: u.last_name.as_deref(),
        image_url,
        profile_image_url: image_url,
        has_image: u.image_url.is_some(),
        primary_email_address_id: u.primary_email_address_id.as_deref(),
        primary_phone_number_id: u.primary_phone_number_id.as_deref(),
        primary_web3_wallet_id: NULL,
        password_enabled: u.password.is_some(),
        two_factor_enabled: false,
        totp_enabled: false,
        backup_code_enabled: false,
        email_addresses: Emails(u),
        phone_numbers: Phones(u),
        web3_wallets: EMPTY,
        passkeys: EMPTY,
        organization_memberships: EMPTY,
        external_accounts: EMPTY,
        saml_accounts: EMPTY,
        enterprise_accounts: EMPTY,
        password_last_updated_at: u.password_last_updated_at,
        public_metadata: &u.public_metadata,
        unsafe_metadata: &u.unsafe_metadata,
        external_id: u.external_id.as_deref(),
        last_sign_in_at: u.last_sign_in_at,
        banned: u.banned,
        locked: false,
        deprovisioned: false,
        lockout_expires_in_seconds: None,
        verification_attempts_remaining: NULL,
        created_at,
        updated_at,
        delete_self_enabled: false,
        create_organization_enabled: false,
        create_organizations_limit: 0,
        last_active_at: u.last_sign_in_at,
        mfa_enabled_at: NULL,
        mfa_disabled_at: NULL,
        legal_accepted_at: NULL,
        private_metadata: backend.then_some(&u.private_metadata),
        bypass_client_trust: backend.then_some(false),
    }
}

/// The user as the Backend API shows it at `now`: with its lockout (`locked` and
/// `lockout_expires_in_seconds` change with the clock, so this rendering is never cached).
pub fn backend_user(u: &User, now: Millis) -> UserJson<'_> {
    let mut json = user(u, Audience::Backend);
    json.lockout_expires_in_seconds = u.lockout.expires_in_seconds(now);
    json.locked = json.lockout_expires_in_seconds.is_some();
    json
}

#[derive(Serialize)]
pub(crate) struct PublicUserData<'a> {
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    image_url: Option<&'a str>,
    profile_image_url: Option<&'a str>,
    has_image: bool,
    identifier: String,
    user_id: &'a str,
    username: Option<&'a str>,
    banned: bool,
    deprovisioned: bool,
}

pub(crate) fn public_user_data(u: &User) -> PublicUserData<'_> {
    PublicUserData {
        first_name: u.first_name.as_deref(),
        last_name: u.last_name.as_deref(),
        image_url: u.image_url.as_deref(),
        profile_image_url: u.image_url.as_deref(),
        has_image: u.image_url.is_some(),
        identifier: u.identifier(),
        user_id: &u.id,
        username: u.username.as_deref(),
        banned: u.banned,
        deprovisioned: false,
    }
}

/// Session tokens by session id, for `last_active_token` (see
/// `app::minting::last_active_tokens`), each already rendered.
pub type LastActiveTokens = HashMap<String, Arc<RawValue>>;

/// `{"object": "token", "jwt": …}`: a minted token, and a session's `last_active_token`.
#[derive(Serialize)]
pub struct TokenJson<'a> {
    object: &'static str,
    jwt: &'a str,
}

/// A `last_active_token` as JSON text, rendered once when signed: a token is reused for
/// many answers (`tokens::recent::RecentTokens`), and its ~1 KB need not be escaped again.
pub fn rendered_token(jwt: &str) -> Arc<RawValue> {
    Arc::from(rendered(&token_response(jwt)))
}

pub fn token_response(jwt: &str) -> TokenJson<'_> {
    TokenJson {
        object: "token",
        jwt,
    }
}

/// The Frontend API session (`Client.Session-2`), with its status as of `now`.
#[derive(Serialize)]
pub struct SessionJson<'a> {
    id: &'a str,
    object: &'static str,
    status: &'static str,
    expire_at: Millis,
    abandon_at: Millis,
    last_active_at: Millis,
    last_active_token: Option<&'a RawValue>,
    last_active_organization_id: Option<&'a str>,
    actor: Option<&'a Value>,
    tasks: Null,
    user: Option<&'a RawValue>,
    public_user_data: Option<&'a RawValue>,
    factor_verification_age: [i64; 2],
    created_at: Millis,
    updated_at: Millis,
}

pub fn session<'a>(
    s: &'a Session,
    user: Option<&'a ShownUser>,
    now: Millis,
    last_active_token: Option<&'a RawValue>,
) -> SessionJson<'a> {
    SessionJson {
        id: &s.id,
        object: "session",
        status: s.status_at(now).as_str(),
        expire_at: s.expire_at,
        abandon_at: s.abandon_at,
        last_active_at: s.last_active_at,
        last_active_token,
        last_active_organization_id: s.last_active_organization_id.as_deref(),
        actor: s.actor.as_ref(),
        tasks: NULL,
        user: user.map(ShownUser::user),
        public_user_data: user.map(ShownUser::public_user_data),
        factor_verification_age: [rendered::factor_age(s, now), -1],
        created_at: s.created_at,
        updated_at: s.updated_at,
    }
}

/// JSON text, for an object that one answer shows twice. Our shapes always serialize
/// (string keys, finite numbers); should one ever fail, it is `null` rather than a panic.
pub fn rendered(value: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "an answer's object did not serialize");
        RawValue::NULL.to_owned()
    })
}

/// A client's sessions as the Frontend API shows them (removed ones left out), each
/// rendered once (or taken from the [`RenderCache`]), in the client's order: the session
/// endpoints show one of them again as their `response`.
pub struct RenderedSessions(Vec<Arc<ShownSession>>);

impl RenderedSessions {
    pub fn of(
        state: &ClientState,
        users: &HashMap<String, Arc<User>>,
        cache: &RenderCache,
        now: Millis,
        tokens: &LastActiveTokens,
    ) -> Self {
        let shown = state
            .sessions
            .iter()
            .filter(|s| s.status != SessionStatus::Removed)
            .map(|s| cache.session_of(s, users, tokens.get(&s.id), now))
            .collect();
        Self(shown)
    }

    pub fn get(&self, id: &str) -> Option<&RawValue> {
        self.0.iter().find(|s| s.id() == id).map(|s| s.text())
    }
}

impl Serialize for RenderedSessions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|s| s.text()))
    }
}

/// The Frontend API client (`Client.Client-2`).
#[derive(Serialize)]
pub struct ClientJson<'a> {
    object: &'static str,
    id: &'a str,
    sessions: &'a RenderedSessions,
    sign_in: Option<&'a RawValue>,
    sign_up: Option<&'a RawValue>,
    last_active_session_id: Option<&'a str>,
    last_authentication_strategy: Null,
    cookie_expires_at: Millis,
    captcha_bypass: bool,
    created_at: Millis,
    updated_at: Millis,
}

/// The client, with its sessions rendered by [`RenderedSessions::of`].
pub fn client<'a>(
    state: &'a ClientState,
    sessions: &'a RenderedSessions,
    flows: &'a ClientFlows,
    now: Millis,
) -> ClientJson<'a> {
    let c: &Client = &state.client;
    ClientJson {
        object: "client",
        id: &c.id,
        sessions,
        sign_in: flows.sign_in.as_deref(),
        sign_up: flows.sign_up.as_deref(),
        last_active_session_id: state.last_active_session_id(now),
        last_authentication_strategy: NULL,
        cookie_expires_at: c.expires_at,
        captcha_bypass: false,
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

/// Clerk's Frontend API envelope: `{"response": …, "client": …}`.
#[derive(Serialize)]
pub struct Envelope<R, C> {
    pub response: R,
    pub client: C,
}

#[derive(Serialize)]
struct TicketVerification {
    object: &'static str,
    status: &'static str,
    strategy: &'static str,
    attempts: Null,
    expire_at: Null,
}

#[derive(Serialize)]
struct SignInUserData<'a> {
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    image_url: Option<&'a str>,
    has_image: bool,
}

/// A completed ticket sign-in (`Client.SignIn-2`).
#[derive(Serialize)]
pub struct SignInJson<'a> {
    object: &'static str,
    id: &'a str,
    status: &'static str,
    supported_identifiers: Empty,
    supported_first_factors: Empty,
    supported_second_factors: Null,
    first_factor_verification: TicketVerification,
    second_factor_verification: Null,
    identifier: String,
    user_data: SignInUserData<'a>,
    created_session_id: &'a str,
    abandon_at: Millis,
}

pub fn completed_sign_in<'a>(
    id: &'a str,
    session_id: &'a str,
    user: &'a User,
    abandon_at: Millis,
) -> SignInJson<'a> {
    SignInJson {
        object: "sign_in_attempt",
        id,
        status: "complete",
        supported_identifiers: EMPTY,
        supported_first_factors: EMPTY,
        supported_second_factors: NULL,
        first_factor_verification: TicketVerification {
            object: "verification_ticket",
            status: "verified",
            strategy: "ticket",
            attempts: NULL,
            expire_at: NULL,
        },
        second_factor_verification: NULL,
        identifier: user.identifier(),
        user_data: SignInUserData {
            first_name: user.first_name.as_deref(),
            last_name: user.last_name.as_deref(),
            image_url: user.image_url.as_deref(),
            has_image: user.image_url.is_some(),
        },
        created_session_id: session_id,
        abandon_at,
    }
}

/// Where and on what a session was last used (`SessionActivity`, both APIs).
#[derive(Serialize)]
pub struct SessionActivityJson<'a> {
    object: &'static str,
    id: &'a str,
    device_type: Option<&'a str>,
    is_mobile: bool,
    browser_name: Option<&'a str>,
    browser_version: Option<&'a str>,
    ip_address: Option<&'a str>,
    city: Option<&'a str>,
    country: Option<&'a str>,
}

pub fn session_activity(a: &SessionActivity) -> SessionActivityJson<'_> {
    SessionActivityJson {
        object: "session_activity",
        id: &a.id,
        device_type: a.device_type.as_deref(),
        is_mobile: a.is_mobile,
        browser_name: a.browser_name.as_deref(),
        browser_version: a.browser_version.as_deref(),
        ip_address: a.ip_address.as_deref(),
        city: a.city.as_deref(),
        country: a.country.as_deref(),
    }
}

/// A session of the user as `GET /v1/me/sessions/active` lists it (Clerk's
/// `ActiveSession`): the Frontend API session with its latest activity.
#[derive(Serialize)]
pub struct ActiveSessionJson<'a> {
    #[serde(flatten)]
    session: SessionJson<'a>,
    latest_activity: Option<SessionActivityJson<'a>>,
}

pub fn active_session<'a>(
    s: &'a Session,
    user: Option<&'a ShownUser>,
    now: Millis,
) -> ActiveSessionJson<'a> {
    ActiveSessionJson {
        session: session(s, user, now, None),
        latest_activity: s.latest_activity.as_ref().map(session_activity),
    }
}

/// The Backend API session (BAPI `Session`).
#[derive(Serialize)]
pub struct BackendSessionJson<'a> {
    object: &'static str,
    id: &'a str,
    user_id: &'a str,
    client_id: &'a str,
    actor: Option<&'a Value>,
    status: &'static str,
    last_active_organization_id: Option<&'a str>,
    last_active_at: Millis,
    latest_activity: Option<SessionActivityJson<'a>>,
    expire_at: Millis,
    abandon_at: Millis,
    updated_at: Millis,
    created_at: Millis,
    tasks: Null,
}

pub fn backend_session(s: &Session, now: Millis) -> BackendSessionJson<'_> {
    BackendSessionJson {
        object: "session",
        id: &s.id,
        user_id: &s.user_id,
        client_id: &s.client_id,
        actor: s.actor.as_ref(),
        status: s.status_at(now).as_str(),
        last_active_organization_id: s.last_active_organization_id.as_deref(),
        last_active_at: s.last_active_at,
        latest_activity: s.latest_activity.as_ref().map(session_activity),
        expire_at: s.expire_at,
        abandon_at: s.abandon_at,
        updated_at: s.updated_at,
        created_at: s.created_at,
        tasks: NULL,
    }
}

/// The Backend API sign-in token. `token` (the ticket) is shown only in the answer that
/// creates it.
#[derive(Serialize)]
pub struct SignInTokenJson<'a> {
    object: &'static str,
    id: &'a str,
    status: &'static str,
    user_id: &'a str,
    url: Option<String>,
    created_at: Millis,
    updated_at: Millis,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
}

pub fn sign_in_token<'a>(
    t: &'a SignInToken,
    ticket: Option<&'a str>,
    url: Option<String>,
    now: Millis,
) -> SignInTokenJson<'a> {
    SignInTokenJson {
        object: "sign_in_token",
        id: &t.id,
        status: t.wire_status(now),
        user_id: &t.user_id,
        url,
        created_at: t.created_at,
        updated_at: t.updated_at,
        token: ticket,
    }
}

/// The Backend API JWT template. The signing key is write-only: never here.
#[derive(Serialize)]
pub struct JwtTemplateJson<'a> {
    object: &'static str,
    id: &'a str,
    name: &'a str,
    claims: &'a Metadata,
    lifetime: u64,
    allowed_clock_skew: u64,
    custom_signing_key: bool,
    signing_algorithm: &'static str,
    created_at: Millis,
    updated_at: Millis,
}

pub fn jwt_template(t: &JwtTemplate) -> JwtTemplateJson<'_> {
    JwtTemplateJson {
        object: "jwt_template",
        id: &t.id,
        name: &t.name,
        claims: &t.claims,
        lifetime: t.lifetime,
        allowed_clock_skew: t.allowed_clock_skew,
        custom_signing_key: t.custom_signing_key,
        signing_algorithm: t.signing_algorithm.as_str(),
        created_at: t.created_at,
        updated_at: t.updated_at,
    }
}
