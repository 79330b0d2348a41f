//! Data-parallel training on the CPU through c10d's Gloo backend (issue 20), with real
//! processes: this test binary starts copies of itself as ranks, and the `fer-train` binary
//! is run with `--nproc` and as torchrun would start it.
//!
//! - The Reducer's averaged gradients equal one process's gradient of the whole batch (a model
//!   without BatchNorm, so the two are the same function: float tolerance only).
//! - `fer-train run --nproc 2` with batch 8 trains the model `fer-train run` trains with batch
//!   16 in two micro-batches (same samples per step, same augmentation, BatchNorm over the same
//!   8 samples), to float tolerance; and close to the plain batch of 16, whose BatchNorm
//!   normalises all 16 together.
//! - A killed rank ends the whole run with a sentence, under `--nproc` and under an external
//!   launcher, within seconds.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fer_train::dist::{DistEnv, GradSync, Group};
use tch::{Device, Kind, Tensor};

mod cli_support;
use cli_support::{BIN, s, synth};

/// Set in the copies of this binary that act as ranks.
const CHILD: &str = "FER_DDP_TEST_CHILD";

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap().local_addr().unwrap().port()
}

/// A batch of 8 inputs and targets, and the weights of a 2-layer MLP (no BatchNorm), all
/// drawn from a fixed seed.
fn problem() -> (Tensor, Tensor, Vec<Tensor>) {
    tch::manual_seed(11);
    let x = Tensor::randn([8, 5], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(3, [8], (Kind::Int64, Device::Cpu));
    let w1 = Tensor::randn([6, 5], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let w2 = Tensor::randn([3, 6], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    (x, y, vec![w1, w2])
}

fn loss(x: &Tensor, y: &Tensor, w: &[Tensor]) -> Tensor {
    x.matmul(&w[0].tr()).relu().matmul(&w[1].tr()).cross_entropy_for_logits(y)
}

/// Gradients of the whole batch in one process.
fn reference() -> Vec<Vec<f32>> {
    let (x, y, w) = problem();
    loss(&x, &y, &w).backward();
    w.iter().map(|t| Vec::<f32>::try_from(t.grad().flatten(0, -1)).unwrap()).collect()
}

/// Runs as one rank: the rank's half of the batch (every other sample), the Reducer, and the
/// gradients written to `<out>/rank<r>.json`; also checks a sum all-reduce and a broadcast.
fn rank_main(out: &Path) {
    let env = DistEnv::from_env().unwrap().expect("launched as a rank");
    let group = Group::init(&env, Device::Cpu).unwrap();
    let (x, y, w) = problem();
    let sync = GradSync::new(&group, &w).unwrap();
    let mine =
        Tensor::arange_start_step(env.rank as i64, 8, env.world as i64, (Kind::Int64, Device::Cpu));
    for _ in 0..2 {
        // Twice: the Reducer is re-armed for every backward pass.
        for t in &w {
            let mut g = t.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        sync.prepare().unwrap();
        loss(&x.index_select(0, &mine), &y.index_select(0, &mine), &w).backward();
    }
    let grads: Vec<Vec<f32>> =
        w.iter().map(|t| Vec::<f32>::try_from(t.grad().flatten(0, -1)).unwrap()).collect();
    let sum = Tensor::from_slice(&[env.rank as f64 + 1.0]);
    group.allreduce_sum(std::slice::from_ref(&sum)).unwrap();
    let shared = Tensor::from_slice(&[env.rank as f32 * 10.0 + 3.0]);
    group.broadcast(std::slice::from_ref(&shared), 0).unwrap();
    let json = serde_json::json!({
        "grads": grads,
        "sum": sum.double_value(&[0]),
        "broadcast": shared.double_value(&[0]),
    });
    std::fs::write(out.join(format!("rank{}.json", env.rank)), json.to_string()).unwrap();
    group.barrier().unwrap();
    drop(sync);
    group.close();
}

#[test]
fn the_reducer_averages_gradients_to_the_whole_batch_gradient() {
    if let Ok(out) = std::env::var(CHILD) {
        rank_main(Path::new(&out));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let exe = std::env::current_exe().unwrap();
    let spawned: Vec<_> = (0..2)
        .map(|rank| {
            Command::new(&exe)
                .args(["--exact", "the_reducer_averages_gradients_to_the_whole_batch_gradient"])
                .env(CHILD, tmp.path())
                .env("RANK", rank.to_string())
                .env("WORLD_SIZE", "2")
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", &port)
                .env("FER_DIST_TIMEOUT_S", "60")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in spawned {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let want = reference();
    for rank in 0..2 {
        let text = std::fs::read_to_string(tmp.path().join(format!("rank{rank}.json"))).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let got: Vec<Vec<f32>> = serde_json::from_value(v["grads"].clone()).unwrap();
        for (g, w) in got.iter().zip(&want) {
            for (a, b) in g.iter().zip(w) {
                // Float32 sums in another order: a few ulps of gradients of order 1.
                assert!((a - b).abs() <= 1e-5, "rank {rank}: {a} vs {b}");
            }
        }
        assert_eq!(v["sum"].as_f64(), Some(3.0), "1 + 2 summed over the ranks");
        assert_eq!(v["broadcast"].as_f64(), Some(3.0), "rank 0's value everywhere");
    }
}

/// `fer-train -q run` in `dir` with `extra` arguments; the child (not waited for).
fn start(dir: &Path, args: &[&str], envs: &[(&str, String)]) -> std::process::Child {
    let mut c = Command::new(BIN);
    c.arg("-q").args(args).current_dir(dir).stdout(Stdio::piped()).stderr(Stdio::piped());
    c.env("FER_DIST_TIMEOUT_S", "60");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.spawn().unwrap()
}

/// The run's trainable weights, by name.
fn weights(run: &Path) -> Weights {
    let ck = fer_checkpoint::Checkpoint::load(run.join("last.safetensors")).unwrap();
    ck.tensors
        .iter()
        .filter(|(k, _)| !k.contains("running_") && !k.contains("num_batches"))
        .map(|(k, t)| (k.clone(), t.to_f32().into_owned()))
        .collect()
}

type Weights = Vec<(String, Vec<f32>)>;

/// The weights the run in `run` started from: its resolved config's model and seed, built as
/// the trainer builds it.
fn initial_weights(run: &Path) -> Weights {
    let cfg = fer_train::config::ExperimentConfig::load(&run.join("config.resolved.toml")).unwrap();
    let graph = fer_models_spec::spec(&cfg.model.net).unwrap();
    let arch = Some(cfg.model.net.arch);
    let m =
        fer_train::TchModel::with_init(graph, arch, cfg.model.weight_init, Device::Cpu, cfg.seed)
            .unwrap();
    m.to_tensor_map()
        .unwrap()
        .iter()
        .filter(|(k, _)| !k.contains("running_") && !k.contains("num_batches"))
        .map(|(k, t)| (k.clone(), t.to_f32().into_owned()))
        .collect()
}

/// `‖a − b‖ / ‖b − init‖`: how far `a` is from `b`, against how far training moved `b`.
fn relative_distance(a: &Weights, b: &Weights, init: &Weights) -> f64 {
    let (mut d, mut n) = (0f64, 0f64);
    for (((ka, va), (kb, vb)), (ki, vi)) in a.iter().zip(b).zip(init) {
        assert!(ka == kb && kb == ki);
        for ((x, y), z) in va.iter().zip(vb).zip(vi) {
            d += f64::from(x - y).powi(2);
            n += f64::from(y - z).powi(2);
        }
    }
    (d / n).sqrt()
}

fn finish(c: std::process::Child) -> std::process::Output {
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

/// SGD without dropout (so that no random draw depends on the batch layout), 2 epochs.
fn same_run_args(config: &Path, batch: usize, micro: usize, name: &str) -> Vec<String> {
    [
        "run",
        "--config",
        s(config),
        "--set",
        &format!("optim.batch_size={batch}"),
        "--set",
        &format!("optim.micro_batches={micro}"),
        "--set",
        "optim.optimizer=\"sgd\"",
        "--set",
        "optim.lr=0.05",
        "--set",
        "model.dropout=0.0",
        "--set",
        &format!("name=\"{name}\""),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

#[test]
fn two_ranks_with_batch_8_train_the_model_one_process_trains_with_batch_16() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    synth(t);
    let cfg = cli_support::config(t, "ddp", &cli_support::ce_stage(2));
    let arg = |batch, micro, name| same_run_args(&cfg, batch, micro, name);
    let strs = |v: &[String]| v.iter().map(String::clone).collect::<Vec<_>>();
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        finish(start(t, &refs, &[]))
    };
    let mut two = strs(&arg(8, 1, "two"));
    two.extend(["--nproc".to_string(), "2".to_string()]);
    run(two);
    run(arg(16, 2, "micro"));
    run(arg(16, 1, "one"));
    run(arg(8, 1, "half"));
    let runs = t.join("runs");
    let w = |name: &str| weights(&runs.join(name));
    let (two, micro, one, half) = (w("two"), w("micro"), w("one"), w("half"));
    // Rank 0's record counts the images of both ranks: the epoch of the single process.
    let rec = |name: &str| {
        fer_train::trainer::rundir::RunDir { path: runs.join(name) }.read_metrics().unwrap()
    };
    let (r2, r1) = (rec("two"), rec("one"));
    assert_eq!(r2.len(), 2);
    assert_eq!(
        r2.iter().map(|r| r.images).collect::<Vec<_>>(),
        r1.iter().map(|r| r.images).collect::<Vec<_>>()
    );
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("two/env.json")).unwrap()).unwrap();
    assert_eq!(env["data_parallel"], "2 ranks, gloo");
    let init = initial_weights(&runs.join("one"));
    let exact = relative_distance(&two, &micro, &init);
    let bn = relative_distance(&two, &one, &init);
    let other = relative_distance(&half, &one, &init);
    eprintln!(
        "two ranks vs micro-batches {exact:.2e}, vs batch 16 {bn:.2e}; batch 8 alone vs 16 {other:.2e}"
    );
    // Distances relative to how far training moved the weights. Two ranks and two
    // micro-batches compute the same function: what remains is float32 summation order
    // (gradients averaged by Gloo instead of accumulated), grown over 10 SGD steps.
    assert!(exact < 1e-5, "two ranks vs two micro-batches: {exact}");
    // One batch of 16 differs by BatchNorm only (statistics over 16 samples, not 8).
    assert!(bn < 0.5 * other, "two ranks {bn} vs batch 8 alone {other}");
}

/// Waits until `<run>` holds a finished epoch: a line of `metrics.jsonl` and the training
/// state to resume from (training is under way on every rank).
fn wait_for_first_epoch(run: &Path, deadline: Duration) {
    let start = Instant::now();
    let done = || {
        std::fs::read_to_string(run.join("metrics.jsonl")).is_ok_and(|t| t.lines().count() > 0)
            && run.join("state.safetensors").exists()
    };
    while !done() {
        assert!(start.elapsed() < deadline, "no epoch finished within {deadline:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The processes whose parent is `parent` and whose environment holds `RANK=<rank>`.
fn rank_pids(parent: Option<u32>, rank: usize) -> Vec<i32> {
    let want = format!("RANK={rank}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let has = env.split(|&b| b == 0).any(|v| v == want.as_bytes());
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Field 4 (after the parenthesised name) is the parent's pid.
            let ppid = stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1));
            has && parent.is_none_or(|p| ppid == Some(&p.to_string()))
        })
        .collect()
}

fn kill(pid: i32) {
    // SAFETY: sending a signal to a child process of this test.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
}

/// Waits at most `limit` for `c` to end; the test fails (and kills it) on a hang.
fn ended_within(mut c: std::process::Child, limit: Duration) -> (std::process::ExitStatus, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = c.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            return (status, err);
        }
        if start.elapsed() > limit {
            let _ = c.kill();
            panic!("still running {limit:?} after a rank was killed: a hang");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn long_run(t: &Path, name: &str, epochs: usize) -> Vec<String> {
    let cfg = cli_support::config(t, name, &cli_support::ce_stage(epochs));
    vec![
        "run".into(),
        "--config".into(),
        s(&cfg).into(),
        "--set".into(),
        "optim.batch_size=8".into(),
    ]
}

#[test]
fn a_killed_rank_ends_a_nproc_run_with_a_sentence_and_the_run_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    synth(t);
    let mut args = long_run(t, "killed", 6);
    args.extend(["--nproc".into(), "2".into()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let launcher = start(t, &refs, &[]);
    wait_for_first_epoch(&t.join("runs/killed"), Duration::from_secs(120));
    let pids = rank_pids(Some(launcher.id()), 1);
    assert_eq!(pids.len(), 1, "rank 1 among the launcher's children");
    let zero = rank_pids(Some(launcher.id()), 0);
    assert_eq!(zero.len(), 1, "rank 0 among the launcher's children");
    kill(pids[0]);
    let (status, err) = ended_within(launcher, Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("error: rank 1 of 2 ended (signal: 9"), "{err}");
    assert!(err.contains("were stopped"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Rank 0 was stopped and reaped, not left behind.
    assert!(!Path::new(&format!("/proc/{}", zero[0])).exists(), "rank 0 still running");

    // Both ranks continue from the last saved epoch to the end.
    let run = t.join("runs/killed");
    let saved = fer_checkpoint::read_safetensors(run.join("state.safetensors")).unwrap().1["epoch"]
        .parse::<usize>()
        .unwrap();
    let o = finish(start(t, &["resume", s(&run), "--nproc", "2"], &[]));
    assert!(String::from_utf8_lossy(&o.stdout).contains("run directory"));
    let records = fer_train::trainer::rundir::RunDir { path: run.clone() }.read_metrics().unwrap();
    assert_eq!(records.iter().map(|r| r.epoch).collect::<Vec<_>>(), (1..=6).collect::<Vec<_>>());
    assert!(saved >= 1 && run.join("outcome.json").exists());
}

#[test]
fn a_killed_rank_ends_its_peer_under_an_external_launcher() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    synth(t);
    let args = long_run(t, "external", 500);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let port = free_port().to_string();
    let ranks: Vec<_> = (0..2)
        .map(|rank| {
            let env = [
                ("RANK", rank.to_string()),
                ("WORLD_SIZE", "2".to_string()),
                ("MASTER_ADDR", "127.0.0.1".to_string()),
                ("MASTER_PORT", port.clone()),
            ];
            start(t, &refs, &env)
        })
        .collect();
    wait_for_first_epoch(&t.join("runs/external"), Duration::from_secs(120));
    let mut ranks = ranks.into_iter();
    let (zero, mut one) = (ranks.next().unwrap(), ranks.next().unwrap());
    one.kill().unwrap();
    let _ = one.wait();
    // Gloo sees the closed connection at rank 0's next collective.
    let (status, err) = ended_within(zero, Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("error (rank 0 of 2): ") && err.contains("data-parallel training"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// NCCL on one GPU: a group of one rank (all a one-GPU machine can hold: NCCL refuses two
/// ranks on one device), the Reducer over CUDA parameters, a sum and a broadcast.
#[test]
#[ignore = "needs a CUDA device"]
fn a_one_rank_nccl_group_reduces_cuda_gradients() {
    fer_train::device::load_cuda_backend();
    let env = DistEnv {
        rank: 0,
        world: 1,
        local_rank: 0,
        addr: "127.0.0.1".into(),
        port: free_port(),
        timeout: Duration::from_secs(60),
        serve_store: true,
    };
    let cuda = Device::Cuda(0);
    let group = Group::init(&env, cuda).unwrap();
    assert_eq!(group.backend(), "nccl");
    let (x, y, w) = problem();
    let w: Vec<Tensor> =
        w.iter().map(|t| t.detach().to_device(cuda).set_requires_grad(true)).collect();
    let sync = GradSync::new(&group, &w).unwrap();
    sync.prepare().unwrap();
    loss(&x.to_device(cuda), &y.to_device(cuda), &w).backward();
    for (g, want) in w.iter().zip(reference()) {
        let got = Vec::<f32>::try_from(g.grad().flatten(0, -1).to_device(Device::Cpu)).unwrap();
        for (a, b) in got.iter().zip(&want) {
            // TF32-free float32 matmuls on the GPU against the CPU: rounding only.
            assert!((a - b).abs() <= 1e-4, "{a} vs {b}");
        }
    }
    let t = Tensor::from_slice(&[2.5f32]).to_device(cuda);
    group.allreduce_sum(std::slice::from_ref(&t)).unwrap();
    group.broadcast(std::slice::from_ref(&t), 0).unwrap();
    assert_eq!(t.double_value(&[0]), 2.5);
    group.barrier().unwrap();
    group.close();
}

/// torchrun itself (the venv's torch) launches the binary: two Gloo ranks meet at the store
/// its agent serves, and train the model `--nproc 2` trains (bit for bit, with the one
/// intra-op thread per rank torchrun sets).
#[test]
fn torchrun_launches_two_ranks_that_train_the_nproc_run() {
    let Some(py) = fer_test_support::live_python("torchrun_launches_two_ranks") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    synth(t);
    let cfg = cli_support::config(t, "launched", &cli_support::ce_stage(2));
    let args = same_run_args(&cfg, 8, 1, "torchrun");
    let o = Command::new(py)
        .args([
            "-m",
            "torch.distributed.run",
            "--no-python",
            "--standalone",
            "--nproc-per-node",
            "2",
        ])
        .arg(BIN)
        .arg("-q")
        .args(&args)
        .current_dir(t)
        .env("FER_DIST_TIMEOUT_S", "60")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut nproc = same_run_args(&cfg, 8, 1, "nproc");
    nproc.extend(["--nproc".into(), "2".into()]);
    let refs: Vec<&str> = nproc.iter().map(String::as_str).collect();
    // torchrun gives each rank one intra-op thread unless told otherwise; so does this run.
    finish(start(t, &refs, &[("OMP_NUM_THREADS", "1".into())]));
    let runs = t.join("runs");
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("torchrun/env.json")).unwrap())
            .unwrap();
    assert_eq!(env["data_parallel"], "2 ranks, gloo");
    let (a, b) = (weights(&runs.join("torchrun")), weights(&runs.join("nproc")));
    let d = relative_distance(&a, &b, &initial_weights(&runs.join("nproc")));
    assert_eq!(d, 0.0, "torchrun's run and --nproc's differ by {d:e}");
}

/// Distillation: each rank runs the teacher on its own part of the batch. Two ranks with a
/// KD + RKD stage train what one process trains in two micro-batches (RKD's pairs are formed
/// within each part in both).
#[test]
fn two_ranks_distill_from_a_teacher_as_one_process_with_two_micro_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    synth(t);
    let teacher = cli_support::config(t, "teacher", &cli_support::ce_stage(1));
    finish(start(t, &["run", "--config", s(&teacher)], &[]));
    let kd = r#"
[[teachers]]
name = "t"
checkpoint = "runs/teacher/best.safetensors"
[[stages]]
name = "hybrid"
epochs = 2
[[stages.loss]]
kind = "cross_entropy"
weight = 0.5
[[stages.loss]]
kind = "kd"
weight = 0.5
temperature = 4.0
[[stages.loss]]
kind = "rkd_distance"
weight = 25.0
"#;
    let cfg = cli_support::config(t, "kd", kd);
    let mut two = same_run_args(&cfg, 8, 1, "kd_two");
    two.extend(["--nproc".into(), "2".into()]);
    let refs: Vec<&str> = two.iter().map(String::as_str).collect();
    finish(start(t, &refs, &[]));
    let micro = same_run_args(&cfg, 16, 2, "kd_micro");
    let refs: Vec<&str> = micro.iter().map(String::as_str).collect();
    finish(start(t, &refs, &[]));
    let runs = t.join("runs");
    let (a, b) = (weights(&runs.join("kd_two")), weights(&runs.join("kd_micro")));
    let d = relative_distance(&a, &b, &initial_weights(&runs.join("kd_micro")));
    // As for cross-entropy alone: the same function, float order aside.
    assert!(d < 1e-5, "two ranks vs two micro-batches with a teacher: {d:e}");
    let rec = fer_train::trainer::rundir::RunDir { path: runs.join("kd_two") }.read_metrics();
    let terms: Vec<String> = rec.unwrap()[0].terms.keys().cloned().collect();
    assert_eq!(terms, ["cross_entropy", "kd", "rkd_distance"]);
}
