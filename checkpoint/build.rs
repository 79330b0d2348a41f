//! Records the git commit the binaries are built from (`fer_checkpoint::cli::COMMIT`, shown
//! by `--version` and `env`). Outside a git checkout (a source tarball) it is "unknown".
//! Re-runs when HEAD moves (a commit, a checkout), so the commit is never stale; uncommitted
//! changes are not tracked (that would rebuild on every edit).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "--short=10", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=FER_GIT_COMMIT={commit}");
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
    }
    if let (Some(common), Some(r)) =
        (git(&["rev-parse", "--git-common-dir"]), git(&["symbolic-ref", "-q", "HEAD"]))
    {
        let common = std::fs::canonicalize(&common).unwrap_or_else(|_| common.into());
        println!("cargo:rerun-if-changed={}", common.join(&r).display());
        println!("cargo:rerun-if-changed={}", common.join("packed-refs").display());
    }
    println!("cargo:rerun-if-changed=build.rs");
}
