//! The service in process: the real state and route table on the embedded store, called
//! through `routes::dispatch` as the Lambda functions and the local server call it. The
//! sign-in follows `testkit::app`: a Backend API sign-in token, then a Frontend API
//! ticket sign-in on a native client.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};
use shared::clock::SystemClock;
use shared::config::Config;
use shared::http::RequestId;
use shared::routes;
use shared::state::AppState;
use shared::store::{EmbeddedStore, Store};

pub const SECRET_KEY: &str = "sk_bench_secret_key_0123456789abcdefgh";
pub const FAPI_URL: &str = "https://clerk.example.com";

/// The configuration every benchmark runs with (the store backend aside).
pub fn config() -> Config {
    Config::from_lookup(|name| match name {
        "FRONTEND_API_URL" => Some(FAPI_URL.into()),
        "BACKEND_API_SECRET_KEY" => Some(SECRET_KEY.into()),
        // Every route is measured, the dev browser's included.
        "INSTANCE_TYPE" => Some("development".into()),
        _ => None,
    })
    .expect("benchmark configuration")
}

pub struct App {
    pub state: Arc<AppState>,
}

/// A signed-in native client: its token and session, and the user.
pub struct SignedIn {
    pub client_token: String,
    pub session_id: String,
    pub user_id: String,
}

/// Builds a request as the transports do (the request id in its extensions).
pub fn request(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Body,
) -> http::Request<Bytes> {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Form(form) => {
            b = b.header("content-type", "application/x-www-form-urlencoded");
            Bytes::from(form)
        }
        Body::Json(value) => {
            b = b.header("content-type", "application/json");
            Bytes::from(value.to_string())
        }
    };
    let mut req = b.body(bytes).expect("a well-formed request");
    req.extensions_mut().insert(RequestId("req_bench".into()));
    req
}

pub enum Body {
    Empty,
    Form(String),
    Json(Value),
}

impl App {
    /// The app on the in-memory embedded store.
    pub async fn in_memory() -> Self {
        Self::on(Arc::new(EmbeddedStore::in_memory())).await
    }

    /// The app on an embedded store persisted to `data_file`.
    pub async fn on_file(data_file: &Path) -> Self {
        Self::on(Arc::new(
            EmbeddedStore::open(data_file).expect("open the data file"),
        ))
        .await
    }

    async fn on(store: Arc<dyn Store>) -> Self {
        let state = AppState::new(config(), store, Arc::new(SystemClock))
            .await
            .expect("state");
        Self {
            state: Arc::new(state),
        }
    }

    pub async fn dispatch(&self, req: http::Request<Bytes>) -> http::Response<String> {
        routes::dispatch(&self.state, req, None).await
    }

    /// Calls a route that must succeed; answers its headers and JSON body.
    pub async fn call_ok(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> (http::HeaderMap, Value) {
        let resp = self.dispatch(request(method, uri, headers, body)).await;
        assert!(
            resp.status().is_success(),
            "{method} {uri}: {} {}",
            resp.status(),
            resp.body()
        );
        let headers = resp.headers().clone();
        let body = serde_json::from_str(resp.body()).expect("a JSON body");
        (headers, body)
    }

    pub async fn create_user(&self) -> String {
        let auth = format!("Bearer {SECRET_KEY}");
        let (_, user) = self
            .call_ok(
                "POST",
                "/v1/users",
                &[("authorization", &auth)],
                Body::Json(json!({"first_name": "Ada", "email_address": ["ada@example.com"]})),
            )
            .await;
        user["id"].as_str().expect("user id").to_string()
    }

    pub async fn ticket(&self, user_id: &str) -> String {
        let auth = format!("Bearer {SECRET_KEY}");
        let (_, t) = self
            .call_ok(
                "POST",
                "/v1/sign_in_tokens",
                &[("authorization", &auth)],
                Body::Json(json!({"user_id": user_id})),
            )
            .await;
        t["token"].as_str().expect("ticket").to_string()
    }

    /// Signs `user_id` in on a native client (`client_token`, or a new one).
    pub async fn sign_in(&self, user_id: &str, client_token: Option<&str>) -> SignedIn {
        let ticket = self.ticket(user_id).await;
        let headers: Vec<(&str, &str)> = client_token
            .map(|t| vec![("authorization", t)])
            .unwrap_or_default();
        let (h, signed) = self
            .call_ok(
                "POST",
                "/v1/client/sign_ins?_is_native=1",
                &headers,
                Body::Form(format!("strategy=ticket&ticket={ticket}")),
            )
            .await;
        SignedIn {
            client_token: h["authorization"]
                .to_str()
                .expect("client token")
                .to_string(),
            session_id: signed["response"]["created_session_id"]
                .as_str()
                .expect("session id")
                .to_string(),
            user_id: user_id.to_string(),
        }
    }

    /// A new user signed in on a new native client.
    pub async fn native_session(&self) -> SignedIn {
        let user = self.create_user().await;
        self.sign_in(&user, None).await
    }

    /// `POST /v1/client/sessions/{id}/tokens`, as clerk-js calls it every ~50 s.
    pub fn tokens_request(s: &SignedIn) -> http::Request<Bytes> {
        request(
            "POST",
            &format!("/v1/client/sessions/{}/tokens?_is_native=1", s.session_id),
            &[("authorization", &s.client_token)],
            Body::Empty,
        )
    }

    /// `GET /v1/client/sessions/{id}`.
    pub fn session_request(s: &SignedIn) -> http::Request<Bytes> {
        request(
            "GET",
            &format!("/v1/client/sessions/{}?_is_native=1", s.session_id),
            &[("authorization", &s.client_token)],
            Body::Empty,
        )
    }

    /// `GET /v1/environment`: the trivial route (a string built at start-up).
    pub fn environment_request() -> http::Request<Bytes> {
        request("GET", "/v1/environment", &[], Body::Empty)
    }
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
