//! The worst case the limits allow (docs/security.md): a user with 8 KB in every kind of
//! metadata, and JWT templates as large as a template may be. Measured on the function
//! that mints FAPI template tokens, under the Runtime API emulator, beside its memory
//! after an ordinary mint.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Map, Value};
use shared::limits::{METADATA_MAX_BYTES, RENDERED_CLAIMS_MAX_BYTES, TEMPLATE_MAX_BYTES};

use crate::app::{self, App, SECRET_KEY};
use crate::emulator;
use crate::stats::{fmt_duration, fmt_mb, median};

pub const FUNCTION: &str = "fapi-session-template-tokens";

/// What the runs measured, in kB.
pub struct WorstCase {
    /// VmRSS after one ordinary mint (a small template), the process idle again.
    pub idle_kb: u64,
    /// VmHWM of that process: its peak through start-up and the ordinary mint.
    pub ordinary_peak_kb: u64,
    /// The largest refused mint: every claim names the 8 KB metadata; answered 422.
    pub refused: emulator::Run,
    /// The largest token minted: claims just under the rendered-claims limit.
    pub largest: emulator::Run,
    /// A template of nothing but lookups into the 8 KB metadata; minted.
    pub lookups: emulator::Run,
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

/// Seeds `data_file`, then runs the function on each case, `invocations` times.
pub async fn measure(
    bin_dir: &Path,
    data_file: &Path,
    invocations: usize,
    env: &[(String, String)],
    event_template: &str,
) -> Result<WorstCase, String> {
    let _ = std::fs::remove_file(data_file);
    let app = App::on_file(data_file).await;
    let auth = format!("Bearer {SECRET_KEY}");
    let (_, user) = app
        .call_ok(
            "POST",
            "/v1/users",
            &[("authorization", &auth)],
            app::Body::Json(json!({
                "first_name": "Ada",
                "public_metadata": metadata(),
                "private_metadata": metadata(),
                "unsafe_metadata": metadata(),
            })),
        )
        .await;
    let user_id = user["id"].as_str().ok_or("user id")?.to_string();
    let signed_in = app.sign_in(&user_id, None).await;
    for (name, claims) in [
        ("ordinary", json!({"role": "{{user.first_name}}"})),
        ("refused", refused_claims()),
        ("largest", largest_claims()),
        ("lookups", lookup_claims()),
    ] {
        app.call_ok(
            "POST",
            "/v1/jwt_templates",
            &[("authorization", &auth)],
            app::Body::Json(json!({ "name": name, "claims": claims })),
        )
        .await;
    }
    let largest = app
        .dispatch(app::request(
            "POST",
            &format!(
                "/v1/client/sessions/{}/tokens/largest?_is_native=1",
                signed_in.session_id
            ),
            &[("authorization", &signed_in.client_token)],
            app::Body::Empty,
        ))
        .await;
    let token: Value = serde_json::from_str(largest.body()).map_err(|e| e.to_string())?;
    let largest_token_bytes = token["jwt"].as_str().ok_or("largest: no token")?.len();
    drop(app);

    let binary = bin_dir.join(FUNCTION);
    let binary = binary.as_path();
    let event = |template: &str| {
        event_template
            .replace("${SESSION_ID}", &signed_in.session_id)
            .replace("${CLIENT_TOKEN}", &signed_in.client_token)
            .replace("/tokens/hasura", &format!("/tokens/{template}"))
    };
    let run = |template: &'static str, n: usize| {
        let event = event(template);
        let dir = data_file.with_extension(template);
        async move {
            std::fs::copy(data_file, &dir).map_err(|e| e.to_string())?;
            let mut env = env.to_vec();
            for (k, v) in &mut env {
                if k == "EMBEDDED_STORE_PATH" {
                    *v = dir.to_string_lossy().to_string();
                }
            }
            let out = emulator::run(binary, FUNCTION, &event, n, &env).await;
            let _ = std::fs::remove_file(&dir);
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
    /// Table rows, in the bench's six columns.
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
