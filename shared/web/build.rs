//! Bakes the git sha and a build id into the binary for `GET /version`.
use std::process::Command;

fn main() {
    let sha = std::env::var("FIREWATCH_GIT_SHA").ok().or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    });
    let build_id = std::env::var("FIREWATCH_BUILD_ID").unwrap_or_else(|_| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        format!("local-{secs}")
    });
    println!(
        "cargo:rustc-env=FIREWATCH_GIT_SHA={}",
        sha.unwrap_or_else(|| "unknown".into())
    );
    println!("cargo:rustc-env=FIREWATCH_BUILD_ID={build_id}");
    println!("cargo:rerun-if-env-changed=FIREWATCH_GIT_SHA");
    println!("cargo:rerun-if-env-changed=FIREWATCH_BUILD_ID");
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/refs/heads");
}
