//! Opening the configured dataset: splits, optional decoded cache, loaders, class weights.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fer_data::augment::AugmentConfig;
use fer_data::cache::CachedDataset;
use fer_data::formats::{self, FerPlusMode, Format};
use fer_data::labels::Emotion;
use fer_data::loader::{Loader, LoaderConfig, Shard};
use fer_data::split::{self, SplitPlan};
use fer_data::{Dataset, SplitName};
use fer_models_spec::Preprocess;

use crate::config::{ClassBalance, ExperimentConfig, Validation};
use crate::error::{Error, Result};

/// The training and validation sides of a run.
pub struct RunData {
    /// Augmented, shuffled training batches.
    pub train: Loader,
    /// Validation batches in dataset order, no augmentation.
    pub val: Loader,
    /// Class order of the labels (the model's outputs).
    pub classes: Vec<Emotion>,
    /// Training images per class.
    pub train_counts: Vec<usize>,
    /// Validation images.
    pub val_len: usize,
    /// The split, written into the run directory.
    pub plan: SplitPlan,
    /// Whether targets are soft (FER+ vote distributions).
    pub soft: bool,
    /// Bad items the readers skipped (`data.skip_bad`), as `source: reason` lines.
    pub skipped: Vec<String>,
    /// For each `out_of_fold` teacher (by name), per training sample (dataset index of
    /// `train`), whether it may be read there: true where the teacher did not train on it.
    pub out_of_fold: BTreeMap<String, Vec<bool>>,
}

fn data_err(context: impl Into<String>) -> impl FnOnce(fer_data::Error) -> Error {
    let context = context.into();
    move |source| Error::Data { context, source }
}

fn open(cfg: &ExperimentConfig, split: Option<SplitName>) -> Result<Arc<dyn Dataset>> {
    let d = &cfg.data;
    let root = cfg.resolve_path(&d.root);
    let mut opts = d.open_options();
    opts.ferplus_images = opts.ferplus_images.map(|p| cfg.resolve_path(&p));
    opts.image_root = opts.image_root.map(|p| cfg.resolve_path(&p));
    let what = split.map_or("all samples".to_string(), |s| format!("split `{}`", s.name()));
    let ds = formats::open(d.format, &root, split, &opts).map_err(data_err(format!(
        "opening {} ({what}) at {}",
        d.format,
        root.display()
    )))?;
    if !d.cache {
        return Ok(Arc::from(ds));
    }
    let hash = fer_data::cache::source_hash(&*ds);
    let file = cache_file(cfg, split, &hash);
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|source| Error::Io { path: parent.to_path_buf(), source })?;
    }
    let cached = CachedDataset::open_or_build(&*ds, &file, d.workers.max(1))
        .map_err(data_err(format!("caching decoded images into {}", file.display())))?;
    Ok(Arc::new(cached))
}

fn cache_file(cfg: &ExperimentConfig, split: Option<SplitName>, hash: &str) -> PathBuf {
    let split = split.map_or("all", |s| s.name());
    let name = format!("{}-{split}-{}.fercache", cfg.data.format, &hash[..16.min(hash.len())]);
    cfg.resolve_path(&cfg.output_dir).join(".cache").join(name)
}

/// Opens the datasets, applies the configured split and builds both loaders.
pub fn open_run_data(
    cfg: &ExperimentConfig,
    preprocess: &Preprocess,
    shard: Option<Shard>,
) -> Result<RunData> {
    let d = &cfg.data;
    let validation = d.validation(cfg.seed).ok_or_else(|| {
        Error::Input("data: give exactly one of val_split, val_fraction or folds + fold".into())
    })?;
    // `pool`: the dataset the plan's `train` part indexes.
    let (train_ds, val_ds, plan, pool): (_, _, SplitPlan, Arc<dyn Dataset>) = match validation {
        Validation::Split(val) => {
            let train = open(cfg, d.train_split.or(Some(SplitName::Train)))?;
            let v = open(cfg, Some(val))?;
            let mut plan = SplitPlan::official(&[(SplitName::Train, &*train), (val, &*v)]);
            hold_out(cfg, &mut plan, &*train)?;
            let t: Arc<dyn Dataset> = if plan.calibration.is_some() || plan.left_out.is_some() {
                Arc::new(
                    plan.subset(SplitName::Train, train.clone())
                        .map_err(data_err("train subset"))?,
                )
            } else {
                train.clone()
            };
            (t, v, plan, train)
        }
        Validation::Fraction { fraction, seed } => {
            let pool = open(cfg, d.train_split)?;
            let mut plan = split::stratified(&*pool, fraction, 0.0, seed)
                .map_err(data_err("making the stratified validation split"))?;
            hold_out(cfg, &mut plan, &*pool)?;
            let (t, v) = subsets(&plan, pool.clone(), SplitName::Val)?;
            (t, v, plan, pool)
        }
        Validation::Fold { fold, folds, seed } => {
            let pool = open(cfg, d.train_split)?;
            let mut plan = split::grouped_kfold(&*pool, folds, fold, seed)
                .map_err(data_err("making the subject-grouped folds"))?;
            hold_out(cfg, &mut plan, &*pool)?;
            let (t, v) = subsets(&plan, pool.clone(), SplitName::Test)?;
            (t, v, plan, pool)
        }
    };
    let out_of_fold = out_of_fold_masks(cfg, &plan, pool)?;
    if train_ds.classes() != val_ds.classes() {
        return Err(Error::Input(format!(
            "data: the training classes {:?} differ from the validation classes {:?}",
            train_ds.classes(),
            val_ds.classes()
        )));
    }
    let classes = train_ds.classes().to_vec();
    if cfg.model.net.num_classes != classes.len() {
        let names: Vec<&str> = classes.iter().map(|c| c.name()).collect();
        return Err(Error::Input(format!(
            "model.num_classes = {} but the dataset has {} classes ({})",
            cfg.model.net.num_classes,
            classes.len(),
            names.join(", ")
        )));
    }
    let mut train_counts = vec![0usize; classes.len()];
    for i in 0..train_ds.len() {
        train_counts[train_ds.label(i)] += 1;
    }
    let skipped = [&train_ds, &val_ds]
        .iter()
        .flat_map(|ds| ds.skipped().iter().map(|s| format!("{}: {}", s.source, s.reason)))
        .collect();
    let soft = d.format == Format::FerPlus && d.ferplus_mode == FerPlusMode::Soft;
    let batch = cfg.optim.batch_size;
    let base = LoaderConfig {
        batch_size: batch,
        workers: d.workers,
        prefetch: 0,
        shuffle: true,
        balanced: d.balance == ClassBalance::BalancedSampler,
        // Train-mode BatchNorm needs more than one value per channel, RKD at least 3 samples:
        // drop a ragged last batch unless the set is smaller than one batch.
        drop_last: shard.map_or(train_ds.len(), |s| s.len_of(train_ds.len())) >= batch,
        skip_bad: d.skip_bad,
        soft_targets: soft,
        seed: cfg.seed,
        pixels: d.pixel_batches,
        shard,
    };
    let all = |ds: &Arc<dyn Dataset>| (0..ds.len()).collect::<Vec<_>>();
    let train = Loader::new(
        train_ds.clone(),
        all(&train_ds),
        preprocess.clone(),
        cfg.augment.clone(),
        base.clone(),
    )
    .map_err(data_err("building the training loader"))?;
    // Every rank validates on the whole validation split.
    let val_cfg = LoaderConfig {
        shuffle: false,
        balanced: false,
        drop_last: false,
        pixels: false,
        shard: None,
        ..base
    };
    let val = Loader::new(
        val_ds.clone(),
        all(&val_ds),
        preprocess.clone(),
        AugmentConfig::off(),
        val_cfg,
    )
    .map_err(data_err("building the validation loader"))?;
    Ok(RunData {
        train,
        val,
        classes,
        train_counts,
        val_len: val_ds.len(),
        plan,
        soft,
        skipped,
        out_of_fold,
    })
}

/// A loader over `data.test_split` (no augmentation, dataset order), when the config names one:
/// the run scores its chosen checkpoint there once, at the end.
pub fn open_test(cfg: &ExperimentConfig, preprocess: &Preprocess) -> Result<Option<Loader>> {
    let Some(split) = cfg.data.test_split else { return Ok(None) };
    let ds = open(cfg, Some(split))?;
    let all = (0..ds.len()).collect();
    let lc = LoaderConfig {
        batch_size: cfg.optim.batch_size,
        workers: cfg.data.workers,
        shuffle: false,
        skip_bad: cfg.data.skip_bad,
        seed: cfg.seed,
        ..LoaderConfig::default()
    };
    Loader::new(ds, all, preprocess.clone(), AugmentConfig::off(), lc)
        .map(Some)
        .map_err(data_err("building the test loader"))
}

/// Takes `data.calib_fraction` of the training part out for calibration, then leaves
/// `data.cross_fit_fold` out, when configured.
fn hold_out(cfg: &ExperimentConfig, plan: &mut SplitPlan, train: &dyn Dataset) -> Result<()> {
    let seed = cfg.data.split_seed.unwrap_or(cfg.seed);
    if let Some(f) = cfg.data.calib_fraction {
        plan.hold_out(train, f, seed).map_err(data_err("holding out the calibration samples"))?;
    }
    if let (Some(folds), Some(fold)) = (cfg.data.cross_fit_folds, cfg.data.cross_fit_fold) {
        plan.leave_out_fold(train, folds, fold, seed)
            .map_err(data_err(format!("leaving cross-fit fold {fold} of {folds} out")))?;
    }
    Ok(())
}

/// For each `out_of_fold` teacher, per sample of this run's training part, whether the
/// teacher did not train on it, from the `split.json` beside its checkpoint (checked against
/// `pool`, the dataset the training part indexes, by the split's fingerprint).
fn out_of_fold_masks(
    cfg: &ExperimentConfig,
    plan: &SplitPlan,
    pool: Arc<dyn Dataset>,
) -> Result<BTreeMap<String, Vec<bool>>> {
    let mut masks = BTreeMap::new();
    let Some(train) = plan.part(SplitName::Train) else { return Ok(masks) };
    for t in cfg.teachers.iter().filter(|t| t.out_of_fold) {
        let checkpoint = cfg.resolve_path(&t.checkpoint);
        let path = checkpoint.with_file_name("split.json");
        let context = format!("teacher {:?} (out_of_fold): {}", t.name, path.display());
        let theirs = SplitPlan::load(&path).map_err(data_err(context.clone()))?;
        let trained = theirs.subset(SplitName::Train, pool.clone()).map_err(data_err(format!(
            "{context}: its training part does not index this run's dataset"
        )))?;
        let seen: HashSet<usize> = trained.indices().iter().copied().collect();
        masks.insert(t.name.clone(), train.indices.iter().map(|i| !seen.contains(i)).collect());
    }
    Ok(masks)
}

fn subsets(
    plan: &SplitPlan,
    pool: Arc<dyn Dataset>,
    val: SplitName,
) -> Result<(Arc<dyn Dataset>, Arc<dyn Dataset>)> {
    let t = plan.subset(SplitName::Train, pool.clone()).map_err(data_err("train subset"))?;
    let v = plan.subset(val, pool).map_err(data_err("validation subset"))?;
    Ok((Arc::new(t), Arc::new(v)))
}

/// Inverse-frequency class weights `N / (K · n_c)` (classes without samples get 0).
pub fn inverse_frequency(counts: &[usize]) -> Vec<f32> {
    let n: usize = counts.iter().sum();
    let k = counts.len();
    counts.iter().map(|&c| if c == 0 { 0.0 } else { n as f32 / (k * c) as f32 }).collect()
}

/// Writes the split plan into the run directory.
pub fn save_plan(plan: &SplitPlan, dir: &Path) -> Result<()> {
    plan.save(&dir.join("split.json")).map_err(data_err("writing split.json"))
}
