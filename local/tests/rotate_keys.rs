//! `local-api rotate-keys`: rotates the keyring of a database and prints its lifecycle;
//! refuses a second rotation while the first's next key waits to sign; and beside a
//! running server on the same database, rotates it for the server too, which publishes
//! the next key when it reloads its keyring. Real processes.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use testkit::local_api::{Http, LocalApi};

fn rotate_keys(data_file: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_local-api"))
        .arg("rotate-keys")
        .args(["--data-file", data_file.to_str().expect("path")])
        .args(args)
        .env_remove("FRONTEND_API_URL")
        .env_remove("STORE_BACKEND")
        .env_remove("EMBEDDED_STORE_PATH")
        .env_remove("BACKEND_API_SECRET_KEY")
        .env("RUST_LOG", "warn")
        .output()
        .expect("local-api runs")
}

#[test]
fn rotate_keys_rotates_a_data_file_and_waits_for_the_previous_rotation() {
    let dir = std::env::temp_dir().join(format!("rotate-keys-{}", std::process::id()));
    let data_file = dir.join("store.sqlite3");

    // On a new file: the first keyring, then its rotation.
    let out = rotate_keys(&data_file, &["--keys", "session_signing"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON lifecycle");
    assert_eq!(printed["object"], "instance_keys");
    assert_eq!(printed["version"], 2);
    let states: Vec<&str> = printed["session_signing_keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["state"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(states, ["current", "next"]);
    assert_eq!(printed["client_token_secrets"].as_array().unwrap().len(), 1);
    assert_eq!(testkit::fixtures::stored_keyring(&data_file)["version"], 2);

    // The next key has not started signing: a second rotation must wait...
    let out = rotate_keys(&data_file, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("key_rotation_pending"));
    // ...unless it is an emergency.
    let out = rotate_keys(&data_file, &["--emergency"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON lifecycle");
    assert_eq!(printed["session_signing_keys"].as_array().unwrap().len(), 1);
    assert_eq!(printed["client_token_secrets"].as_array().unwrap().len(), 1);

    // Bad arguments are a usage error.
    let out = rotate_keys(&data_file, &["--keys", "everything"]);
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn rotate_keys_beside_a_running_server_rotates_its_keyring_too() {
    let dir = std::env::temp_dir().join(format!("rotate-keys-shared-{}", std::process::id()));
    let data_file = dir.join("store.sqlite3");
    // A 2 s publication window: the server reloads its keyring every second.
    let server = LocalApi::start(
        Path::new(env!("CARGO_BIN_EXE_local-api")),
        &["--data-file", data_file.to_str().expect("path")],
        &[("JWKS_CACHE_WINDOW_SECONDS", "2")],
    )
    .expect("local-api starts");
    let http = Http::new();
    let jwks = format!("{}/.well-known/jwks.json", server.url());
    let published = || async {
        let answer = http.send("GET", &jwks, &[], None).await;
        assert_eq!(answer.status, 200);
        answer.body["keys"].as_array().map_or(0, Vec::len)
    };
    assert_eq!(published().await, 1);

    let out = rotate_keys(&data_file, &["--keys", "session_signing"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen = false;
    for _ in 0..100 {
        seen = published().await == 2;
        if seen {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        seen,
        "the server publishes the next key from the shared database"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
