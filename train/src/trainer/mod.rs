//! The trainer: a config becomes a run directory with `metrics.jsonl`, checkpoints and the
//! resolved config. Stages run in order, each with a fresh optimizer and schedule; frozen
//! teachers feed the distillation terms.

pub mod bench;
pub mod data;
mod ema;
mod epoch;
mod finite;
mod graphed;
pub mod mix;
pub mod optim;
mod parallel;
pub mod pixels;
pub mod resident;
pub mod rundir;
pub mod seeds;
pub mod teacher;
mod teacher_cache;
mod test_split;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fer_checkpoint::{CheckOptions, Checkpoint, TensorMap};
use fer_metrics::run::BestEpoch;
use fer_models_spec::{ModelMeta, Preprocess};
use tch::{Device, Tensor};

use self::data::{RunData, inverse_frequency, open_run_data, save_plan};
use self::ema::Ema;
use self::epoch::{EpochCtx, ValSource, evaluate, precise_bn, train_epoch};
use self::graphed::StepRunner;
use self::mix::Mixer;
use self::optim::Optimizer;
use self::parallel::Parallel;
use self::resident::{ResidentTrain, ResidentVal};
use self::rundir::{Environment, EpochRecord, RunDir};
use self::teacher::Teacher;
use crate::config::{ClassBalance, DeviceData, ExperimentConfig, Precision};
use crate::device::{DeviceChoice, load_cuda_backend, resolve};
use crate::error::{Error, Result};
use crate::lower::TchModel;

/// Receives progress; the binary draws bars, tests stay silent.
pub trait Observer {
    /// An epoch starts.
    fn epoch_start(&self, _epoch: usize, _total: usize, _stage: &str, _batches: usize) {}
    /// `done` of `total` batches are through; `loss` is read back every few batches.
    fn batch(&self, _done: usize, _total: usize, _loss: Option<f64>) {}
    /// An epoch ended; `best` when it improved the selection metric.
    fn epoch_end(&self, _rec: &EpochRecord, _best: bool) {}
    /// A line of information.
    fn message(&self, _msg: &str) {}
}

/// An observer that shows nothing.
pub struct Silent;
impl Observer for Silent {}

/// Options of a run that are not part of the experiment.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Replace a finished or interrupted run in the same directory.
    pub overwrite: bool,
    /// Overrides the config's `device`.
    pub device: Option<DeviceChoice>,
    /// Overrides the run directory (multi-seed runs use `<run_dir>/seed<k>`).
    pub run_dir: Option<PathBuf>,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run directory.
    pub dir: PathBuf,
    /// Every epoch's record.
    pub records: Vec<EpochRecord>,
    /// Epoch of the best checkpoint (1-based).
    pub best_epoch: usize,
    /// Whether early stopping ended a stage before its last epoch.
    pub stopped_early: bool,
}

/// libtorch's generator seed for one epoch: dropout and stochastic depth draw the same masks
/// when an epoch is run again (by `resume`). Not [`fer_data::augment::splitmix`] but a shortened
/// form of it (one multiply) over `seed ^ epoch·φ`, kept as it is so that runs started by
/// earlier binaries resume with the masks they began with.
fn epoch_seed(seed: u64, epoch: usize) -> i64 {
    let mut x = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (x ^ (x >> 31)) as i64 & i64::MAX
}

/// The model description stored in checkpoints (and from there in the ONNX file).
fn model_meta(cfg: &ExperimentConfig, data: &RunData, preprocess: &Preprocess) -> ModelMeta {
    let mut arch = cfg.model.net.clone();
    arch.input_size = Some(arch.input_size());
    ModelMeta {
        arch,
        labels: data.classes.iter().map(|c| c.name().to_string()).collect(),
        preprocess: preprocess.clone(),
        temperature: 1.0,
    }
}

/// A `curves.png` being drawn: the thread returns its error, if any.
struct Plotting {
    handle: std::thread::JoinHandle<Option<String>>,
    first: bool,
}

/// Where a run's wall time went, in seconds (written into `outcome.json`).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
struct Timing {
    setup: f64,
    train: f64,
    validation: f64,
    checkpoints: f64,
    test: f64,
}

struct Session<'a> {
    cfg: ExperimentConfig,
    dir: RunDir,
    device: Device,
    student: TchModel,
    teachers: Vec<Teacher>,
    data: RunData,
    /// The training and validation splits on the device, when `data.device_data` chose it.
    resident: Option<(ResidentTrain, ResidentVal)>,
    preprocess: Preprocess,
    meta: ModelMeta,
    class_weights: Option<Tensor>,
    /// The weight average (`optim.ema_decay`): validated, checkpointed and tested.
    ema: Option<Ema>,
    /// Mixup/CutMix (`augment.mixup_alpha`, `augment.cutmix_alpha`).
    mixer: Option<Mixer>,
    /// When the session was opened (set-up time is counted from here).
    opened: std::time::Instant,
    /// This process's place in a data-parallel run (launcher's environment), if any.
    parallel: Option<Parallel>,
    /// Whether this process writes the run directory: rank 0 of a data-parallel run, or the
    /// only process.
    writes: bool,
    precision: Precision,
    obs: &'a dyn Observer,
}

/// Trains `cfg` in a new run directory.
pub fn train(cfg: &ExperimentConfig, opts: &RunOptions, obs: &dyn Observer) -> Result<RunOutcome> {
    cfg.validate().map_err(crate::config::ConfigError::from)?;
    cfg.check_files().map_err(crate::config::ConfigError::from)?;
    let (device, parallel) = start(opts.device.unwrap_or(cfg.device))?;
    let path = opts.run_dir.clone().unwrap_or_else(|| cfg.run_dir());
    // Rank 0 alone creates (or clears) the run directory; the other ranks never write it.
    let dir = match &parallel {
        Some(p) if p.group.rank() != 0 => RunDir { path },
        _ => RunDir::create(path, opts.overwrite)?,
    };
    let mut s = Session::open(cfg.clone(), dir, device, parallel, obs)?;
    if s.writes {
        let text = cfg.resolved_toml()?;
        s.dir.write_atomic("config.resolved.toml", text.as_bytes())?;
    }
    if let Some(init) = &cfg.model.init {
        let path = cfg.resolve_path(&init.weights);
        let opts = CheckOptions { skip_classifier: init.skip_classifier };
        s.student.load_weights_file(&path, &opts)?;
        obs.message(&format!("initialised from {}", path.display()));
    }
    s.run(0, None, vec![])
}

/// The outcome of a finished run, read back from its directory (`outcome.json` is written
/// when a run ends); `None` while the run is unfinished.
pub fn finished(dir: &Path) -> Result<Option<RunOutcome>> {
    let rd = RunDir { path: dir.to_path_buf() };
    let Ok(text) = std::fs::read_to_string(dir.join("outcome.json")) else {
        return Ok(None);
    };
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Input(format!("{}/outcome.json: {e}", dir.display())))?;
    Ok(Some(RunOutcome {
        dir: dir.to_path_buf(),
        records: rd.read_metrics()?,
        best_epoch: v["best_epoch"].as_u64().unwrap_or(0) as usize,
        stopped_early: v["stopped_early"].as_bool().unwrap_or(false),
    }))
}

/// Continues the run in `dir` from its last completed epoch. A finished run (see [`finished`])
/// is read back and returned untouched: no file of it is written.
pub fn resume(dir: &Path, device: Option<DeviceChoice>, obs: &dyn Observer) -> Result<RunOutcome> {
    if let Some(done) = finished(dir)? {
        obs.message(&format!("{} is finished (outcome.json): nothing to resume", dir.display()));
        return Ok(done);
    }
    let rd = RunDir { path: dir.to_path_buf() };
    let cfg = ExperimentConfig::load(&rd.config())?;
    let state_path = rd.state();
    if !state_path.exists() {
        return Err(Error::Input(format!(
            "{}: no completed epoch to resume from (state.safetensors is missing); start it again with `fer-train run`",
            dir.display()
        )));
    }
    let (tensors, extra) = fer_checkpoint::read_safetensors(&state_path)?;
    let epoch: usize = extra.get("epoch").and_then(|e| e.parse().ok()).unwrap_or(0);
    let step: u64 = extra.get("optimizer_step").and_then(|e| e.parse().ok()).unwrap_or(0);
    let (device, parallel) = start(device.unwrap_or(cfg.device))?;
    let mut s = Session::open(cfg, rd, device, parallel, obs)?;
    let split = |prefix: &str| -> TensorMap {
        tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|n| (n.to_string(), v.clone())))
            .collect()
    };
    s.student.load_tensor_map(&split("model."), &CheckOptions::default())?;
    if let Some(ema) = s.ema.as_mut() {
        let averaged = split("ema.");
        if averaged.is_empty() {
            return Err(Error::Input(format!(
                "{}: optim.ema_decay is set but the training state holds no weight average",
                state_path.display()
            )));
        }
        let updates = extra.get("ema_updates").and_then(|e| e.parse().ok()).unwrap_or(0);
        ema.load(&averaged, updates)?;
    }
    let records: Vec<EpochRecord> =
        s.dir.read_metrics()?.into_iter().filter(|r| r.epoch <= epoch).collect();
    if s.writes {
        s.dir.rewrite_metrics(&records)?;
    }
    obs.message(&format!("resuming {} after epoch {epoch}", dir.display()));
    s.run(epoch, Some((split("optim."), step)), records)
}

/// The training device and, when the launcher's environment describes a data-parallel run,
/// this rank's membership of it (its device is then `cuda:LOCAL_RANK` on CUDA).
fn start(choice: DeviceChoice) -> Result<(Device, Option<Parallel>)> {
    let device = resolve(choice)?;
    Ok(match Parallel::join(device)? {
        Some((p, d)) => (d, Some(p)),
        None => (device, None),
    })
}

/// Chooses where training batches are made (`data.device_data`, see [`resident`]) and, for
/// the device, uploads both splits. Returns them with the line `env.json` records.
fn place_data(
    cfg: &ExperimentConfig,
    data: &RunData,
    device: Device,
    obs: &dyn Observer,
) -> Result<(Option<(ResidentTrain, ResidentVal)>, String)> {
    let mode = cfg.data.device_data;
    let refuse = |why: String| -> Result<(Option<(ResidentTrain, ResidentVal)>, String)> {
        if mode == DeviceData::On {
            return Err(Error::Input(format!(
                "data.device_data = \"on\", but the splits cannot be made on the device: {why}"
            )));
        }
        if mode == DeviceData::Auto && device.is_cuda() {
            obs.message(&format!("training batches from the CPU loader: {why}"));
        }
        Ok((None, format!("loader ({why})")))
    };
    match (mode, device) {
        (DeviceData::Off, _) => return refuse("data.device_data = \"off\"".into()),
        (DeviceData::Auto, Device::Cpu) => return refuse("the training device is the CPU".into()),
        _ => {}
    }
    let (train_bytes, _) = match resident::check_train(&data.train) {
        Ok(b) => b,
        Err(why) => return refuse(why),
    };
    let val_bytes = ResidentVal::bytes_for(&data.val);
    let mb = |b: usize| b as f64 / 1e6;
    if let (DeviceData::Auto, Device::Cuda(i)) = (mode, device) {
        let total = crate::cuda_graph::device_total_memory(i)?;
        let budget = cfg.data.device_data_share * total as f64;
        if (train_bytes + val_bytes) as f64 > budget {
            return refuse(format!(
                "the splits need {:.0} MB on the device, more than data.device_data_share = {} \
                 of its {:.0} MB",
                mb(train_bytes + val_bytes),
                cfg.data.device_data_share,
                mb(total as usize)
            ));
        }
    }
    let train = match ResidentTrain::build(&data.train, device, cfg.data.workers.max(1)) {
        Ok(t) => t,
        Err(why) => return refuse(why),
    };
    let val = ResidentVal::build(&data.val, device)?;
    let line = format!(
        "device ({:.1} MB of training images, {:.1} MB of validation input resident)",
        mb(train.bytes()),
        mb(val.bytes())
    );
    obs.message(&format!("training batches made on the {line}"));
    Ok((Some((train, val)), line))
}

impl<'a> Session<'a> {
    fn open(
        cfg: ExperimentConfig,
        dir: RunDir,
        device: Device,
        parallel: Option<Parallel>,
        obs: &'a dyn Observer,
    ) -> Result<Self> {
        let opened = std::time::Instant::now();
        let writes = parallel.as_ref().is_none_or(|p| p.group.rank() == 0);
        tch::manual_seed(cfg.seed as i64);
        let preprocess = cfg.preprocess.resolve(&cfg.model);
        let shard = parallel.as_ref().map(|p| p.shard(cfg.optim.batch_size));
        let data = open_run_data(&cfg, &preprocess, shard)?;
        let train_images = data.train_counts.iter().sum::<usize>();
        if writes {
            save_plan(&data.plan, &dir.path)?;
        }
        if let Some(h) = &data.plan.calibration {
            obs.message(&format!(
                "calibration hold-out: {} training samples kept out of training (listed in {})",
                h.indices.len(),
                dir.path.join("split.json").display()
            ));
        }
        if !data.skipped.is_empty() && writes {
            let text = data.skipped.join("\n") + "\n";
            dir.write_atomic("skipped.txt", text.as_bytes())?;
            obs.message(&format!(
                "skipped {} bad item(s) (data.skip_bad); listed in {}",
                data.skipped.len(),
                dir.path.join("skipped.txt").display()
            ));
        }
        let arch = &cfg.model.net;
        let graph = fer_models_spec::spec(arch)?;
        let student =
            TchModel::with_init(graph, Some(arch.arch), cfg.model.weight_init, device, cfg.seed)?;
        if cfg.model.zero_init_residual {
            let zeroed = student.zero_init_residual();
            obs.message(&format!(
                "model.zero_init_residual: {} residual blocks start as the identity",
                zeroed.len()
            ));
        }
        let teachers = cfg
            .teachers
            .iter()
            .map(|t| Teacher::load(&t.name, &cfg.resolve_path(&t.checkpoint), t.input_size, device))
            .collect::<Result<Vec<_>>>()?;
        let class_weights = (cfg.data.balance == ClassBalance::InverseFrequencyWeights)
            .then(|| Tensor::from_slice(&inverse_frequency(&data.train_counts)).to_device(device));
        let meta = model_meta(&cfg, &data, &preprocess);
        let precision = match (cfg.optim.precision, device) {
            (p, Device::Cuda(_)) => p,
            (Precision::Fp32, _) => Precision::Fp32,
            (p, _) => {
                obs.message(&format!(
                    "optim.precision = {p:?} is CUDA autocast; on {device:?} training runs in fp32"
                ));
                Precision::Fp32
            }
        };
        let (resident, data_path) = place_data(&cfg, &data, device, obs)?;
        let env = Environment {
            device: format!("{device:?}"),
            libtorch: env!("FER_LIBTORCH_VERSION").to_string(),
            cuda_backend_loaded: load_cuda_backend(),
            threads: tch::get_num_threads(),
            git_commit: rundir::git_commit(),
            precision: format!("{precision:?}").to_lowercase(),
            toolkit_version: env!("CARGO_PKG_VERSION").to_string(),
            data_path,
            data_parallel: parallel
                .as_ref()
                .map(|p| format!("{} ranks, {}", p.group.world(), p.group.backend())),
        };
        if device.is_cuda() {
            // cuDNN picks the fastest algorithm per shape (as torch.backends.cudnn.benchmark);
            // CUDA runs are not bit-reproducible anyway (docs/reproducibility.md).
            let o = &cfg.optim;
            tch::Cuda::cudnn_set_benchmark(o.cudnn_benchmark && !o.deterministic);
            crate::extras::set_deterministic_cudnn(o.deterministic)?;
        }
        if cfg.optim.channels_last && device.is_cuda() {
            student.to_channels_last()?;
            for t in &teachers {
                t.model.to_channels_last()?;
            }
        }
        let ema = match cfg.optim.ema_decay {
            Some(d) => Some(Ema::new(&student, student.graph().clone(), d)?),
            None => None,
        };
        let mixer = Mixer::new(&cfg.augment, cfg.seed, data.classes.len())?;
        let env = serde_json::to_vec_pretty(&env).map_err(|e| Error::Input(e.to_string()))?;
        if writes {
            dir.write_atomic("env.json", &env)?;
        }
        if let (Some(p), Some(s)) = (&parallel, shard) {
            obs.message(&format!(
                "data-parallel: rank {} of {} ({}), {} of {train_images} training images per epoch",
                p.group.rank(),
                p.group.world(),
                p.group.backend(),
                s.len_of(train_images),
            ));
        }
        obs.message(&format!(
            "{}: {train_images} train / {} val images, {} classes, device {device:?}",
            cfg.run_name(),
            data.val_len,
            data.classes.len()
        ));
        Ok(Session {
            cfg,
            dir,
            device,
            student,
            teachers,
            data,
            resident,
            preprocess,
            meta,
            class_weights,
            ema,
            mixer,
            precision,
            obs,
            opened,
            parallel,
            writes,
        })
    }

    /// The weights that are validated, checkpointed and tested: the average when
    /// `optim.ema_decay` is set, else the student's.
    fn evaluated(&self) -> &TchModel {
        self.ema.as_ref().map_or(&self.student, |e| &e.model)
    }

    /// The checkpoint of the evaluated weights after the epoch `rec` records (weights on the
    /// host, checked finite).
    fn checkpoint(&self, rec: &EpochRecord) -> Result<Checkpoint> {
        let mut extra = BTreeMap::new();
        extra.insert("epoch".into(), rec.epoch.to_string());
        extra.insert("stage".into(), rec.stage.clone());
        extra.insert("seed".into(), self.cfg.seed.to_string());
        extra.insert("config_hash".into(), self.cfg.config_hash()?);
        extra.insert("val_accuracy".into(), rec.val_accuracy.to_string());
        extra.insert("val_macro_f1".into(), rec.val_macro_f1.to_string());
        if let Some(d) = self.cfg.optim.ema_decay {
            extra.insert("ema_decay".into(), d.to_string());
        }
        let tensors = self.evaluated().to_tensor_map()?;
        if let Some((name, count)) = fer_checkpoint::first_non_finite(&tensors) {
            let tensor = name.to_string();
            return Err(Error::NonFiniteWeights { epoch: rec.epoch, tensor, count });
        }
        Ok(Checkpoint { meta: self.meta.clone(), tensors, extra })
    }

    /// Redraws `curves.png` (loss and accuracy per epoch) on a thread of its own, so drawing
    /// never holds up training; the previous drawing is waited for first. A plotting failure
    /// (for example no font) is reported once and does not stop training.
    fn plot_curves(&self, records: &[EpochRecord], pending: &mut Option<Plotting>) {
        use fer_metrics::plot::curves::{CurveRow, training_curves};
        self.finish_plot(pending.take());
        let rows: Vec<CurveRow> = records.iter().map(CurveRow::from).collect();
        let path = self.dir.path.join("curves.png");
        let name = self.cfg.run_name();
        let first = records.len() == 1;
        let handle = std::thread::spawn(move || {
            training_curves(&rows, &name, &path).err().map(|e| e.to_string())
        });
        *pending = Some(Plotting { handle, first });
    }

    /// Waits for a drawing started by [`Session::plot_curves`] and reports a failure of the
    /// first one.
    fn finish_plot(&self, pending: Option<Plotting>) {
        if let Some(p) = pending {
            let err =
                p.handle.join().unwrap_or_else(|_| Some("the drawing thread panicked".into()));
            if let (Some(e), true) = (err, p.first) {
                self.obs.message(&format!("curves.png not drawn: {e}"));
            }
        }
    }

    /// `state.safetensors` after `epoch`: the student, the optimizer and the weight average.
    fn state_file(&self, epoch: usize, opt: &Optimizer) -> Result<writer::File> {
        let mut all = TensorMap::new();
        for (k, v) in self.student.to_tensor_map()? {
            all.insert(format!("model.{k}"), v);
        }
        let (state, step) = opt.state_dict()?;
        for (k, v) in state {
            all.insert(format!("optim.{k}"), v);
        }
        let mut extra = BTreeMap::new();
        if let Some(ema) = &self.ema {
            for (k, v) in ema.state()? {
                all.insert(format!("ema.{k}"), v);
            }
            extra.insert("ema_updates".to_string(), ema.updates().to_string());
        }
        extra.insert("epoch".to_string(), epoch.to_string());
        extra.insert("optimizer_step".to_string(), step.to_string());
        Ok(writer::File::State(self.dir.state(), all, extra))
    }

    fn run(
        &mut self,
        done: usize,
        mut opt_state: Option<(TensorMap, u64)>,
        mut records: Vec<EpochRecord>,
    ) -> Result<RunOutcome> {
        let metric = self.cfg.early_stopping.metric;
        let mut best = BestEpoch::new(&self.cfg.early_stopping);
        for r in &records {
            best.observe(r);
        }
        let total: usize = self.cfg.stages.iter().map(|s| s.epochs).sum();
        let mut timing = Timing { setup: self.opened.elapsed().as_secs_f64(), ..Timing::default() };
        let mut plotting = None;
        let mut writer = writer::Writer::default();
        let mut stage_start = 0;
        let mut stopped_early = false;
        if let Some(p) = &self.parallel {
            // Every rank starts from rank 0's weights (initialised or resumed alike).
            p.sync_model(&self.student)?;
            if let Some(e) = &self.ema {
                p.sync_model(&e.model)?;
            }
        }
        for stage in self.cfg.stages.clone() {
            if stage_start + stage.epochs <= done {
                stage_start += stage.epochs;
                continue;
            }
            let mut opt = Optimizer::new(&self.student, &self.cfg.optim, self.precision);
            if let Some((state, step)) = opt_state.take_if(|_| done > stage_start) {
                opt.load_state_dict(&state, step)?;
            }
            if let Some(p) = &self.parallel {
                opt.sync_over(&p.group)?;
            }
            let used = stage.teachers_used(&self.cfg.teachers);
            let note = |m: &str| self.obs.message(m);
            let mut runner = StepRunner::new(self.cfg.optim.cuda_graphs, self.device, &opt, &note)?;
            let stage_teachers: Vec<&Teacher> =
                self.teachers.iter().filter(|t| used.contains(&t.name.as_str())).collect();
            let cache = if stage.teacher_cache && done < stage_start + stage.epochs {
                let clock = std::time::Instant::now();
                let c = self.teacher_cache(&stage, &stage_teachers)?;
                timing.train += clock.elapsed().as_secs_f64();
                Some(c)
            } else {
                None
            };
            // Patience counts within a stage: a stopped stage hands over to the next one.
            if done <= stage_start {
                best.reset_patience();
            }
            for e in 0..stage.epochs {
                let epoch = stage_start + e + 1;
                if epoch <= done {
                    continue;
                }
                tch::manual_seed(epoch_seed(self.cfg.seed, epoch));
                self.obs.epoch_start(epoch, total, &stage.name, self.data.train.len());
                let resident = self.resident.as_ref();
                let ctx = EpochCtx {
                    student: &self.student,
                    teachers: stage_teachers.clone(),
                    loader: &self.data.train,
                    resident: resident.map(|(t, _)| t),
                    preprocess: &self.preprocess,
                    stage: &stage,
                    optim: &self.cfg.optim,
                    class_weights: self.class_weights.as_ref(),
                    device: self.device,
                    epoch_in_stage: e,
                    run_epoch: epoch,
                    precision: self.precision,
                    mixer: self.mixer.as_ref(),
                    teacher_cache: cache.as_ref(),
                };
                let mut t = train_epoch(&ctx, &mut opt, &mut runner, self.ema.as_mut(), self.obs)?;
                if let Some(p) = &self.parallel {
                    t = t.summed_over(p, self.device)?;
                }
                timing.train += t.seconds;
                let clock = std::time::Instant::now();
                if let Some(e) = &self.ema {
                    e.sync_counters();
                }
                let evaluated = self.ema.as_ref().map_or(&self.student, |e| &e.model);
                precise_bn(&ctx, evaluated)?;
                if let Some(p) = &self.parallel {
                    p.sync_buffers(evaluated)?;
                }
                let val = match resident {
                    Some((_, v)) => ValSource::Resident(v),
                    None => ValSource::Loader(&self.data.val),
                };
                let v = evaluate(evaluated, val, self.device, epoch, self.precision)?;
                let val_seconds = clock.elapsed().as_secs_f64();
                timing.validation += val_seconds;
                let clock = std::time::Instant::now();
                let rec = EpochRecord {
                    epoch,
                    stage: stage.name.clone(),
                    lr: t.lr,
                    train_loss: t.loss,
                    train_accuracy: t.accuracy,
                    terms: t.terms,
                    val_loss: v.loss,
                    val_accuracy: v.accuracy,
                    val_macro_f1: v.macro_f1,
                    val_ece: v.ece,
                    images: t.images,
                    img_per_s: t.images as f64 / t.seconds,
                    epoch_seconds: t.seconds,
                    val_seconds,
                };
                // A non-finite metric never selects an epoch (not even the first).
                let improved = best.observe(&rec);
                if self.writes {
                    self.dir.append_metrics(&rec)?;
                    // The previous epoch's files are written first; this epoch's are copied
                    // to the host and written while the next epoch trains (`writer`).
                    writer.wait()?;
                    let ck = self.checkpoint(&rec)?;
                    let mut files = Vec::with_capacity(3);
                    if improved {
                        files.push(writer::File::Checkpoint(self.dir.best(), ck.clone()));
                    }
                    files.push(writer::File::Checkpoint(self.dir.last(), ck));
                    files.push(self.state_file(epoch, &opt)?);
                    writer.submit(files)?;
                }
                self.obs.epoch_end(&rec, improved);
                records.push(rec);
                if self.writes {
                    self.plot_curves(&records, &mut plotting);
                }
                timing.checkpoints += clock.elapsed().as_secs_f64();
                // Rank 0 decides, so that no rank trains on alone after another stopped.
                let stop = match &self.parallel {
                    Some(p) => p.agree(best.out_of_patience(), self.device)?,
                    None => best.out_of_patience(),
                };
                if stop {
                    self.obs.message(&format!(
                        "early stop: {} did not improve for {} epochs",
                        metric.name(),
                        best.stale()
                    ));
                    stopped_early = true;
                    break;
                }
            }
            stage_start += stage.epochs;
        }
        self.finish_plot(plotting.take());
        let clock = std::time::Instant::now();
        writer.wait()?;
        timing.checkpoints += clock.elapsed().as_secs_f64();
        let best_epoch = best.epoch().unwrap_or(0);
        if let Some(p) = self.parallel.take() {
            // Training is over on every rank: what follows is rank 0's alone.
            p.group.close();
        }
        if !self.writes {
            // The run directory, the test split and the summary are rank 0's.
            return Ok(RunOutcome {
                dir: self.dir.path.clone(),
                best_epoch,
                records,
                stopped_early,
            });
        }
        let clock = std::time::Instant::now();
        self.test(best_epoch, records.last().map_or(0, |r| r.epoch))?;
        timing.test = clock.elapsed().as_secs_f64();
        self.obs.message(&format!(
            "wall {:.1} s: set-up {:.1} s, training {:.1} s, validation {:.1} s, checkpoints and \
             curves {:.1} s, test split {:.1} s",
            self.opened.elapsed().as_secs_f64(),
            timing.setup,
            timing.train,
            timing.validation,
            timing.checkpoints,
            timing.test
        ));
        let done = serde_json::json!({
            "best_epoch": best_epoch,
            "epochs": records.len(),
            "stopped_early": stopped_early,
            "seconds": timing,
        });
        self.dir.write_atomic("outcome.json", done.to_string().as_bytes())?;
        Ok(RunOutcome { dir: self.dir.path.clone(), best_epoch, records, stopped_early })
    }
}
