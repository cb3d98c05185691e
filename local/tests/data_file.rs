//! The embedded store's database as a user meets it, with real `local-api` processes: it
//! survives a restart; two servers on one file lose nothing; an online backup restores;
//! a JSON data file of an earlier version is refused by name, then migrated by the
//! command the refusal names.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use testkit::local_api::{client_cookie, Http, LocalApi};

/// A Backend API secret key both servers of a test share.
const SECRET: &str = "sk_test_data_file_0123456789abcdef0123456789";

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_local-api"))
}

fn start(data_file: &Path) -> LocalApi {
    LocalApi::start(
        binary(),
        &["--data-file", data_file.to_str().expect("path")],
        &[("BACKEND_API_SECRET_KEY", SECRET)],
    )
    .expect("local-api starts")
}

/// `local-api <args>` as a command that exits.
fn run(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .env_remove("FRONTEND_API_URL")
        .env_remove("STORE_BACKEND")
        .env_remove("EMBEDDED_STORE_PATH")
        .env("RUST_LOG", "warn")
        .output()
        .expect("local-api runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

/// A Backend API call with the shared secret key.
async fn bapi(
    http: &Http,
    server: &LocalApi,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let bearer = format!("Bearer {SECRET}");
    let answer = http
        .send(
            method,
            &format!("{}{path}", server.url()),
            &[("authorization", bearer.as_str())],
            body.map(|b| ("application/json", b.to_string())),
        )
        .await;
    assert_eq!(answer.status, 200, "{method} {path}: {}", answer.body);
    answer.body
}

/// A user signs in with a ticket, each step on the other server than the one before: the
/// user and the ticket are made on `x` and `y`, the client on `x`, the sign-in on `y`,
/// the touch on `x`, a token minted on `y`. Returns the user, session and cookie.
async fn sign_in_across(http: &Http, x: &LocalApi, y: &LocalApi) -> (String, String, String) {
    let user = bapi(http, x, "POST", "/v1/users", Some(json!({}))).await;
    let user_id = user["id"].as_str().expect("user id").to_string();
    let ticket = bapi(
        http,
        y,
        "POST",
        "/v1/sign_in_tokens",
        Some(json!({ "user_id": user_id })),
    )
    .await["token"]
        .as_str()
        .expect("ticket")
        .to_string();
    let client = http
        .send("POST", &format!("{}/v1/client", x.url()), &[], None)
        .await;
    assert_eq!(client.status, 200);
    let sign_in = http
        .send(
            "POST",
            &format!("{}/v1/client/sign_ins", y.url()),
            &[("cookie", client_cookie(&client).as_str())],
            Some((
                "application/x-www-form-urlencoded",
                format!("strategy=ticket&ticket={ticket}"),
            )),
        )
        .await;
    assert_eq!(sign_in.status, 200, "{}", sign_in.body);
    let sid = sign_in.body["response"]["created_session_id"]
        .as_str()
        .expect("session")
        .to_string();
    let cookie = client_cookie(&sign_in);
    let touch = http
        .send(
            "POST",
            &format!("{}/v1/client/sessions/{sid}/touch", x.url()),
            &[("cookie", cookie.as_str())],
            None,
        )
        .await;
    assert_eq!(touch.status, 200, "{}", touch.body);
    let token = http
        .send(
            "POST",
            &format!("{}/v1/client/sessions/{sid}/tokens", y.url()),
            &[("cookie", cookie.as_str())],
            None,
        )
        .await;
    assert_eq!(token.status, 200, "{}", token.body);
    (user_id, sid, cookie)
}

#[tokio::test]
async fn the_database_survives_a_restart_and_is_private() {
    let dir = scratch("local-api-restart");
    let file = dir.join("store.sqlite3");
    let http = Http::new();

    let (user_id, kid) = {
        let server = start(&file);
        assert!(
            server
                .banner
                .iter()
                .any(|l| l.contains("SQLite database") && l.contains("store.sqlite3 (mode 0600)")),
            "the database is named on start: {:?}",
            server.banner
        );
        let user = bapi(&http, &server, "POST", "/v1/users", Some(json!({}))).await;
        let jwks = http
            .send(
                "GET",
                &format!("{}/.well-known/jwks.json", server.url()),
                &[],
                None,
            )
            .await;
        (
            user["id"].as_str().unwrap().to_string(),
            jwks.body["keys"][0]["kid"].clone(),
        )
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // The local key-encryption key beside it, as private.
        let key_file = shared::keyring::local_kek::key_file(&file);
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let server = start(&file);
    bapi(&http, &server, "GET", &format!("/v1/users/{user_id}"), None).await;
    let jwks = http
        .send(
            "GET",
            &format!("{}/.well-known/jwks.json", server.url()),
            &[],
            None,
        )
        .await;
    assert_eq!(jwks.body["keys"][0]["kid"], kid, "the signing key is kept");
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// Two servers on one database file, sign-ins interleaved across them and running at the
/// same time: every user and session either created is readable from both, and each
/// client's cookie works on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_lose_nothing() {
    let dir = scratch("local-api-two");
    let file = dir.join("store.sqlite3");
    let a = start(&file);
    let b = start(&file);
    let http = Http::new();

    let mut signed_in = Vec::new();
    for _ in 0..6 {
        let (one, two) = tokio::join!(sign_in_across(&http, &a, &b), sign_in_across(&http, &b, &a));
        signed_in.extend([one, two]);
    }

    for server in [&a, &b] {
        for (user_id, sid, cookie) in &signed_in {
            bapi(&http, server, "GET", &format!("/v1/users/{user_id}"), None).await;
            let session = bapi(&http, server, "GET", &format!("/v1/sessions/{sid}"), None).await;
            assert_eq!(session["status"], "active");
            assert_eq!(session["user_id"], user_id.as_str());
            let listed = bapi(
                &http,
                server,
                "GET",
                &format!("/v1/sessions?user_id={user_id}"),
                None,
            )
            .await;
            assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
            let fapi = http
                .send(
                    "GET",
                    &format!("{}/v1/client/sessions/{sid}", server.url()),
                    &[("cookie", cookie.as_str())],
                    None,
                )
                .await;
            assert_eq!(fapi.status, 200, "{}", fapi.body);
            assert_eq!(fapi.body["client"]["last_active_session_id"], sid.as_str());
        }
    }
    drop((a, b));
    let _ = std::fs::remove_dir_all(dir);
}

/// `local-api backup` copies the database while a server runs on it; a server started on
/// the copy serves what was there.
#[tokio::test]
async fn an_online_backup_restores_and_serves() {
    let dir = scratch("local-api-backup");
    let file = dir.join("store.sqlite3");
    let backup = dir.join("backup.sqlite3");
    let http = Http::new();
    let server = start(&file);
    let user = bapi(
        &http,
        &server,
        "POST",
        "/v1/users",
        Some(json!({"first_name": "Ada"})),
    )
    .await;

    let take_backup = || {
        run(&[
            "backup",
            backup.to_str().unwrap(),
            "--data-file",
            file.to_str().unwrap(),
        ])
    };
    let out = take_backup();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = take_backup();
    assert_eq!(again.status.code(), Some(1), "never over an existing file");
    drop(server);

    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("store.sqlite3.kek with the backup"),
        "{printed}"
    );

    // Restore: the backup file becomes a database file a server starts on, with the key
    // file kept beside the database. Without it the keys cannot be read: a clear error
    // and exit 1, not a panic and not a new key.
    let restored = dir.join("restored.sqlite3");
    std::fs::copy(&backup, &restored).expect("copy");
    let key_file = shared::keyring::local_kek::key_file(&restored);
    let refused = run(&["rotate-keys", "--data-file", restored.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("local key-encryption key") && why.contains("is missing"),
        "{why}"
    );
    assert!(!key_file.exists());
    std::fs::copy(shared::keyring::local_kek::key_file(&file), &key_file).expect("copy key");
    let server = start(&restored);
    let id = user["id"].as_str().unwrap();
    let read = bapi(&http, &server, "GET", &format!("/v1/users/{id}"), None).await;
    assert_eq!(read["first_name"], "Ada");
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// A JSON data file of an earlier version is refused with the command that migrates it;
/// that command writes the database beside it, and a server on the database serves the
/// file's users.
#[tokio::test]
async fn a_json_data_file_is_refused_then_migrated_by_the_named_command() {
    let dir = scratch("local-api-migrate");
    let json_file = dir.join("store.json");
    let user = shared::domain::User::create(
        shared::domain::NewUser {
            first_name: Some("Grace".into()),
            ..Default::default()
        },
        1_700_000_000_000,
    );
    let data = json!({
        "users": { user.id.clone(): user },
        "clients": {},
        "sessions": {},
        "sign_in_tokens": {},
    });
    std::fs::write(&json_file, data.to_string()).expect("write");

    let refused = LocalApi::start(
        binary(),
        &["--data-file", json_file.to_str().unwrap()],
        &[("BACKEND_API_SECRET_KEY", SECRET)],
    )
    .err()
    .expect("refused");
    assert!(refused.contains("did not say it was ready"), "{refused}");
    let out = run(&["--port", "0", "--data-file", json_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("local-api migrate-data-file"),
        "the refusal names the command: {stderr}"
    );

    let out = run(&["migrate-data-file", json_file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let database = dir.join("store.sqlite3");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 users"));
    let server = start(&database);
    let http = Http::new();
    let read = bapi(
        &http,
        &server,
        "GET",
        &format!("/v1/users/{}", user.id),
        None,
    )
    .await;
    assert_eq!(read["first_name"], "Grace");
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}
