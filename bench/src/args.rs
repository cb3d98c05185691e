//! The command line.
//!
//! ```text
//! bench --bin-dir DIR [--quick] [--out FILE] [--criterion-dir DIR] [--repo DIR]
//!       [--in-process-only | --http-only | --writes-only | --worst-case-only | --embedded-store-only | --functions-only | --sign-in-only | --soak-minutes N [--soak-dynamodb-minutes M]]
//! ```

use std::path::{Path, PathBuf};

pub struct Args {
    pub quick: bool,
    pub bin_dir: PathBuf,
    pub out: Option<PathBuf>,
    pub criterion_dir: Option<PathBuf>,
    pub repo: PathBuf,
    /// Only the in-process figures (for profiling the handlers).
    pub in_process_only: bool,
    /// Only figure 2 (the session read beside `GET /v1/environment`), in process and over
    /// HTTP: the release `local-api`.
    pub http_only: bool,
    /// Only figure 8 (touch, end and ticket sign-in beside the session read), in process
    /// and over HTTP: the release `local-api`.
    pub writes_only: bool,
    /// Only the worst case the limits allow (figure 7): one release function binary.
    pub worst_case_only: bool,
    /// Only the embedded store small and large (figure 9): the release `local-api`.
    pub embedded_store_only: bool,
    /// Only the function binaries: cold starts, steady state, sizes (figures 3 to 5).
    pub functions_only: bool,
    /// Only figure 13: a password sign-in and a sign-up in process, beside their floors.
    pub sign_in_only: bool,
    /// Only the soak (figure 12), this many minutes on the embedded store, then
    /// `soak_dynamodb_minutes` on DynamoDB (the moto of `AWS_ENDPOINT_URL_DYNAMODB`).
    pub soak_minutes: Option<u32>,
    pub soak_dynamodb_minutes: u32,
}

fn usage() -> ! {
    eprintln!(
        "usage: bench --bin-dir DIR [--quick] [--out FILE] [--criterion-dir DIR] [--repo DIR] [--in-process-only | --http-only | --writes-only | --worst-case-only | --embedded-store-only | --functions-only | --sign-in-only | --soak-minutes N [--soak-dynamodb-minutes M]]"
    );
    std::process::exit(2)
}

pub fn parse() -> Args {
    let mut args = Args {
        quick: false,
        bin_dir: PathBuf::new(),
        out: None,
        criterion_dir: None,
        repo: Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        in_process_only: false,
        http_only: false,
        writes_only: false,
        worst_case_only: false,
        embedded_store_only: false,
        functions_only: false,
        sign_in_only: false,
        soak_minutes: None,
        soak_dynamodb_minutes: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().map(PathBuf::from).unwrap_or_else(|| usage());
        match arg.as_str() {
            "--quick" => args.quick = true,
            "--bin-dir" => args.bin_dir = value(),
            "--out" => args.out = Some(value()),
            "--criterion-dir" => args.criterion_dir = Some(value()),
            "--repo" => args.repo = value(),
            "--in-process-only" => args.in_process_only = true,
            "--http-only" => args.http_only = true,
            "--writes-only" => args.writes_only = true,
            "--worst-case-only" => args.worst_case_only = true,
            "--embedded-store-only" => args.embedded_store_only = true,
            "--functions-only" => args.functions_only = true,
            "--sign-in-only" => args.sign_in_only = true,
            "--soak-minutes" => args.soak_minutes = value().to_str().and_then(|v| v.parse().ok()),
            "--soak-dynamodb-minutes" => {
                args.soak_dynamodb_minutes =
                    value().to_str().and_then(|v| v.parse().ok()).unwrap_or(0)
            }
            _ => usage(),
        }
    }
    if args.bin_dir.as_os_str().is_empty() {
        usage()
    }
    args
}
