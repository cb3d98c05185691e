//! The service in process, for the figures that time handlers: testkit's harness on the
//! in-memory embedded store and the system clock, a development instance (every route is
//! served, as in the function processes the other figures run). The requests are built
//! before the clock starts, so a sample is `routes::dispatch` alone. Also the floor of token
//! minting: one RSA signature.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;
use shared::store::MemoryStore;
use testkit::app::{test_config, Req, TestApp};

/// The service on the in-memory embedded store.
pub async fn app() -> TestApp {
    TestApp::with_system_clock(
        test_config(&[("INSTANCE_TYPE", "development")]),
        Arc::new(MemoryStore::new()),
    )
    .await
}

/// A signed-in native client: its token and session, and the user.
pub struct SignedIn {
    pub client_token: String,
    pub session_id: String,
    pub user_id: String,
}

/// The user every figure signs in: a name and an email address (its own: an address
/// belongs to one user).
pub async fn create_user(app: &TestApp) -> String {
    let email = format!("{}@example.com", shared::ids::new_id("ada"));
    app.create_user_from(&json!({"first_name": "Ada", "email_address": [email]}))
        .await
}

/// `user_id` signed in on a new native client.
pub async fn sign_in(app: &TestApp, user_id: &str) -> SignedIn {
    let (client_token, session_id) = app.native_sign_in("", user_id).await;
    SignedIn {
        client_token,
        session_id,
        user_id: user_id.to_string(),
    }
}

/// A new user signed in on a new native client.
pub async fn native_session(app: &TestApp) -> SignedIn {
    let user = create_user(app).await;
    sign_in(app, &user).await
}

/// `POST /v1/client/sessions/{id}/tokens`, as clerk-js calls it every ~50 s.
pub fn tokens(s: &SignedIn) -> http::Request<Bytes> {
    session_call(s, "POST", "/tokens").into_request()
}

/// `GET /v1/client/sessions/{id}`.
pub fn session(s: &SignedIn) -> http::Request<Bytes> {
    session_call(s, "GET", "").into_request()
}

/// `POST /v1/client/sessions/{id}/touch` with `intent=focus`, as clerk-js touches the
/// session when a tab regains focus.
pub fn touch(s: &SignedIn) -> http::Request<Bytes> {
    session_call(s, "POST", "/touch")
        .form(TOUCH_FORM)
        .into_request()
}

/// `POST /v1/client/sessions/{id}/end`.
pub fn end(s: &SignedIn) -> http::Request<Bytes> {
    session_call(s, "POST", "/end").into_request()
}

/// `POST /v1/client/sign_ins` with a ticket, on a new native client (no `Authorization`).
pub fn ticket_sign_in(ticket: &str) -> http::Request<Bytes> {
    Req::post(SIGN_IN_PATH)
        .form(&sign_in_form(ticket))
        .into_request()
}

/// `GET /v1/environment`: the trivial route (a string built at start-up).
pub fn environment() -> http::Request<Bytes> {
    Req::get("/v1/environment").into_request()
}

/// The body of the touch the figures time.
pub const TOUCH_FORM: &str = "intent=focus";
/// The ticket sign-in of a native client without one yet.
pub const SIGN_IN_PATH: &str = "/v1/client/sign_ins?_is_native=1";

pub fn sign_in_form(ticket: &str) -> String {
    format!("strategy=ticket&ticket={ticket}")
}

fn session_call(s: &SignedIn, method: &'static str, suffix: &str) -> Req {
    Req::new(
        method,
        format!("/v1/client/sessions/{}{suffix}", s.session_id),
    )
    .native(&s.client_token)
}

/// The floor of token minting: one RSA-2048 PKCS#1 v1.5 SHA-256 signature with a key pair
/// parsed once (aws-lc-rs), over a message as long as a session token's signing input.
pub struct SignFloor {
    pair: aws_lc_rs::signature::RsaKeyPair,
    rng: aws_lc_rs::rand::SystemRandom,
    message: Vec<u8>,
    signature: Vec<u8>,
}

impl SignFloor {
    /// `jwt` is a token the service minted: its `header.payload` is the message.
    pub fn new(jwt: &str) -> Self {
        let pair = aws_lc_rs::signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .expect("an RSA-2048 key pair");
        let message = jwt
            .rsplit_once('.')
            .map(|(input, _)| input.as_bytes().to_vec())
            .expect("a JWT");
        let signature = vec![0u8; pair.public_modulus_len()];
        Self {
            pair,
            rng: aws_lc_rs::rand::SystemRandom::new(),
            message,
            signature,
        }
    }

    pub fn sign(&mut self) -> &[u8] {
        self.pair
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &self.rng,
                &self.message,
                &mut self.signature,
            )
            .expect("sign");
        &self.signature
    }
}
