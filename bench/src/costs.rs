//! What a request costs on AWS, at list prices: API Gateway (HTTP API), Lambda (arm64, at
//! the template's memory size, for the measured duration plus the DynamoDB round trips),
//! and DynamoDB on-demand request units from the test-verified table in docs/dynamodb.md.
//! Then the same per monthly active user, for a stated usage model. Prices and their
//! sources are in docs/benchmarks.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use shared::domain::{Lifetimes, Session};

/// US East (N. Virginia) list prices, read 2026-11-28 (sources in docs/benchmarks.md).
pub const API_GATEWAY_HTTP_PER_MILLION: f64 = 1.00;
pub const LAMBDA_REQUESTS_PER_MILLION: f64 = 0.20;
pub const LAMBDA_ARM64_PER_GB_SECOND: f64 = 0.000_013_333_4;
pub const DYNAMODB_RRU_PER_MILLION: f64 = 0.125;
pub const DYNAMODB_WRU_PER_MILLION: f64 = 0.625;

/// `MemorySize` of every function in template.yaml.
pub const LAMBDA_MEMORY_GB: f64 = 0.5;
/// What a Lambda function waits for one DynamoDB call in the same region (the service's
/// "single-digit millisecond" latency); an assumption, stated beside the table.
pub const DYNAMODB_CALL_MS: f64 = 5.0;

/// One row of docs/dynamodb.md's calls table.
#[derive(Clone, Debug)]
pub struct Row {
    pub endpoint: String,
    pub calls: String,
    pub operations: u32,
    pub read_units: u32,
    pub write_units: u32,
}

/// The calls table of docs/dynamodb.md (held to the code by shared/tests/suite/dynamodb_calls.rs).
pub fn dynamodb_rows(repo: &Path) -> Vec<Row> {
    let doc = std::fs::read_to_string(repo.join("docs/dynamodb.md")).unwrap_or_default();
    let Some(table) = doc
        .split_once("<!-- calls:start -->")
        .and_then(|(_, rest)| rest.split_once("<!-- calls:end -->"))
        .map(|(table, _)| table)
    else {
        return Vec::new();
    };
    // Round trips: the operations, not the items of transactions (`TransactWriteItems/Put`).
    let count = |cell: &str, name: Option<&str>| -> u32 {
        cell.split(',')
            .filter_map(|part| part.trim().rsplit_once(' '))
            .filter(|(op, _)| !op.contains('/'))
            .filter(|(op, _)| name.is_none_or(|n| *op == n))
            .filter_map(|(_, n)| n.parse::<u32>().ok())
            .sum()
    };
    table
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
            let [endpoint, calls, units] = cells[..] else {
                return None;
            };
            let endpoint = endpoint.trim().trim_matches('`');
            endpoint.contains('/').then(|| Row {
                endpoint: endpoint.to_string(),
                calls: calls.trim().to_string(),
                operations: count(calls, None),
                read_units: count(units, Some("RRU")),
                write_units: count(units, Some("WRU")),
            })
        })
        .collect()
}

/// The function that serves a documented endpoint (`METHOD /path (variant)`), from the
/// route table: path parameters match any name.
pub fn function_of(endpoint: &str) -> Option<&'static str> {
    let plain = endpoint.split(" (").next()?.split('?').next()?;
    let (method, path) = plain.split_once(' ')?;
    let segments: Vec<&str> = path.split('/').collect();
    shared::routes::routes()
        .find(|(_, r)| {
            let route: Vec<&str> = r.path.split('/').collect();
            r.method.as_str() == method
                && route.len() == segments.len()
                && route
                    .iter()
                    .zip(&segments)
                    .all(|(a, b)| a == b || (a.starts_with('{') && b.starts_with('{')))
        })
        .map(|(f, _)| f.name)
}

/// The price of a million requests of one endpoint, by service.
#[derive(Clone, Copy, Debug, Default)]
pub struct PerMillion {
    pub billed_ms: f64,
    pub api_gateway: f64,
    pub lambda: f64,
    pub dynamodb: f64,
}

impl PerMillion {
    pub fn total(&self) -> f64 {
        self.api_gateway + self.lambda + self.dynamodb
    }
}

/// `cpu` is the function's measured warm duration; the DynamoDB calls add their wait.
pub fn per_million(row: &Row, cpu: Duration) -> PerMillion {
    let billed_ms = (cpu.as_secs_f64() * 1000.0 + row.operations as f64 * DYNAMODB_CALL_MS).ceil();
    PerMillion {
        billed_ms,
        api_gateway: API_GATEWAY_HTTP_PER_MILLION,
        lambda: LAMBDA_REQUESTS_PER_MILLION
            + 1e6 * LAMBDA_MEMORY_GB * billed_ms / 1000.0 * LAMBDA_ARM64_PER_GB_SECOND,
        dynamodb: row.read_units as f64 * DYNAMODB_RRU_PER_MILLION
            + row.write_units as f64 * DYNAMODB_WRU_PER_MILLION,
    }
}

/// The session lifetimes of a default configuration.
pub fn default_lifetimes() -> Result<Lifetimes, String> {
    let config = shared::config::Config::from_lookup(|name| match name {
        "FRONTEND_API_URL" => Some("https://clerk.example.com".into()),
        "BACKEND_API_SECRET_KEY" => Some("sk_cost_model_0123456789abcdef0123456789".into()),
        _ => None,
    })
    .map_err(|e| e.to_string())?;
    let ms = |d: Duration| d.as_millis() as i64;
    Ok(Lifetimes {
        session_max_ms: ms(config.session_max_lifetime),
        inactivity_ms: ms(config.session_inactivity_timeout),
        activity_interval_ms: ms(config.session_activity_interval),
    })
}

/// The usage model: one hour a day with a focused tab, on every day of a 30-day month.
pub const DAYS: u32 = 30;
pub const FOCUSED_SECS_PER_DAY: i64 = 3600;
/// clerk-js refreshes the 60 s session token about 10 s before it expires.
pub const REFRESH_SECS: i64 = 50;
/// Tab focus events per focused hour, each a touch of the session already active.
pub const FOCUS_TOUCHES_PER_DAY: u32 = 4;

/// Mints and touches of one user over the month, and how many of them record activity,
/// with the service's own rule ([`Session::activity_due`]) at the default interval.
#[derive(Clone, Copy, Debug)]
pub struct Month {
    /// Sign-ins: the first, and again whenever the session reached its maximum lifetime.
    pub sign_ins: u32,
    pub mints: u32,
    pub mints_writing: u32,
    pub touches: u32,
    pub touches_writing: u32,
}

pub fn simulate_month(lifetimes: Lifetimes, focus_touches_per_day: u32) -> Month {
    let mut session = Session::start("client_model", "user_model", 0, lifetimes);
    let mut month = Month {
        sign_ins: 1,
        mints: 0,
        mints_writing: 0,
        touches: 0,
        touches_writing: 0,
    };
    let focused_ms = FOCUSED_SECS_PER_DAY * 1000;
    for day in 0..DAYS as i64 {
        // (time in the day, is a touch): focus touches spread over the hour, refreshes
        // every REFRESH_SECS; at the same instant the touch comes first.
        let touches = (0..focus_touches_per_day as i64)
            .map(|k| (k * focused_ms / focus_touches_per_day as i64, true));
        let mints =
            (0..focused_ms / (REFRESH_SECS * 1000)).map(|j| (j * REFRESH_SECS * 1000, false));
        let mut events: Vec<(i64, bool)> = touches.chain(mints).collect();
        events.sort_by_key(|&(t, touch)| (t, !touch));
        for (t, touch) in events {
            let now = day * 86_400_000 + t;
            if !session.status_at(now).is_signed_in() {
                session = Session::start("client_model", "user_model", now, lifetimes);
                month.sign_ins += 1;
            }
            let due = session.activity_due(now, lifetimes);
            if due {
                session = session.with_activity(now, lifetimes, None);
            }
            let (count, writing) = if touch {
                (&mut month.touches, &mut month.touches_writing)
            } else {
                (&mut month.mints, &mut month.mints_writing)
            };
            *count += 1;
            *writing += u32::from(due);
        }
    }
    month
}

/// The cost table (markdown) and the share of write-free mints, from the calls table and
/// the measured warm duration of each function.
pub fn report(
    rows: &[Row],
    warm: &BTreeMap<&str, Duration>,
    lifetimes: Lifetimes,
) -> (String, f64) {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| endpoint | function | DynamoDB | billed ms | API Gateway | Lambda | DynamoDB | total per million |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|");
    let mut prices = BTreeMap::new();
    for row in rows {
        let Some(function) = function_of(&row.endpoint) else {
            continue;
        };
        let cpu = warm.get(function).copied().unwrap_or_default();
        let p = per_million(row, cpu);
        prices.insert(row.endpoint.as_str(), p);
        let _ = writeln!(
            t,
            "| `{}` | `{function}` | {}; RRU {}, WRU {} | {:.0} | ${:.2} | ${:.3} | ${:.3} | ${:.2} |",
            row.endpoint,
            row.calls,
            row.read_units,
            row.write_units,
            p.billed_ms,
            p.api_gateway,
            p.lambda,
            p.dynamodb,
            p.total()
        );
    }

    let month = simulate_month(lifetimes, FOCUS_TOUCHES_PER_DAY);
    let write_free_share = |m: &Month| 1.0 - m.mints_writing as f64 / m.mints.max(1) as f64;
    // The worst case for mints: a tab that never touches, so every recorded activity is a
    // mint's.
    let untouched = simulate_month(lifetimes, 0);
    let write_free = write_free_share(&month).min(write_free_share(&untouched));
    let price = |endpoint: &str| prices.get(endpoint).map_or(0.0, PerMillion::total) / 1e6;
    let mint = price("POST /v1/client/sessions/{id}/tokens");
    let mint_writing = price("POST /v1/client/sessions/{id}/tokens (activity due)");
    let touch = price("POST /v1/client/sessions/{id}/touch (already last active)");
    let touch_writing = price("POST /v1/client/sessions/{id}/touch");
    let loads = DAYS as f64 * (price("GET /v1/client") + price("GET /v1/environment"))
        + month.sign_ins as f64 * price("POST /v1/client/sign_ins (ticket, existing client)");
    let per_user = (month.mints - month.mints_writing) as f64 * mint
        + month.mints_writing as f64 * mint_writing
        + (month.touches - month.touches_writing) as f64 * touch
        + month.touches_writing as f64 * touch_writing
        + loads;
    let _ = writeln!(
        t,
        "\nPer monthly active user ({DAYS} days, one focused hour a day: a page load \
         (`GET /v1/environment`, `GET /v1/client`), {FOCUS_TOUCHES_PER_DAY} focus touches and a \
         token refresh every {REFRESH_SECS} s; a ticket sign-in whenever the 7-day session \
         lifetime ends: {} sign-ins): {} mints of which {} record activity, {} touches of \
         which {} record activity; **${:.5} per user per month** (${:.2} per 1,000 users).\n\n\
         Write-free session-token mints: {:.1} % with the focus touches, {:.1} % for a tab \
         that never touches ({} of {} mints record activity); target ≥ 95 % of mints: {}.",
        month.sign_ins,
        month.mints,
        month.mints_writing,
        month.touches,
        month.touches_writing,
        per_user,
        per_user * 1000.0,
        write_free_share(&month) * 100.0,
        write_free_share(&untouched) * 100.0,
        untouched.mints_writing,
        untouched.mints,
        if write_free >= 0.95 {
            "✅ met"
        } else {
            "❌ missed"
        },
    );
    (t, write_free)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_map_to_their_functions() {
        assert_eq!(
            function_of("POST /v1/client/sessions/{id}/tokens (activity due)"),
            Some("fapi-session-tokens")
        );
        assert_eq!(function_of("GET /v1/sessions?user_id="), Some("bapi"));
        assert_eq!(function_of("GET /.well-known/jwks.json"), Some("fapi-jwks"));
    }

    #[test]
    fn the_usage_model_records_activity_about_once_a_day() {
        let month = simulate_month(default_lifetimes().unwrap(), FOCUS_TOUCHES_PER_DAY);
        assert_eq!(month.mints, DAYS * 72);
        assert_eq!(month.touches, DAYS * FOCUS_TOUCHES_PER_DAY);
        // One focused hour a day: the first request of the day records activity, except on
        // the days that start with a sign-in (the 7-day maximum lifetime).
        assert_eq!(month.sign_ins, 5);
        assert_eq!(
            month.mints_writing + month.touches_writing + month.sign_ins,
            DAYS
        );
    }

    #[test]
    fn a_read_only_mint_costs_no_write_units() {
        let row = Row {
            endpoint: "POST /v1/client/sessions/{id}/tokens".into(),
            calls: "Query 1".into(),
            operations: 1,
            read_units: 1,
            write_units: 0,
        };
        let p = per_million(&row, Duration::from_micros(600));
        assert_eq!(p.billed_ms, 6.0);
        assert!((p.dynamodb - DYNAMODB_RRU_PER_MILLION).abs() < 1e-9);
    }
}
