//! The functions as their users build and run them, with cargo-lambda: `cargo lambda
//! build` builds one function, whose binary then answers under the Runtime API; and every
//! fixture of `events/` plays as the file stands through `cargo lambda watch` and `cargo
//! lambda invoke`, against the fixtures' data (docs/deploy.md, "Running a function
//! locally, as Lambda runs it").
//!
//! cargo-lambda comes from the test command's `.venv` (`CARGO_LAMBDA` names it). Without
//! it the test fails when `REQUIRE_CARGO_LAMBDA` or `CI` is set, and otherwise says loudly
//! that it skipped.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::fixtures;

/// The function `cargo lambda build` builds here: the one that links least, so the
/// build is the cheapest that still proves the tool chain.
const BUILT: &str = "fapi-environment";

fn cargo_lambda() -> Option<PathBuf> {
    match std::env::var_os("CARGO_LAMBDA") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ if std::env::var_os("REQUIRE_CARGO_LAMBDA").is_some()
            || std::env::var_os("CI").is_some() =>
        {
            panic!("CARGO_LAMBDA is not set: run the tests with `bash scripts/test.sh`")
        }
        _ => {
            eprintln!("SKIPPED: no cargo-lambda (run `bash scripts/test.sh`, which installs it)");
            None
        }
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `cargo lambda <args>` in the workspace, with cargo-lambda's folder (which holds the zig
/// it links with) first on the PATH.
fn command(cargo_lambda: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(cargo_lambda);
    let bin_dir = cargo_lambda.parent().unwrap_or(Path::new("."));
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin_dir.to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    command
        .arg("lambda")
        .args(args)
        .current_dir(workspace())
        .env("PATH", std::env::join_paths(dirs).expect("PATH"));
    // What cargo sets for this test process is not the test command's environment. A
    // build script that watches one of these (ring's watches CARGO_MANIFEST_DIR) would
    // otherwise see it change, and the build would compile it and all above it again
    // (the AWS SDK among them), then the next cargo of the test command would, too.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_by_cargo_test = name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_EXE_")
            || matches!(
                name.as_ref(),
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
            );
        if set_by_cargo_test {
            command.env_remove(name.as_ref());
        }
    }
    command
}

/// `cargo lambda watch`, stopped (with the function processes it started) when dropped.
struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        // Its process group: watch and every function it spawned.
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test]
async fn cargo_lambda_builds_a_function_and_plays_every_fixture() {
    let Some(cargo_lambda) = cargo_lambda() else {
        return;
    };
    let dir = tempdir();

    // 1. `cargo lambda build`: the binary it makes answers its fixture. Built for this
    // machine's processor with cargo itself as the compiler (zig is for cross-compiling),
    // for the target triple the test command's build names, whose artifacts it reuses.
    let triple = std::env::var("CARGO_BUILD_TARGET").unwrap_or_else(|_| host_triple());
    let status = command(
        &cargo_lambda,
        &[
            "build",
            "--compiler",
            "cargo",
            "--target",
            &triple,
            "--bin",
            BUILT,
        ],
    )
    .status()
    .expect("run cargo lambda build");
    assert!(
        status.success(),
        "cargo lambda build --bin {BUILT}: {status}"
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let bootstrap = target.join("lambda").join(BUILT).join("bootstrap");
    assert!(bootstrap.is_file(), "{} not built", bootstrap.display());
    let seed = fixtures::seed(&dir).await;
    let env = fixtures::function_env(&seed.data_file);
    let event_file = workspace().join("events/fapi-environment/get-environment.json");
    let event = std::fs::read_to_string(&event_file).expect("fixture");
    let answer = testkit::emulator::invoke(&bootstrap, BUILT, &event, &env)
        .await
        .expect("the built bootstrap answers");
    assert_eq!(answer["statusCode"], 200, "{answer}");

    // 2. `cargo lambda watch` + `cargo lambda invoke`, every fixture as the file stands.
    let port = free_port();
    let mut watch = command(
        &cargo_lambda,
        &[
            "watch",
            "--ignore-changes",
            // IPv4 loopback: the defaults (`::`, `::1`) need IPv6.
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
        ],
    );
    for (name, value) in &env {
        watch.args(["--env-var", &format!("{name}={value}")]);
    }
    let log = std::fs::File::create(dir.join("watch.log")).expect("log");
    let watch = Watch(
        std::os::unix::process::CommandExt::process_group(&mut watch, 0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start cargo lambda watch"),
    );
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "cargo lambda watch did not listen: {}",
            std::fs::read_to_string(dir.join("watch.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut failures = Vec::new();
    let all = fixtures::all();
    for fixture in &all {
        // Each fixture starts from the seeded data, as in the other fixture tests; the
        // function processes keep the database open meanwhile.
        fixtures::reseed(&seed.data_file).await;
        let output = command(
            &cargo_lambda,
            &[
                "invoke",
                &fixture.function,
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port.to_string(),
                "--data-file",
                &fixture.event.to_string_lossy(),
                "--output-format",
                "json",
            ],
        )
        .stdin(Stdio::null())
        .output()
        .expect("run cargo lambda invoke");
        let name = format!("{}/{}", fixture.function, fixture.case);
        if !output.status.success() {
            failures.push(format!(
                "{name}: cargo lambda invoke failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
            continue;
        }
        let answer: Value = match serde_json::from_slice(&output.stdout) {
            Ok(answer) => answer,
            Err(e) => {
                failures.push(format!("{name}: not JSON ({e})"));
                continue;
            }
        };
        let status = answer["statusCode"].as_u64().unwrap_or(0) as u16;
        let body: Value = answer["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        if let Err(e) = fixtures::compare(&fixture.expected, status, &body) {
            failures.push(format!("{name}: {e}"));
        }
    }
    drop(watch);
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed through cargo lambda:\n{}\nwatch log: {}",
        failures.len(),
        all.len(),
        failures.join("\n"),
        dir.join("watch.log").display()
    );
    // Every function was played, a success and an error each.
    for function in shared::routes::functions() {
        let played: Vec<_> = all.iter().filter(|f| f.function == function).collect();
        let status = |f: &&fixtures::Fixture| {
            let expected: Value =
                serde_json::from_str(&std::fs::read_to_string(&f.expected).unwrap()).unwrap();
            expected["status"].as_u64().unwrap_or(0)
        };
        assert!(
            played.iter().any(|f| status(f) < 300),
            "{function}: no success"
        );
        assert!(
            played.iter().any(|f| status(f) >= 400),
            "{function}: no error"
        );
    }
}

/// The triple rustc builds for by default: this machine's.
fn host_triple() -> String {
    let output = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc names its host")
        .to_string()
}

/// A folder of this test's own, left behind for its logs.
fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cargo-lambda-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
