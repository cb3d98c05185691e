//! The machine a run was taken on: CPU model, cores, memory, kernel, rustc, date.

use std::process::Command;

fn command(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn describe() -> Vec<(&'static str, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| format!("{:.1} GiB", kb / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "unknown".into());
    let kernel = command("uname", &["-sr"]).unwrap_or_else(|| "unknown".into());
    let rustc = command("rustc", &["--version"]).unwrap_or_else(|| "unknown".into());
    let date = command("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default();
    let commit = command("git", &["rev-parse", "--short", "HEAD"]).unwrap_or_default();
    vec![
        ("CPU", cpu),
        ("cores", cores),
        ("memory", memory),
        ("kernel", kernel),
        ("rustc", rustc),
        ("date", date),
        ("commit", commit),
    ]
}
