//! `--nproc N`: a data-parallel run on this machine, one process per rank, started as
//! `torchrun --standalone --nproc-per-node N` would start them: the same command line without
//! `--nproc`, with `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `LOCAL_WORLD_SIZE`, `MASTER_ADDR`
//! and `MASTER_PORT` set (a free local port). Rank 0 draws the progress and writes the run
//! directory. When a rank ends with an error or is killed, the others are stopped and the
//! command fails with one sentence naming the rank: no rank is left waiting for a dead peer.

use std::ffi::OsString;
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The command line without `--nproc N` / `--nproc=N`.
fn without_nproc(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut skip_next = false;
    for a in args {
        if skip_next {
            skip_next = false;
            continue;
        }
        match a.to_str() {
            Some("--nproc") => skip_next = true,
            Some(s) if s.starts_with("--nproc=") => {}
            _ => out.push(a),
        }
    }
    out
}

/// A port nobody listens on now (rank 0's rendezvous binds it a moment later).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))
        .context("finding a free local port for the ranks' rendezvous")?;
    Ok(l.local_addr()?.port())
}

/// Starts `n` ranks of this very command and waits for them.
pub fn spawn(n: usize) -> Result<()> {
    if std::env::var_os("RANK").is_some() || std::env::var_os("WORLD_SIZE").is_some() {
        bail!("--nproc inside a launched rank (RANK or WORLD_SIZE is set): give one or the other");
    }
    let exe = std::env::current_exe().context("finding this program to start the ranks")?;
    let args = without_nproc(std::env::args_os().skip(1));
    let port = free_port()?.to_string();
    let mut children: Vec<Child> = Vec::with_capacity(n);
    for rank in 0..n {
        let child = Command::new(&exe)
            .args(&args)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("WORLD_SIZE", n.to_string())
            .env("LOCAL_WORLD_SIZE", n.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", &port)
            .spawn();
        match child {
            Ok(c) => children.push(c),
            Err(e) => {
                stop(&mut children);
                return Err(e).with_context(|| format!("starting rank {rank} of {n}"));
            }
        }
    }
    let mut running: Vec<bool> = vec![true; n];
    while running.iter().any(|&r| r) {
        for rank in 0..n {
            if !running[rank] {
                continue;
            }
            let status =
                children[rank].try_wait().with_context(|| format!("waiting for rank {rank}"))?;
            let Some(status) = status else { continue };
            running[rank] = false;
            if !status.success() {
                let others = running.iter().filter(|&&r| r).count();
                stop(&mut children);
                bail!(
                    "rank {rank} of {n} ended ({status}); the other {others} running rank(s) were \
                     stopped (rank {rank}'s own message, if any, is above)"
                );
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Kills and reaps every rank still running.
fn stop(children: &mut [Child]) {
    for c in children.iter_mut() {
        if matches!(c.try_wait(), Ok(None)) {
            let _ = c.kill();
        }
        let _ = c.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nproc_is_taken_out_of_the_command_line_in_both_spellings() {
        let a = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        let got = without_nproc(a(&["run", "--nproc", "2", "--config", "c.toml"]).into_iter());
        assert_eq!(got, a(&["run", "--config", "c.toml"]));
        let got = without_nproc(a(&["run", "--config", "c.toml", "--nproc=4"]).into_iter());
        assert_eq!(got, a(&["run", "--config", "c.toml"]));
    }
}
