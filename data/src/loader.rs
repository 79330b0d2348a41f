//! Parallel, deterministic batch loader.
//!
//! A [`Loader`] reads samples of an `Arc<dyn Dataset>` (a subset given by indices), decodes,
//! augments and preprocesses them on worker threads and hands over contiguous `[N, C, H, W]`
//! batches (or 8-bit pixel batches for the consumer to normalise, [`crate::pixels`]) in a fixed
//! order. The batch composition and order depend only on the seed and the
//! epoch (shuffle, optional class-balanced sampling), and each sample's augmentation only on
//! `(seed, epoch, index)` ([`crate::augment::SampleKey`]), so any worker count gives identical
//! batches. At most `prefetch` batches are built ahead of the consumer.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use fer_models_spec::Preprocess;
use rand::SeedableRng;
use rand::distributions::{Distribution, WeightedIndex};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::augment::{AugmentConfig, Augmenter, SampleKey, splitmix};
use crate::dataset::{Dataset, SkippedItem, Target};
use crate::error::{Error, Result};
use crate::pixels::PixelBatch;

/// Loader options (every field optional, unknown fields rejected).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoaderConfig {
    /// Samples per batch. Default 64.
    pub batch_size: usize,
    /// Worker threads; 0 = the available cores. Default 0.
    pub workers: usize,
    /// Batches built ahead of the consumer; 0 = twice the workers. Default 0.
    pub prefetch: usize,
    /// Shuffle every epoch (seeded by `seed` and the epoch). Default true.
    pub shuffle: bool,
    /// Draw each epoch's samples with replacement, weighted by inverse class frequency, so
    /// classes appear about equally often. Default false.
    pub balanced: bool,
    /// Leave out the last batch when it is smaller than `batch_size`. Default false.
    pub drop_last: bool,
    /// Skip samples that fail to load (counted in [`Batch::skipped`]) instead of failing the
    /// batch. Default false.
    pub skip_bad: bool,
    /// Also produce [`Batch::soft`] (`[N, K]`: soft targets, or one-hot for hard labels).
    /// Default false.
    pub soft_targets: bool,
    /// Seed of the order and of the augmentation. Default 0.
    pub seed: u64,
    /// Hand over 8-bit pixels ([`Images::Pixels`]) for the consumer to normalise, instead of
    /// the model input. Default false.
    pub pixels: bool,
    /// In data-parallel training, this process's share of every epoch (not part of a config:
    /// set by the trainer from the launcher's environment). Default none: the whole epoch.
    #[serde(skip)]
    pub shard: Option<Shard>,
}

/// One rank's share of every epoch in data-parallel training. The epoch's order is the same
/// on every rank (same seed, same epoch); it is cut into global batches of `world × batch`
/// samples, and rank `r` takes the `r`-th contiguous part of each. So batch `b` of all ranks
/// together holds the samples, with the same augmentation, of batch `b` of one process whose
/// batch is `world` times larger, and rank `r`'s part is that process's `r`-th micro-batch
/// (`optim.micro_batches`). Each rank gets `⌈n / world⌉` samples: a last, partial global
/// batch is completed from the epoch's start (as `DistributedSampler` pads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This process's rank, below `world`.
    pub rank: usize,
    /// The number of ranks (at least 1).
    pub world: usize,
    /// Samples per batch on each rank (the loader's batch size).
    pub batch: usize,
}

impl Shard {
    /// Samples each rank gets from an epoch of `n`.
    pub fn len_of(&self, n: usize) -> usize {
        n.div_ceil(self.world.max(1))
    }

    /// This rank's items of `order` (not empty).
    fn take<T: Copy>(&self, order: &[T]) -> Vec<T> {
        let b = self.batch.max(1);
        let per = self.len_of(order.len());
        (0..per)
            .map(|j| order[((j / b) * self.world * b + self.rank * b + j % b) % order.len()])
            .collect()
    }
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            batch_size: 64,
            workers: 0,
            prefetch: 0,
            shuffle: true,
            balanced: false,
            drop_last: false,
            skip_bad: false,
            soft_targets: false,
            seed: 0,
            pixels: false,
            shard: None,
        }
    }
}

/// A batch's images, in the form [`LoaderConfig::pixels`] asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Images {
    /// `[N, C, H, W]` row-major float32 model input.
    Normalized(Vec<f32>),
    /// 8-bit pixels and erase boxes, normalised by the consumer ([`PixelBatch::normalize`]).
    Pixels(PixelBatch),
}

impl Images {
    /// The model input, when the batch carries it.
    pub fn normalized(&self) -> Option<&[f32]> {
        match self {
            Images::Normalized(v) => Some(v),
            Images::Pixels(_) => None,
        }
    }

    /// The model input `[N, C, H, W]`: the floats as they are, or the pixels normalised on the
    /// host ([`PixelBatch::normalize`] with the loader's preprocessing, [`Loader::preprocess`]).
    pub fn to_input(&self, p: &Preprocess) -> Result<Cow<'_, [f32]>> {
        match self {
            Images::Normalized(v) => Ok(Cow::Borrowed(v)),
            Images::Pixels(px) => px.normalize(p).map(Cow::Owned),
        }
    }
}

/// One batch, ready for a tensor constructor.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The images: `[N, C, H, W]` model input, or pixels to normalise.
    pub images: Images,
    /// `[N]` class indices (the hard label of soft targets).
    pub labels: Vec<i64>,
    /// `[N, K]` target distributions when [`LoaderConfig::soft_targets`] is set.
    pub soft: Option<Vec<f32>>,
    /// `[N]` dataset indices of the samples.
    pub indices: Vec<usize>,
    /// `[N, C, H, W]` of the model input.
    pub shape: [usize; 4],
    /// Samples left out because they failed to load (only with `skip_bad`).
    pub skipped: Vec<SkippedItem>,
}

impl Batch {
    /// Number of samples `N`.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch has no samples (every sample of it was skipped).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// The batch loader; cheap to clone.
#[derive(Clone)]
pub struct Loader {
    inner: Arc<Inner>,
}

struct Inner {
    dataset: Arc<dyn Dataset>,
    indices: Vec<usize>,
    augmenter: Augmenter,
    cfg: LoaderConfig,
    workers: usize,
    weights: Vec<f64>,
    /// Image buffers handed back by [`Loader::recycle`].
    pool: Mutex<Pool>,
}

/// Recycled image buffers of both kinds of batch.
#[derive(Default)]
struct Pool {
    floats: Vec<Vec<f32>>,
    bytes: Vec<Vec<u8>>,
}

impl Loader {
    /// A loader over `dataset[indices]`. Fails on an index past the end, a zero batch size or
    /// invalid preprocessing or augmentation parameters.
    pub fn new(
        dataset: Arc<dyn Dataset>,
        indices: Vec<usize>,
        preprocess: Preprocess,
        augment: AugmentConfig,
        cfg: LoaderConfig,
    ) -> Result<Self> {
        if cfg.batch_size == 0 {
            return Err(Error::invalid("loader.batch_size", "0 (expected at least 1)"));
        }
        let len = dataset.len();
        if let Some(&index) = indices.iter().find(|&&i| i >= len) {
            return Err(Error::Index { index, len });
        }
        if let Some(s) = cfg.shard.filter(|s| s.world == 0 || s.rank >= s.world) {
            let what =
                format!("rank {} of {} (expected a rank below the world size)", s.rank, s.world);
            return Err(Error::invalid("loader.shard", what));
        }
        let k = dataset.classes().len();
        let mut counts = vec![0usize; k];
        for &i in &indices {
            let c = dataset.label(i);
            if c >= k {
                return Err(Error::invalid(
                    "loader label",
                    format!("{}: class {c} out of range for {k} classes", dataset.source(i)),
                ));
            }
            counts[c] += 1;
        }
        let weights = indices.iter().map(|&i| 1.0 / counts[dataset.label(i)] as f64).collect();
        let workers = if cfg.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            cfg.workers
        };
        let augmenter = Augmenter::new(preprocess, augment)?;
        let pool = Mutex::new(Pool::default());
        Ok(Loader {
            inner: Arc::new(Inner { dataset, indices, augmenter, cfg, workers, weights, pool }),
        })
    }

    /// Hands a consumed batch's image buffer back for reuse by later batches, which saves the
    /// page faults of a fresh allocation (a 256 × 3 × 112 × 112 float batch is 38 MB, its 8-bit
    /// gray pixels 3.2 MB). Optional.
    pub fn recycle(&self, batch: Batch) {
        let keep = 2 * self.inner.workers + 2;
        if let Ok(mut pool) = self.inner.pool.lock() {
            match batch.images {
                Images::Normalized(buf) if pool.floats.len() < keep => pool.floats.push(buf),
                Images::Pixels(px) if pool.bytes.len() < keep => pool.bytes.push(px.data),
                _ => {}
            }
        }
    }

    /// The preprocessing of the batches (what [`PixelBatch::normalize`] needs).
    pub fn preprocess(&self) -> &Preprocess {
        self.inner.augmenter.preprocess()
    }

    /// Batches per epoch.
    pub fn len(&self) -> usize {
        let (n, b) = (self.inner.epoch_len(), self.inner.cfg.batch_size);
        if self.inner.cfg.drop_last { n / b } else { n.div_ceil(b) }
    }

    /// Whether an epoch has no batches.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Worker threads an epoch starts (at most one per batch).
    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    /// The `[C, H, W]` shape of one image.
    pub fn image_shape(&self) -> [usize; 3] {
        let p = self.inner.augmenter.preprocess();
        [p.channels(), p.input_size, p.input_size]
    }

    /// The dataset indices of `epoch` in batch order (before `drop_last`).
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        self.inner.order(epoch).into_iter().map(|(i, _)| i).collect()
    }

    /// `epoch` in batch order (before `drop_last`): each sample's dataset index and the
    /// [`SampleKey`] its augmentation is drawn from (repeats drawn by balanced sampling get
    /// distinct keys). What another consumer of the same samples (the trainer's device path)
    /// needs to produce the batches this loader would.
    pub fn plan(&self, epoch: u64) -> Vec<(usize, SampleKey)> {
        let seed = self.inner.cfg.seed;
        let draws = self.inner.augmenter.config().draw_epoch(epoch);
        self.inner
            .order(epoch)
            .into_iter()
            .map(|(i, index)| (i, SampleKey { seed, epoch: draws, index }))
            .collect()
    }

    /// The dataset the loader reads.
    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.inner.dataset
    }

    /// The dataset indices the loader draws from.
    pub fn indices(&self) -> &[usize] {
        &self.inner.indices
    }

    /// The preprocessing and augmentation of the batches.
    pub fn augmenter(&self) -> &Augmenter {
        &self.inner.augmenter
    }

    /// The loader's options.
    pub fn config(&self) -> &LoaderConfig {
        &self.inner.cfg
    }

    /// Starts the workers of `epoch`; the iterator yields its batches in order. An item error
    /// (without `skip_bad`) is yielded in place of its batch and ends the epoch. Dropping the
    /// iterator stops the workers.
    pub fn epoch(&self, epoch: u64) -> Epoch {
        let inner = self.inner.clone();
        let order = Arc::new(inner.order(epoch));
        let total = self.len();
        let workers = inner.workers.min(total).max(1);
        let window = if inner.cfg.prefetch == 0 { 2 * workers } else { inner.cfg.prefetch };
        let gate = Arc::new((
            Mutex::new(Gate { next_job: 0, consumed: 0, cancel: false }),
            Condvar::new(),
        ));
        let (tx, rx) = mpsc::channel();
        let handles = (0..if total == 0 { 0 } else { workers })
            .map(|_| {
                let (inner, order, gate, tx) =
                    (inner.clone(), order.clone(), gate.clone(), tx.clone());
                std::thread::spawn(move || {
                    while let Some(b) = claim(&gate, total, window) {
                        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            inner.build(epoch, &order, b)
                        }));
                        let batch = built.unwrap_or_else(|_| {
                            Err(Error::Worker { msg: format!("panic while building batch {b}") })
                        });
                        if tx.send((b, batch)).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        Epoch { rx, gate, handles, next: 0, total, pending: BTreeMap::new(), done: false }
    }
}

impl Inner {
    /// Samples in one epoch (this rank's share with [`LoaderConfig::shard`]).
    fn epoch_len(&self) -> usize {
        let n = self.indices.len();
        self.cfg.shard.map_or(n, |s| s.len_of(n))
    }

    /// `(dataset index, augmentation index)` in epoch order. Repeats of a sample drawn by
    /// balanced sampling get distinct augmentation indices.
    fn order(&self, epoch: u64) -> Vec<(usize, u64)> {
        let seed = splitmix(splitmix(self.cfg.seed ^ 0x0123_4567_89ab_cdef) ^ epoch);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut order: Vec<usize> = if self.cfg.balanced && !self.indices.is_empty() {
            match WeightedIndex::new(&self.weights) {
                Ok(dist) => {
                    (0..self.indices.len()).map(|_| self.indices[dist.sample(&mut rng)]).collect()
                }
                Err(_) => self.indices.clone(),
            }
        } else {
            self.indices.clone()
        };
        if self.cfg.shuffle && !self.cfg.balanced {
            order.shuffle(&mut rng);
        }
        let mut seen: BTreeMap<usize, u64> = BTreeMap::new();
        let keyed: Vec<(usize, u64)> = order
            .into_iter()
            .map(|i| {
                let k = seen.entry(i).or_insert(0);
                let aug = i as u64 ^ (*k << 40);
                *k += 1;
                (i, aug)
            })
            .collect();
        match self.cfg.shard {
            Some(s) if !keyed.is_empty() => s.take(&keyed),
            _ => keyed,
        }
    }

    fn build(&self, epoch: u64, order: &[(usize, u64)], b: usize) -> Result<Batch> {
        let bs = self.cfg.batch_size;
        let items = &order[b * bs..((b + 1) * bs).min(order.len())];
        let per = self.augmenter.output_len();
        let k = self.dataset.classes().len();
        let (mut images, mut bytes) = (Vec::new(), Vec::new());
        if self.cfg.pixels {
            bytes = self.pool.lock().ok().and_then(|mut p| p.bytes.pop()).unwrap_or_default();
            bytes.clear();
        } else {
            images = self.pool.lock().ok().and_then(|mut p| p.floats.pop()).unwrap_or_default();
            images.clear();
            images.resize(items.len() * per, 0.0);
        }
        let (mut planes, mut erase) = (Vec::new(), Vec::new());
        let mut labels = Vec::with_capacity(items.len());
        let mut soft = self.cfg.soft_targets.then(|| Vec::with_capacity(items.len() * k));
        let mut indices = Vec::with_capacity(items.len());
        let mut skipped = Vec::new();
        let draws = self.augmenter.config().draw_epoch(epoch);
        for &(i, aug) in items {
            let key = SampleKey { seed: self.cfg.seed, epoch: draws, index: aug };
            let loaded = self.dataset.load(i).and_then(|s| {
                let target = check_target(&s.target, k, &s.source)?;
                if self.cfg.pixels {
                    let (p, e) = self.augmenter.apply_pixels_into(&s.image, key, &mut bytes)?;
                    planes.push(p);
                    erase.push(e);
                } else {
                    let slot = &mut images[indices.len() * per..(indices.len() + 1) * per];
                    self.augmenter.apply_into(&s.image, key, slot)?;
                }
                Ok(target)
            });
            match loaded {
                Ok(target) => {
                    labels.push(target.hard() as i64);
                    if let Some(soft) = soft.as_mut() {
                        match target {
                            Target::Class(c) => {
                                soft.extend((0..k).map(|j| if j == c { 1.0 } else { 0.0 }))
                            }
                            Target::Soft(p) => soft.extend_from_slice(&p),
                        }
                    }
                    indices.push(i);
                }
                Err(e) if self.cfg.skip_bad => skipped
                    .push(SkippedItem { source: self.dataset.source(i), reason: e.to_string() }),
                Err(e) => return Err(e),
            }
        }
        let p = self.augmenter.preprocess();
        let [c, h, w] = [p.channels(), p.input_size, p.input_size];
        let images = if self.cfg.pixels {
            Images::Pixels(PixelBatch::assemble(bytes, &planes, p.input_size, erase))
        } else {
            images.truncate(indices.len() * per);
            Images::Normalized(images)
        };
        Ok(Batch { images, shape: [indices.len(), c, h, w], labels, soft, indices, skipped })
    }
}

fn check_target(t: &Target, k: usize, source: &str) -> Result<Target> {
    let ok = match t {
        Target::Class(c) => *c < k,
        Target::Soft(p) => p.len() == k,
    };
    if ok {
        Ok(t.clone())
    } else {
        Err(Error::invalid("target", format!("{source}: {t:?} does not fit {k} classes")))
    }
}

struct Gate {
    next_job: usize,
    consumed: usize,
    cancel: bool,
}

/// Claims the next batch to build, waiting while `window` batches are ahead of the consumer.
fn claim(gate: &(Mutex<Gate>, Condvar), total: usize, window: usize) -> Option<usize> {
    let (lock, cv) = gate;
    let mut g = lock.lock().ok()?;
    loop {
        if g.cancel || g.next_job >= total {
            return None;
        }
        if g.next_job < g.consumed + window {
            g.next_job += 1;
            return Some(g.next_job - 1);
        }
        g = cv.wait(g).ok()?;
    }
}

/// The batches of one epoch, in order; see [`Loader::epoch`].
pub struct Epoch {
    rx: Receiver<(usize, Result<Batch>)>,
    gate: Arc<(Mutex<Gate>, Condvar)>,
    handles: Vec<JoinHandle<()>>,
    next: usize,
    total: usize,
    pending: BTreeMap<usize, Result<Batch>>,
    done: bool,
}

impl Iterator for Epoch {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.done || self.next >= self.total {
            return None;
        }
        loop {
            if let Some(r) = self.pending.remove(&self.next) {
                self.next += 1;
                if let Ok(mut g) = self.gate.0.lock() {
                    g.consumed = self.next;
                }
                self.gate.1.notify_all();
                self.done = r.is_err();
                return Some(r);
            }
            match self.rx.recv() {
                Ok((b, r)) => {
                    self.pending.insert(b, r);
                }
                Err(_) => {
                    self.done = true;
                    let msg =
                        format!("workers stopped before batch {} of {}", self.next, self.total);
                    return Some(Err(Error::Worker { msg }));
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = if self.done { 0 } else { self.total - self.next };
        (0, Some(left))
    }
}

impl Drop for Epoch {
    fn drop(&mut self) {
        if let Ok(mut g) = self.gate.0.lock() {
            g.cancel = true;
        }
        self.gate.1.notify_all();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}
