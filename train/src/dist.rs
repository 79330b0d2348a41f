//! Data-parallel training through libtorch's distributed runtime (c10d, `csrc/dist.cpp`).
//!
//! One process per device (rank). The ranks meet through a TCP store served by rank 0 at
//! `MASTER_ADDR:MASTER_PORT` (the `torchrun` conventions: `RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
//! or Slurm's `SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID` under `srun` when `MASTER_ADDR`
//! is exported), then talk through Gloo (CPU tensors) or NCCL (CUDA tensors). Gradients are
//! averaged by c10d's `Reducer`, the engine of PyTorch's `DistributedDataParallel`: bucketed and
//! all-reduced while backward still runs. Nothing here is a transport or a scheduler of our own.
//!
//! What the trainer does with it (see `trainer`): every rank reads its shard of each epoch's
//! order ([`fer_data::loader::Shard`]), BatchNorm normalises with per-rank batch statistics
//! (as `DistributedDataParallel` without `SyncBatchNorm`) and rank 0's running statistics are
//! broadcast at the end of every epoch, so that validation and checkpoints agree on all
//! ranks; only rank 0 writes the run directory.

use std::ffi::{CString, c_char, c_void};

use tch::{Device, Tensor};

use crate::error::{Error, Result};
use crate::extras::handles;

unsafe extern "C" {
    fn fer_dist_init(
        addr: *const c_char,
        port: i32,
        rank: i32,
        size: i32,
        serve: i32,
        timeout_ms: i64,
        cuda_factory: *mut c_void,
    ) -> *mut c_void;
    fn fer_dist_free(group: *mut c_void, graceful: i32);
    fn fer_dist_allreduce_sum(group: *mut c_void, ts: *mut *mut c_void, n: i32) -> i32;
    fn fer_dist_broadcast(group: *mut c_void, ts: *mut *mut c_void, n: i32, root: i32) -> i32;
    fn fer_dist_barrier(group: *mut c_void) -> i32;
    fn fer_reducer_new(
        group: *mut c_void,
        params: *mut *mut c_void,
        n: i32,
        bucket_bytes: i64,
        first_bucket_bytes: i64,
    ) -> *mut c_void;
    fn fer_reducer_prepare(reducer: *mut c_void) -> i32;
    fn fer_reducer_free(reducer: *mut c_void);
    fn fer_dist_available() -> i32;
}

/// Gradient bucket size, as `DistributedDataParallel`'s default (`bucket_cap_mb = 25`).
const BUCKET_BYTES: i64 = 25 * 1024 * 1024;
/// The first bucket (the last layers' gradients, ready first), as DDP's default.
const FIRST_BUCKET_BYTES: i64 = 1024 * 1024;
/// How long a rank waits for the others (rendezvous and every collective) unless
/// `FER_DIST_TIMEOUT_S` says otherwise.
const DEFAULT_TIMEOUT_S: u64 = 300;

fn shim_error(what: &str) -> Error {
    Error::Distributed(format!("{what}: {}", crate::extras::last_error_line()))
}

/// Whether this fer-train was built with data-parallel training (Gloo's headers were found).
pub fn available() -> bool {
    // SAFETY: a plain query.
    unsafe { fer_dist_available() == 1 }
}

/// Where this process stands among the ranks of a run, read from the launcher's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistEnv {
    /// This process's rank, 0-based (rank 0 writes the run directory).
    pub rank: usize,
    /// How many processes train together.
    pub world: usize,
    /// The rank among the processes of this machine: the CUDA device it trains on.
    pub local_rank: usize,
    /// Where rank 0 serves the rendezvous.
    pub addr: String,
    /// Its port.
    pub port: u16,
    /// How long to wait for the other ranks.
    pub timeout: std::time::Duration,
    /// Whether rank 0 serves the rendezvous store: not when the launcher's agent already does
    /// (`TORCHELASTIC_USE_AGENT_STORE=True`, set by torchrun).
    pub serve_store: bool,
}

/// The launcher's variables, as a closure so tests can give their own.
type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl DistEnv {
    /// The ranks described by this process's environment, or `None` for a single-process run
    /// (no `WORLD_SIZE`, or 1). See [`DistEnv::from_lookup`].
    pub fn from_env() -> Result<Option<DistEnv>> {
        Self::from_lookup(&|k| std::env::var(k).ok())
    }

    /// `RANK`, `WORLD_SIZE`, `LOCAL_RANK` (default: `RANK`), `MASTER_ADDR`, `MASTER_PORT`
    /// (default 29500), as `torchrun` sets them; under `srun` with `MASTER_ADDR` exported and
    /// no `RANK`, Slurm's `SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID` stand in for them.
    /// `FER_DIST_TIMEOUT_S` bounds every wait (default 300 s). Under torchrun, whose agent
    /// serves the store (`TORCHELASTIC_USE_AGENT_STORE=True`), rank 0 connects to it as the
    /// others do.
    pub fn from_lookup(get: Lookup) -> Result<Option<DistEnv>> {
        let slurm = get("RANK").is_none() && get("MASTER_ADDR").is_some();
        let pick = |torch: &str, slurm_name: &str| {
            get(torch).map(|v| (torch.to_string(), v)).or_else(|| {
                slurm.then(|| get(slurm_name).map(|v| (slurm_name.to_string(), v))).flatten()
            })
        };
        let number = |(name, v): (String, String)| -> Result<usize> {
            v.trim().parse().map_err(|_| {
                Error::Distributed(format!("{name} = {v:?} is not a non-negative integer"))
            })
        };
        let world = match pick("WORLD_SIZE", "SLURM_NTASKS") {
            None => return Ok(None),
            Some(w) => number(w)?,
        };
        if world <= 1 {
            return Ok(None);
        }
        let rank = number(pick("RANK", "SLURM_PROCID").ok_or_else(|| {
            Error::Distributed(format!("WORLD_SIZE = {world} but RANK is not set"))
        })?)?;
        if rank >= world {
            return Err(Error::Distributed(format!(
                "RANK = {rank} is not below WORLD_SIZE = {world}"
            )));
        }
        let local_rank = match pick("LOCAL_RANK", "SLURM_LOCALID") {
            Some(l) => number(l)?,
            None => rank,
        };
        let addr = get("MASTER_ADDR").ok_or_else(|| {
            Error::Distributed(format!(
                "WORLD_SIZE = {world} but MASTER_ADDR is not set (the host of rank 0)"
            ))
        })?;
        let port = match get("MASTER_PORT") {
            None => 29500,
            Some(p) => p.trim().parse().map_err(|_| {
                Error::Distributed(format!("MASTER_PORT = {p:?} is not a port number"))
            })?,
        };
        let timeout_s = match get("FER_DIST_TIMEOUT_S") {
            None => DEFAULT_TIMEOUT_S,
            Some(t) => t.trim().parse().ok().filter(|&t| t > 0).ok_or_else(|| {
                Error::Distributed(format!(
                    "FER_DIST_TIMEOUT_S = {t:?} is not a positive number of seconds"
                ))
            })?,
        };
        let timeout = std::time::Duration::from_secs(timeout_s);
        let serve_store = get("TORCHELASTIC_USE_AGENT_STORE").is_none_or(|v| v != "True");
        Ok(Some(DistEnv { rank, world, local_rank, addr, port, timeout, serve_store }))
    }
}

/// The ranks' process group (c10d `ProcessGroup` with a Gloo backend, and NCCL for CUDA
/// tensors when the CUDA shim has it).
#[derive(Debug)]
pub struct Group {
    handle: *mut c_void,
    env: DistEnv,
    backend: &'static str,
    /// Set by [`Group::close`]: the run finished, so the group is shut down, not aborted.
    graceful: bool,
}

impl Group {
    /// Meets the other ranks (blocks until all arrived or the timeout passed). On a CUDA
    /// `device` the group's CUDA backend is NCCL when built, else Gloo.
    pub fn init(env: &DistEnv, device: Device) -> Result<Group> {
        if !available() {
            return Err(shim_error("data-parallel training"));
        }
        let nccl = if device.is_cuda() { crate::cuda_graph::nccl_factory() } else { None };
        let backend = match (device, nccl.is_some()) {
            (Device::Cpu, _) => "gloo",
            (_, true) => "nccl",
            (_, false) => "gloo (this build has no NCCL backend)",
        };
        let addr = CString::new(env.addr.as_str())
            .map_err(|_| Error::Distributed("MASTER_ADDR contains a NUL byte".into()))?;
        let ms = env.timeout.as_millis().min(i64::MAX as u128) as i64;
        let factory = nccl.unwrap_or(std::ptr::null_mut());
        // SAFETY: valid C string, plain integers, and a factory symbol of the CUDA shim or null.
        let handle = unsafe {
            fer_dist_init(
                addr.as_ptr(),
                i32::from(env.port),
                env.rank as i32,
                env.world as i32,
                i32::from(env.serve_store),
                ms,
                factory,
            )
        };
        if handle.is_null() {
            return Err(shim_error(&format!(
                "rank {} of {} could not join the others at {}:{}",
                env.rank, env.world, env.addr, env.port
            )));
        }
        Ok(Group { handle, env: env.clone(), backend, graceful: false })
    }

    /// Ends the group after a finished run (NCCL's communicators are destroyed, as
    /// `torch.distributed.destroy_process_group` does). Dropping a group without it aborts
    /// instead, which waits for no other rank.
    pub fn close(mut self) {
        self.graceful = true;
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.env.rank
    }

    /// The number of ranks.
    pub fn world(&self) -> usize {
        self.env.world
    }

    /// The backend that carries the training device's tensors.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Sums `ts` elementwise over all ranks, in place.
    pub fn allreduce_sum(&self, ts: &[Tensor]) -> Result<()> {
        let mut h = handles(ts);
        // SAFETY: a live group and live tensor handles.
        let rc = unsafe { fer_dist_allreduce_sum(self.handle, h.as_mut_ptr(), h.len() as i32) };
        self.check(rc, "summing over the ranks")
    }

    /// Copies rank `root`'s `ts` into every rank's, in place.
    pub fn broadcast(&self, ts: &[Tensor], root: usize) -> Result<()> {
        let mut h = handles(ts);
        // SAFETY: as above.
        let rc =
            unsafe { fer_dist_broadcast(self.handle, h.as_mut_ptr(), h.len() as i32, root as i32) };
        self.check(rc, "broadcasting from rank 0")
    }

    /// Waits for every rank.
    pub fn barrier(&self) -> Result<()> {
        // SAFETY: a live group.
        let rc = unsafe { fer_dist_barrier(self.handle) };
        self.check(rc, "waiting for the other ranks")
    }

    fn check(&self, rc: i32, what: &str) -> Result<()> {
        if rc == 0 {
            return Ok(());
        }
        Err(shim_error(&format!("rank {} of {}: {what}", self.env.rank, self.env.world)))
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: the handle from fer_dist_init, freed once.
        unsafe { fer_dist_free(self.handle, i32::from(self.graceful)) }
    }
}

/// Gradient averaging over the ranks while backward runs (c10d's `Reducer`). Arm it with
/// [`GradSync::prepare`] before every backward pass; when backward returns, every parameter's
/// gradient is the mean over the ranks.
#[derive(Debug)]
pub struct GradSync {
    handle: *mut c_void,
}

impl GradSync {
    /// A reducer over `params` (the trainable tensors, in the model's order).
    pub fn new(group: &Group, params: &[Tensor]) -> Result<GradSync> {
        let mut h = handles(params);
        // SAFETY: a live group and live parameter handles; the reducer keeps its own
        // references to the tensors.
        let handle = unsafe {
            fer_reducer_new(
                group.handle,
                h.as_mut_ptr(),
                h.len() as i32,
                BUCKET_BYTES,
                FIRST_BUCKET_BYTES,
            )
        };
        if handle.is_null() {
            return Err(shim_error("setting up the gradient all-reduce"));
        }
        Ok(GradSync { handle })
    }

    /// Arms the reducer for the next backward pass.
    pub fn prepare(&self) -> Result<()> {
        // SAFETY: a live reducer.
        let rc = unsafe { fer_reducer_prepare(self.handle) };
        if rc == 0 { Ok(()) } else { Err(shim_error("arming the gradient all-reduce")) }
    }
}

impl Drop for GradSync {
    fn drop(&mut self) {
        // SAFETY: the handle from fer_reducer_new, freed once.
        unsafe { fer_reducer_free(self.handle) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<Option<DistEnv>> {
        let map: std::collections::HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        DistEnv::from_lookup(&|k| map.get(k).cloned())
    }

    #[test]
    fn no_world_size_or_one_rank_is_a_single_process_run() {
        assert_eq!(env(&[]).unwrap(), None);
        assert_eq!(env(&[("WORLD_SIZE", "1"), ("RANK", "0")]).unwrap(), None);
        // An sbatch job without MASTER_ADDR is not a data-parallel run, whatever Slurm sets.
        assert_eq!(env(&[("SLURM_NTASKS", "4"), ("SLURM_PROCID", "2")]).unwrap(), None);
    }

    #[test]
    fn torchrun_variables_are_read() {
        let e = env(&[
            ("WORLD_SIZE", "4"),
            ("RANK", "3"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "node7"),
            ("MASTER_PORT", "1234"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (e.rank, e.world, e.local_rank, e.addr.as_str(), e.port),
            (3, 4, 1, "node7", 1234)
        );
        assert_eq!(e.timeout.as_secs(), DEFAULT_TIMEOUT_S);
        assert!(e.serve_store);
        let agent = [("WORLD_SIZE", "2"), ("RANK", "0"), ("MASTER_ADDR", "h")];
        let agent = [&agent[..], &[("TORCHELASTIC_USE_AGENT_STORE", "True")]].concat();
        assert!(!env(&agent).unwrap().unwrap().serve_store);
    }

    #[test]
    fn srun_variables_stand_in_when_master_addr_is_exported() {
        let e = env(&[
            ("SLURM_NTASKS", "8"),
            ("SLURM_PROCID", "5"),
            ("SLURM_LOCALID", "1"),
            ("MASTER_ADDR", "n1"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((e.rank, e.world, e.local_rank, e.port), (5, 8, 1, 29500));
    }

    #[test]
    fn bad_values_are_named() {
        let err = |vars: &[(&str, &str)]| env(vars).unwrap_err().to_string();
        let base = [("WORLD_SIZE", "2"), ("MASTER_ADDR", "h")];
        assert!(err(&base).contains("RANK is not set"));
        assert!(err(&[base[0], base[1], ("RANK", "2")]).contains("RANK = 2 is not below"));
        assert!(err(&[base[0], base[1], ("RANK", "x")]).contains("RANK = \"x\""));
        assert!(err(&[base[0], ("RANK", "0")]).contains("MASTER_ADDR is not set"));
        let port = [base[0], base[1], ("RANK", "0"), ("MASTER_PORT", "99999")];
        assert!(err(&port).contains("MASTER_PORT"));
        let timeout = [base[0], base[1], ("RANK", "0"), ("FER_DIST_TIMEOUT_S", "0")];
        assert!(err(&timeout).contains("FER_DIST_TIMEOUT_S"));
    }
}
