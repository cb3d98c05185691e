//! `local-api seed --fixtures`, as a user runs it: the real binary seeds a data file (and a
//! DynamoDB table, on the test command's server), twice; the fixtures of `events/` then
//! play as they stand, over HTTP against `local-api` on that store; a fixture that changes
//! the data plays again after a re-seed; a store with a keyring of its own is refused.

use std::path::Path;
use std::process::{Command, Output};

use testkit::fixtures::{self, Fixture};
use testkit::local_api::{Http, LocalApi};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_local-api"))
}

/// `local-api <args>` with the service's settings taken out of the environment, `env` on
/// top.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(binary());
    for name in testkit::local_api::SETTINGS {
        command.env_remove(name);
    }
    command
        .args(args)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("local-api runs")
}

/// Seeds with `args` and `env`: its output, which must be a success.
fn seed(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = run(&[&["seed", "--fixtures"][..], args].concat(), env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fixture(function: &str, case: &str) -> Fixture {
    fixtures::all()
        .into_iter()
        .find(|f| f.function == function && f.case == case)
        .expect("a fixture of events/")
}

/// Fixtures that leave the data as they found it, so they play in any order.
const READ_ONLY: [(&str, &str); 10] = [
    ("fapi-client", "get-client-native"),
    ("fapi-session-get", "get-session"),
    ("fapi-session-touch", "touch-session"),
    ("fapi-session-tokens", "mint-session-token"),
    ("fapi-session-template-tokens", "mint-template-token"),
    ("fapi-jwks", "get-jwks"),
    ("bapi", "get-user"),
    ("bapi", "list-sessions-paginated"),
    ("bapi", "get-jwt-template"),
    ("bapi", "get-instance-keys"),
];

/// Seeds a store twice (as configured by `store_args` and `store_env`), serves it, and
/// plays fixtures against it; one that ends the session, and the ticket sign-in, play
/// again after a third seed.
async fn seed_and_play(store_args: &[&str], store_env: &[(&str, &str)]) {
    let first = seed(store_args, store_env);
    let second = seed(store_args, store_env);
    assert_eq!(first, second, "a seed says the same each time");
    assert!(first.contains(shared::fixtures::SESSION_ID), "{first}");
    assert!(first.contains(shared::fixtures::SECRET_KEY), "{first}");

    let env: Vec<(&str, &str)> = [store_env, &shared::fixtures::FUNCTION_ENV[..]].concat();
    let server = LocalApi::start(binary(), store_args, &env).expect("local-api starts");
    let http = Http::new();
    let play = |function: &'static str, case: &'static str| {
        let (http, url) = (&http, server.url());
        async move { fixtures::play_over_http(http, &url, &fixture(function, case)).await }
    };
    let mut failures = Vec::new();
    for (function, case) in READ_ONLY.into_iter().chain([
        ("fapi-session-end", "end-session"),
        ("fapi-sign-ins", "sign-in-with-ticket"),
    ]) {
        failures.extend(play(function, case).await.err());
    }
    // Played again, they fail: the session is ended, the ticket used...
    assert!(play("fapi-session-end", "end-session").await.is_err());
    assert!(play("fapi-sign-ins", "sign-in-with-ticket").await.is_err());
    // ...until the seed puts them back, beside the running server.
    seed(store_args, store_env);
    for (function, case) in READ_ONLY.into_iter().chain([
        ("fapi-session-end", "end-session"),
        ("fapi-sign-ins", "sign-in-with-ticket"),
    ]) {
        failures.extend(play(function, case).await.err());
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn seed_fixtures_seeds_a_data_file_on_which_the_fixtures_play_as_they_stand() {
    let dir = std::env::temp_dir().join(format!("seed-fixtures-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data_file = dir.join("fixtures.sqlite3");
    seed_and_play(&["--data-file", data_file.to_str().expect("path")], &[]).await;

    // `--fixtures` is required, and a data file that a server made its keyring in is
    // refused, untouched.
    assert_eq!(run(&["seed"], &[]).status.code(), Some(2));
    let own = dir.join("own.sqlite3");
    let own = own.to_str().expect("path");
    assert!(run(&["rotate-keys", "--data-file", own], &[])
        .status
        .success());
    let keyring = fixtures::stored_keyring(Path::new(own));
    let refused = run(&["seed", "--fixtures", "--data-file", own], &[]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("keyring of its own"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(fixtures::stored_keyring(Path::new(own)), keyring);
    assert!(!fixtures::stored_user(
        Path::new(own),
        shared::fixtures::USER_ID
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same on DynamoDB (the server `scripts/test.sh` starts), the table named by
/// `DYNAMODB_TABLE_NAME` as a deployed function reads it.
#[tokio::test]
async fn seed_fixtures_seeds_a_dynamodb_table() {
    let Some(endpoint) = testkit::stores::dynamodb_endpoint() else {
        return;
    };
    let table = shared::ids::new_id("fixtures");
    seed_and_play(
        &[],
        &[
            ("STORE_BACKEND", "dynamodb"),
            ("DYNAMODB_TABLE_NAME", &table),
            ("AWS_ENDPOINT_URL_DYNAMODB", &endpoint),
        ],
    )
    .await;
}
