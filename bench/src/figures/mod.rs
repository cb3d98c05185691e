//! The figures, one module each; each measures, then writes its rows of the table. How
//! each is taken, and why, is in docs/benchmarks.md (the numbers there are the figures').

pub mod calls;
pub mod cold_start;
pub mod embedded_store;
pub mod functions;
pub mod many_sessions;
pub mod metrics_cost;
pub mod minting;
pub mod session_read;
pub mod sign_in;
pub mod soak;
pub mod steady_state;
pub mod worst_case;
pub mod writes;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bench::load::{self, Target};
use serde_json::{json, Value};
use testkit::app::{FAPI_URL, SECRET};
use testkit::local_api::LocalApi;

/// How much of everything a run does.
pub struct Plan {
    pub inprocess_tokens: usize,
    pub inprocess_reads: usize,
    /// Samples of each write in process (figure 8), each beside a session read.
    pub inprocess_writes: usize,
    pub http_rounds: usize,
    pub http_phase: Duration,
    pub connections: usize,
    /// At most this many distinct requests are prepared for one phase of a write over HTTP
    /// (a fresh session per end, a fresh ticket per sign-in); a phase that uses them all
    /// ends early.
    pub http_queue_max: usize,
    pub cold_starts: usize,
    pub invocations: usize,
    pub worst_case_invocations: usize,
    /// Figure 9: the sessions of the small and the large database.
    pub store_small: usize,
    pub store_large: usize,
}

impl Plan {
    pub fn new(quick: bool) -> Self {
        if quick {
            Self {
                inprocess_tokens: 50,
                inprocess_reads: 500,
                inprocess_writes: 30,
                http_rounds: 1,
                http_phase: Duration::from_millis(300),
                connections: 16,
                http_queue_max: 2_000,
                cold_starts: 2,
                invocations: 100,
                worst_case_invocations: 3,
                store_small: 1_000,
                store_large: 4_000,
            }
        } else {
            Self {
                inprocess_tokens: 3_000,
                inprocess_reads: 20_000,
                inprocess_writes: 3_000,
                http_rounds: 3,
                http_phase: Duration::from_secs(4),
                connections: 16,
                http_queue_max: 25_000,
                cold_starts: 15,
                invocations: 10_000,
                worst_case_invocations: 200,
                store_small: 1_000,
                store_large: 1_000_000,
            }
        }
    }
}

pub fn progress(what: &str) {
    eprintln!("bench: {what}");
}

/// Where the functions' data files go: tmpfs when there is one, so that the embedded
/// store's fsync (a stand-in for DynamoDB, which Lambda uses) does not dominate.
pub fn data_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    base.join(format!("bench-{}", std::process::id()))
}

/// `local-api --in-memory` from `bin_dir`, request logs off (`RUST_LOG=warn`): the figures
/// are the handlers' cost, not a terminal's.
pub fn local_api(bin_dir: &Path) -> Result<LocalApi, String> {
    LocalApi::start(
        &bin_dir.join("local-api"),
        &["--in-memory"],
        &[
            ("BACKEND_API_SECRET_KEY", SECRET),
            ("FRONTEND_API_URL", FAPI_URL),
        ],
    )
}

/// A JSON answer of a set-up request, which must be a 200.
pub fn json_ok(what: &str, answer: &load::Answer) -> Result<Value, String> {
    if answer.status != 200 {
        return Err(format!("{what}: {} {}", answer.status, answer.body));
    }
    serde_json::from_str(&answer.body).map_err(|e| format!("{what}: {e}: {}", answer.body))
}

/// `Authorization: Bearer <secret key>`, for the Backend API.
pub fn secret_auth() -> String {
    format!("Bearer {SECRET}")
}

/// A new user on the running server, over HTTP (as every figure signs in: a name and an
/// email address of its own, since an address belongs to one user).
pub async fn http_user(addr: SocketAddr) -> Result<String, String> {
    let email = format!("{}@example.com", shared::ids::new_id("ada"));
    let user = load::call(
        addr,
        &Target::post("/v1/users")
            .header("authorization", &secret_auth())
            .json(&json!({"first_name": "Ada", "email_address": [email]})),
    )
    .await?;
    let user = json_ok("create user", &user)?;
    user["id"]
        .as_str()
        .map(str::to_string)
        .ok_or(format!("create user: {user}"))
}

/// `POST /v1/sign_in_tokens` for `user_id`.
pub fn ticket_request(user_id: &str) -> Target {
    Target::post("/v1/sign_in_tokens")
        .header("authorization", &secret_auth())
        .json(&json!({ "user_id": user_id }))
}

/// The ticket of a `POST /v1/sign_in_tokens` answer.
pub fn ticket_of(answer: &load::Answer) -> Result<String, String> {
    let ticket = json_ok("ticket", answer)?;
    ticket["token"]
        .as_str()
        .map(str::to_string)
        .ok_or(format!("ticket: {ticket}"))
}

/// A ticket sign-in on a new native client (no `Authorization`).
pub fn sign_in_request(ticket: &str) -> Target {
    Target::post(bench::in_process::SIGN_IN_PATH).form(bench::in_process::sign_in_form(ticket))
}

/// (client token, session id) of a sign-in answer.
pub fn signed_in(answer: &load::Answer) -> Result<(String, String), String> {
    let signed = json_ok("sign in", answer)?;
    let sid = signed["response"]["created_session_id"]
        .as_str()
        .ok_or(format!("sign in: {signed}"))?;
    let token = answer
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or("sign in: no client token")?;
    Ok((token.to_string(), sid.to_string()))
}

/// A new user signed in on a new native client of the running server, over HTTP:
/// (client token, session id).
pub async fn http_session(addr: SocketAddr) -> Result<(String, String), String> {
    let user = http_user(addr).await?;
    let ticket = ticket_of(&load::call(addr, &ticket_request(&user)).await?)?;
    signed_in(&load::call(addr, &sign_in_request(&ticket)).await?)
}
