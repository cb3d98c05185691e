//! The service in process: the real state and route table on a store of the caller's
//! choice (the embedded store in memory unless told otherwise), and a clock that stands
//! still until a test moves it. Requests go through `routes::dispatch`, as on Lambda and
//! in the local server.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};
use shared::clock::{Clock, ManualClock, Millis, SystemClock};
use shared::config::Config;
use shared::email::{Captured, Mailer};
use shared::http::RequestId;
use shared::routes;
use shared::state::AppState;
use shared::store::{MemoryStore, Store};

/// The Backend API secret key of every harness, fixture and benchmark: the fixtures' own
/// (public) one, which their events send.
pub const SECRET: &str = shared::fixtures::SECRET_KEY;
pub const FAPI_URL: &str = "https://clerk.example.com";
pub const APP_ORIGIN: &str = "https://app.example.com";
/// 2026-01-01T00:00:00Z
pub const START_MS: i64 = 1_767_225_600_000;

/// The harness's clock: at [`START_MS`] until a test moves it, or the system's (for data
/// that processes read afterwards, and for the benchmarks).
pub enum TestClock {
    Manual(ManualClock),
    System,
}

impl TestClock {
    /// Moves the manual clock on. The system clock is not moved on request.
    #[track_caller]
    pub fn advance_secs(&self, secs: i64) {
        match self {
            Self::Manual(clock) => clock.advance_secs(secs),
            Self::System => panic!("the harness runs on the system clock, which does not move"),
        }
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> Millis {
        match self {
            Self::Manual(clock) => clock.now_ms(),
            Self::System => SystemClock.now_ms(),
        }
    }
}

pub struct TestApp {
    pub state: Arc<AppState>,
    pub clock: Arc<TestClock>,
    pub store: Arc<dyn Store>,
    /// Every email the service sent (the state's mailer captures them): `mail.code(to)`
    /// is the code last sent to an address.
    pub mail: Captured,
    /// How many users [`TestApp::create_user`] made.
    users_made: std::sync::atomic::AtomicUsize,
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    }
    /// The value of a cookie this response sets.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies().iter().find_map(|c| {
            c.split(';')
                .next()?
                .split_once('=')
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }
    /// A completed sign-in's client token (`Authorization`) and new session id.
    #[track_caller]
    pub fn signed_in(&self) -> (String, String) {
        let sid = self.ok()["response"]["created_session_id"]
            .as_str()
            .expect("created_session_id")
            .to_string();
        let token = self
            .header("authorization")
            .expect("client token")
            .to_string();
        (token, sid)
    }

    /// Asserts a 200 and answers the body.
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, 200, "body: {}", self.body);
        &self.body
    }
    /// The whole `Set-Cookie` line for a cookie this response sets.
    pub fn cookie_line(&self, name: &str) -> Option<String> {
        self.cookies().into_iter().find(|c| {
            c.split(';')
                .next()
                .and_then(|kv| kv.split_once('='))
                .is_some_and(|(k, _)| k == name)
        })
    }
    /// Asserts the status is not a server error (no input may cause a 500) and that any
    /// error answer is a well-formed ClerkErrors body.
    #[track_caller]
    pub fn assert_no_server_error(&self) {
        assert!(
            self.status < 500,
            "server error: {} {}",
            self.status,
            self.body
        );
        if self.status >= 400 {
            self.assert_error(self.status, self.error_code());
        }
    }
    pub fn error_code(&self) -> &str {
        self.body["errors"][0]["code"].as_str().unwrap_or("")
    }
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.error_code()),
            (status, code),
            "body: {}",
            self.body
        );
        assert!(self.body["errors"][0]["message"].is_string());
        assert!(self.body["errors"][0]["long_message"].is_string());
        assert!(self.body["clerk_trace_id"].is_string());
        assert!(!self.body["errors"][0]["code"]
            .as_str()
            .unwrap_or("")
            .is_empty());
    }
    /// Asserts the error names the offending parameter in `meta.param_name`.
    #[track_caller]
    pub fn assert_param_error(&self, status: u16, code: &str, param: &str) {
        self.assert_error(status, code);
        assert_eq!(
            self.body["errors"][0]["meta"]["param_name"], param,
            "body: {}",
            self.body
        );
    }
}

/// A request to build: method, path with query, headers, body.
pub struct Req {
    method: &'static str,
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    client_addr: Option<std::net::IpAddr>,
}

/// The Rust that builds a request for `method` and `path`, for a test's failure message to
/// offer: each `{param}` becomes a real id through `format!`.
pub fn req_snippet(method: &str, path: &str) -> String {
    let path = if path.contains('{') {
        format!("format!(\"{path}\")")
    } else {
        format!("\"{path}\"")
    };
    match method {
        "GET" => format!("Req::get({path})"),
        "POST" => format!("Req::post({path})"),
        "DELETE" => format!("Req::delete({path})"),
        other => format!("Req::new(\"{other}\", {path})"),
    }
}

impl Req {
    /// The method sent (a tunnelled `_method` is in the query).
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// The request's path and query.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    pub fn new(method: &'static str, uri: impl Into<String>) -> Self {
        Self {
            method,
            uri: uri.into(),
            headers: Vec::new(),
            body: Vec::new(),
            client_addr: None,
        }
    }
    /// The address the transport saw the request come from (API Gateway's `sourceIp`).
    pub fn from_ip(mut self, ip: &str) -> Self {
        self.client_addr = Some(ip.parse().expect("an IP address"));
        self
    }
    pub fn get(uri: impl Into<String>) -> Self {
        Self::new("GET", uri)
    }
    pub fn post(uri: impl Into<String>) -> Self {
        Self::new("POST", uri)
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    pub fn form(mut self, body: &str) -> Self {
        self.headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        self.body = body.as_bytes().to_vec();
        self
    }
    pub fn json(mut self, body: &Value) -> Self {
        self.headers
            .push(("content-type".into(), "application/json".into()));
        self.body = body.to_string().into_bytes();
        self
    }
    pub fn raw_body(mut self, content_type: &str, body: &[u8]) -> Self {
        self.headers
            .push(("content-type".into(), content_type.into()));
        self.body = body.to_vec();
        self
    }
    /// Native client auth: `_is_native=1` and the token in `Authorization`.
    pub fn native(self, client_token: &str) -> Self {
        let sep = if self.uri.contains('?') { '&' } else { '?' };
        let uri = format!("{}{sep}_is_native=1", self.uri);
        Self { uri, ..self }.header("authorization", client_token)
    }
    pub fn cookie(self, client_token: &str) -> Self {
        self.header("cookie", &format!("__client={client_token}"))
    }
    pub fn secret(self) -> Self {
        self.header("authorization", &format!("Bearer {SECRET}"))
    }
    pub fn delete(uri: impl Into<String>) -> Self {
        Self::new("DELETE", uri)
    }
    pub fn options(uri: impl Into<String>) -> Self {
        Self::new("OPTIONS", uri)
    }
    /// Appends `name=value` to the query string.
    pub fn query(self, name: &str, value: &str) -> Self {
        let sep = if self.uri.contains('?') { '&' } else { '?' };
        let uri = format!("{}{sep}{name}={value}", self.uri);
        Self { uri, ..self }
    }
    /// Dev-browser client auth: the token in the `__clerk_db_jwt` query parameter.
    pub fn dev(self, client_token: &str) -> Self {
        self.query("__clerk_db_jwt", client_token)
    }
    pub fn origin(self, origin: &str) -> Self {
        self.header("origin", origin)
    }

    /// The request as the transports hand it to `routes::dispatch`, its request id in its
    /// extensions.
    pub fn into_request(self) -> http::Request<Bytes> {
        let mut builder = http::Request::builder().method(self.method).uri(self.uri);
        for (k, v) in &self.headers {
            builder = builder.header(k, v);
        }
        let mut request = builder.body(Bytes::from(self.body)).expect("request");
        request
            .extensions_mut()
            .insert(RequestId("req_test".into()));
        if let Some(ip) = self.client_addr {
            request
                .extensions_mut()
                .insert(shared::http::ClientAddr(ip));
        }
        request
    }
}

/// A session endpoint, as the six FAPI session routes name it.
pub fn session_path(sid: &str, suffix: &str) -> String {
    if suffix.is_empty() {
        format!("/v1/client/sessions/{sid}")
    } else {
        format!("/v1/client/sessions/{sid}/{suffix}")
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_env(&[]).await
    }

    /// A development instance: dev-browser tokens are served.
    pub async fn development() -> Self {
        Self::with_env(&[("INSTANCE_TYPE", "development")]).await
    }

    pub async fn with_env(extra: &[(&str, &str)]) -> Self {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        Self::with_store(test_config(extra), store).await
    }

    /// The harness on `store`, with the default test configuration.
    pub async fn on(store: Arc<dyn Store>) -> Self {
        Self::with_store(test_config(&[]), store).await
    }

    pub async fn with_store(config: Config, store: Arc<dyn Store>) -> Self {
        let clock = TestClock::Manual(ManualClock::new(START_MS));
        Self::build(config, store, clock).await
    }

    /// The harness on the system clock: for data that function processes or a server
    /// read afterwards (they run on the system clock), and for timing the handlers.
    pub async fn with_system_clock(config: Config, store: Arc<dyn Store>) -> Self {
        Self::build(config, store, TestClock::System).await
    }

    /// The harness with the email delivery `config` names (SMTP, SES), as a deployment
    /// sends: `mail` captures nothing.
    pub async fn delivering_email(config: Config, store: Arc<dyn Store>) -> Self {
        let clock = TestClock::Manual(ManualClock::new(START_MS));
        Self::build_with(config, store, clock, false).await
    }

    async fn build(config: Config, store: Arc<dyn Store>, clock: TestClock) -> Self {
        Self::build_with(config, store, clock, true).await
    }

    async fn build_with(
        config: Config,
        store: Arc<dyn Store>,
        clock: TestClock,
        capture: bool,
    ) -> Self {
        let clock = Arc::new(clock);
        let (mailer, mail) = Mailer::capture();
        let state = AppState::new(config, Arc::clone(&store), clock.clone())
            .await
            .expect("state");
        let state = if capture {
            state.with_mailer(mailer)
        } else {
            state
        };
        Self {
            state: Arc::new(state),
            clock,
            store,
            mail,
            users_made: Default::default(),
        }
    }

    /// `routes::dispatch` itself: the answer as the transports get it.
    pub async fn dispatch(&self, request: http::Request<Bytes>) -> http::Response<String> {
        routes::dispatch(&self.state, request, routes::every_route()).await
    }

    pub async fn send(&self, req: Req) -> TestResponse {
        let resp = self.dispatch(req.into_request()).await;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.into_body();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("JSON body")
        };
        TestResponse {
            status,
            headers,
            body,
        }
    }

    /// A user like Ada Lovelace: the first one made on this app is `ada@example.com`
    /// (username `ada_l`), the nth after it `ada{n}@example.com` (`ada_l{n}`), since an
    /// email address and a username each belong to one user.
    pub async fn create_user(&self) -> String {
        let n = self
            .users_made
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let suffix = if n == 0 { String::new() } else { n.to_string() };
        self.create_user_from(&json!({
            "first_name": "Ada", "last_name": "Lovelace", "username": format!("ada_l{suffix}"),
            "email_address": [format!("ada{suffix}@example.com")], "phone_number": ["+15555550100"],
            "public_metadata": {"plan": "pro"}, "private_metadata": {"secret": 1},
        }))
        .await
    }

    /// Creates a user from a Backend API `POST /v1/users` body; answers its id.
    pub async fn create_user_from(&self, body: &Value) -> String {
        let resp = self.send(Req::post("/v1/users").secret().json(body)).await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        resp.body["id"].as_str().expect("user id").to_string()
    }

    pub async fn ticket(&self, user_id: &str) -> String {
        let resp = self
            .send(
                Req::post("/v1/sign_in_tokens")
                    .secret()
                    .json(&json!({"user_id": user_id})),
            )
            .await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        resp.body["token"].as_str().expect("ticket").to_string()
    }

    /// Signs a new user in on a new native client: (client token, session id, user id).
    pub async fn native_session(&self) -> (String, String, String) {
        let user = self.create_user().await;
        // An empty native Authorization means "no client yet": the sign-in makes one.
        let (token, sid) = self.native_sign_in("", &user).await;
        (token, sid, user)
    }

    /// A ticket for `user` that expires after `secs` seconds.
    pub async fn ticket_expiring(&self, user_id: &str, secs: u64) -> String {
        let resp = self
            .send(
                Req::post("/v1/sign_in_tokens")
                    .secret()
                    .json(&json!({"user_id": user_id, "expires_in_seconds": secs})),
            )
            .await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        resp.body["token"].as_str().expect("ticket").to_string()
    }

    /// A new browser client: its `__client` cookie value.
    pub async fn browser_client(&self) -> String {
        let resp = self.send(Req::post("/v1/client")).await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        resp.cookie("__client").expect("__client cookie")
    }

    /// Signs a new user in on a new browser client: (cookie value, session id, user id).
    pub async fn browser_session(&self) -> (String, String, String) {
        let user = self.create_user().await;
        let ticket = self.ticket(&user).await;
        let resp = self
            .send(
                Req::post("/v1/client/sign_ins").form(&format!("strategy=ticket&ticket={ticket}")),
            )
            .await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        let cookie = resp.cookie("__client").expect("__client cookie");
        let sid = resp.body["response"]["created_session_id"]
            .as_str()
            .expect("sid")
            .to_string();
        (cookie, sid, user)
    }

    /// The session as the Backend API shows it.
    pub async fn bapi_session(&self, sid: &str) -> Value {
        let resp = self
            .send(Req::get(format!("/v1/sessions/{sid}")).secret())
            .await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        resp.body
    }

    /// Revokes a session through the Backend API.
    pub async fn revoke(&self, sid: &str) -> TestResponse {
        self.send(Req::post(format!("/v1/sessions/{sid}/revoke")).secret())
            .await
    }

    /// The sessions of `user`, every status, as the Backend API lists them.
    pub async fn user_sessions(&self, user_id: &str) -> Vec<Value> {
        let resp = self
            .send(Req::get(format!("/v1/sessions?user_id={user_id}&limit=500")).secret())
            .await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        resp.body.as_array().expect("array").clone()
    }

    /// The stored session record, straight from the store (no status derivation).
    pub async fn stored_session(&self, sid: &str) -> shared::domain::Session {
        self.store
            .get_session(sid)
            .await
            .expect("store")
            .expect("session stored")
    }

    /// The stored client record with its sessions.
    pub async fn stored_client(&self, client_id: &str) -> shared::domain::ClientState {
        self.store
            .get_client(client_id)
            .await
            .expect("store")
            .expect("client stored")
    }

    /// The current time of the harness clock, in milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Signs `user` in on the native client named by `token` (`""`: a new client), with a
    /// fresh ticket: (client token, session id).
    pub async fn native_sign_in(&self, token: &str, user: &str) -> (String, String) {
        let ticket = self.ticket(user).await;
        let resp = self
            .send(
                Req::post("/v1/client/sign_ins")
                    .native(token)
                    .form(&format!("strategy=ticket&ticket={ticket}")),
            )
            .await;
        resp.signed_in()
    }
}

/// The test configuration, with `extra` settings on top.
pub fn test_config(extra: &[(&str, &str)]) -> Config {
    let mut env: HashMap<String, String> = [
        ("FRONTEND_API_URL", FAPI_URL),
        ("BACKEND_API_SECRET_KEY", SECRET),
        ("ALLOWED_ORIGINS", APP_ORIGIN),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    Config::from_lookup(|k| env.get(k).cloned()).expect("test config")
}

/// The claims of a JWT, unverified (tests check signatures where that is the point).
pub fn jwt_claims(jwt: &str) -> Value {
    jwt_part(jwt, 1)
}

/// The header of a JWT, unverified.
pub fn jwt_header(jwt: &str) -> Value {
    jwt_part(jwt, 0)
}

fn jwt_part(jwt: &str, index: usize) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(index).expect("a JWT part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}
