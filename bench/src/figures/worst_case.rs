//! Figure 7: the worst case the limits allow (docs/security.md): a user with 8 KB in every
//! kind of metadata, and JWT templates as large as a template may be. Measured on the
//! function that mints FAPI template tokens, under the Runtime API emulator, beside its
//! memory after an ordinary mint.

use std::fmt::Write as _;
use std::path::Path;

use bench::stats::{fmt_duration, fmt_mb, median};
use serde_json::{json, Map, Value};
use shared::limits::{METADATA_MAX_BYTES, RENDERED_CLAIMS_MAX_BYTES, TEMPLATE_MAX_BYTES};
use testkit::app::Req;
use testkit::emulator::{self, Run};
use testkit::fixtures;

use super::data_dir;

pub const FUNCTION: &str = "fapi-session-template-tokens";

/// What the runs measured, in kB.
pub struct WorstCase {
    /// VmRSS after one ordinary mint (a small template), the process idle again.
    pub idle_kb: u64,
    /// VmHWM of that process: its peak through start-up and the ordinary mint.
    pub ordinary_peak_kb: u64,
    /// The largest refused mint: every claim names the 8 KB metadata; answered 422.
    pub refused: Run,
    /// The largest token minted: claims just under the rendered-claims limit.
    pub largest: Run,
    /// A template of nothing but lookups into the 8 KB metadata; minted.
    pub lookups: Run,
    pub largest_token_bytes: usize,
    pub invocations: usize,
}

fn metadata() -> Value {
    // {"blob":"…"} is 11 bytes around the value.
    json!({ "blob": "x".repeat(METADATA_MAX_BYTES - 11) })
}

/// As many `{{user.public_metadata}}` claims as a template may hold.
fn refused_claims() -> Value {
    let mut claims = Map::new();
    let mut i = 0;
    loop {
        let key = format!("m{i}");
        let next = key.len() + r#""":"{{user.public_metadata}}","#.len();
        if shared::limits::json_len(&claims) + next > TEMPLATE_MAX_BYTES {
            break Value::Object(claims);
        }
        claims.insert(key, json!("{{user.public_metadata}}"));
        i += 1;
    }
}

/// As many lookups into the 8 KB metadata as a template may hold, each rendering little:
/// the most rendering work a mint that succeeds can ask for.
fn lookup_claims() -> Value {
    let mut claims = Map::new();
    let mut i = 0;
    loop {
        let key = format!("l{i}");
        let next = key.len() + r#""":"{{user.public_metadata.missing || 1}}","#.len();
        if shared::limits::json_len(&claims) + next > TEMPLATE_MAX_BYTES {
            break Value::Object(claims);
        }
        claims.insert(key, json!("{{user.public_metadata.missing || 1}}"));
        i += 1;
    }
}

/// A literal claim that leaves room for the default claims under the limit.
fn largest_claims() -> Value {
    json!({ "pad": "x".repeat(RENDERED_CLAIMS_MAX_BYTES - 400) })
}

/// Seeds a data file, then runs the function from `bin_dir` on each case, `invocations`
/// times, on `events/fapi-session-template-tokens/mint-template-token.json` of `repo`.
pub async fn measure(bin_dir: &Path, repo: &Path, invocations: usize) -> Result<WorstCase, String> {
    let dir = data_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let out = measure_in(bin_dir, repo, &dir.join("worst-case.sqlite3"), invocations).await;
    let _ = std::fs::remove_dir_all(&dir);
    out
}

async fn measure_in(
    bin_dir: &Path,
    repo: &Path,
    data_file: &Path,
    invocations: usize,
) -> Result<WorstCase, String> {
    let event_file = repo.join("events/fapi-session-template-tokens/mint-template-token.json");
    let event_template = std::fs::read_to_string(&event_file)
        .map_err(|e| format!("{}: {e}", event_file.display()))?;
    let _ = std::fs::remove_file(data_file);
    let app = fixtures::open(data_file).await;
    let user_id = app
        .create_user_from(&json!({
            "first_name": "Ada",
            "public_metadata": metadata(),
            "private_metadata": metadata(),
            "unsafe_metadata": metadata(),
        }))
        .await;
    let (client_token, session_id) = app.native_sign_in("", &user_id).await;
    for (name, claims) in [
        ("ordinary", json!({"role": "{{user.first_name}}"})),
        ("refused", refused_claims()),
        ("largest", largest_claims()),
        ("lookups", lookup_claims()),
    ] {
        app.send(
            Req::post("/v1/jwt_templates")
                .secret()
                .json(&json!({ "name": name, "claims": claims })),
        )
        .await
        .ok();
    }
    let largest = app
        .send(
            Req::post(format!("/v1/client/sessions/{session_id}/tokens/largest"))
                .native(&client_token),
        )
        .await;
    let largest_token_bytes = largest.body["jwt"]
        .as_str()
        .ok_or("largest: no token")?
        .len();
    drop(app);

    let binary = bin_dir.join(FUNCTION);
    let binary = binary.as_path();
    let event = |template: &str| {
        event_template
            .replace(shared::fixtures::SESSION_ID, &session_id)
            .replace(shared::fixtures::CLIENT_TOKEN, &client_token)
            .replace("/tokens/hasura", &format!("/tokens/{template}"))
    };
    let run = |template: &'static str, n: usize| {
        let event = event(template);
        let copy = data_file.with_extension(template);
        async move {
            fixtures::copy_data_file(data_file, &copy)?;
            let env = fixtures::function_env(&copy);
            let out = emulator::run(binary, FUNCTION, &event, n, &env).await;
            let _ = std::fs::remove_file(&copy);
            out
        }
    };
    let ordinary = run("ordinary", 1).await?;
    let refused = run("refused", invocations).await?;
    let largest = run("largest", invocations).await?;
    let lookups = run("lookups", invocations).await?;
    for (name, r, want) in [
        ("refused", &refused, 422),
        ("largest", &largest, 200),
        ("lookups", &lookups, 200),
    ] {
        if r.statuses.get(&want) != Some(&invocations) {
            return Err(format!("worst case {name}: answers {:?}", r.statuses));
        }
    }
    Ok(WorstCase {
        idle_kb: ordinary.rss_first_kb,
        ordinary_peak_kb: ordinary.peak_kb,
        refused,
        largest,
        lookups,
        largest_token_bytes,
        invocations,
    })
}

impl WorstCase {
    /// Table rows, in the bench's six columns, and how many targets they missed.
    pub fn rows(&self, peak_max_kb: u64) -> (String, usize) {
        let mut t = String::new();
        let mut misses = 0;
        let idle = format!(
            "{} RSS idle after an ordinary mint (peak {})",
            fmt_mb(self.idle_kb),
            fmt_mb(self.ordinary_peak_kb)
        );
        for (what, run, extra) in [
            (
                format!(
                    "7 worst case: template of {} KB naming 8 KB metadata in every claim, mint refused 422 × {}",
                    TEMPLATE_MAX_BYTES / 1024,
                    self.invocations
                ),
                &self.refused,
                String::new(),
            ),
            (
                format!(
                    "7 largest token allowed ({} B of claims) × {}",
                    RENDERED_CLAIMS_MAX_BYTES - 400,
                    self.invocations
                ),
                &self.largest,
                format!(", token {} B", self.largest_token_bytes),
            ),
            (
                format!(
                    "7 most lookups allowed: {} KB template of `{{{{user.public_metadata.missing || 1}}}}` claims, minted × {}",
                    TEMPLATE_MAX_BYTES / 1024,
                    self.invocations
                ),
                &self.lookups,
                String::new(),
            ),
        ] {
            let met = run.peak_kb <= peak_max_kb;
            misses += usize::from(!met);
            let _ = writeln!(
                t,
                "| {what} | peak RSS {}, RSS after {}{extra}; p50 {} per mint | {idle} | {:.2}× peak | peak ≤ {} | {} |",
                fmt_mb(run.peak_kb),
                fmt_mb(run.rss_last_kb),
                fmt_duration(median(&run.latencies)),
                run.peak_kb as f64 / self.idle_kb.max(1) as f64,
                fmt_mb(peak_max_kb),
                if met {
                    "✅ met".to_string()
                } else {
                    format!(
                        "❌ missed: by {:.0} %",
                        (run.peak_kb as f64 / peak_max_kb as f64 - 1.0) * 100.0
                    )
                },
            );
        }
        (t, misses)
    }
}
