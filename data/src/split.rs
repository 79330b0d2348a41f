//! Train/val/test plans: the official splits, a seeded stratified split, or a seeded k-fold
//! split grouped by subject. A [`SplitPlan`] is plain data (serde JSON) so a run directory
//! records exactly which samples trained and which evaluated.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dataset::{Dataset, Exclusion, Sample, SkippedItem, SplitName};
use crate::error::{Error, Result};
use crate::labels::Emotion;

/// Version of the [`SplitPlan`] JSON layout.
pub const PLAN_VERSION: u32 = 1;

/// How a plan was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Strategy {
    /// The dataset's own splits; each part indexes the dataset opened for that split.
    Official,
    /// Per class, a seeded shuffle, then the first `val` and `test` fractions (rounded) of
    /// each class go to val and test; all parts index one pool.
    Stratified {
        /// Fraction of each class for val, in [0, 1).
        val: f64,
        /// Fraction of each class for test, in [0, 1); `val + test < 1`.
        test: f64,
        /// Seed of the shuffle.
        seed: u64,
    },
    /// Groups (subjects) dealt into `k` folds of near-equal size from a seeded shuffle; fold
    /// `fold` is test, the others train. No group is in two folds.
    GroupedKFold {
        /// Number of folds, at least 2.
        k: usize,
        /// The test fold, `0..k`.
        fold: usize,
        /// Seed of the shuffle.
        seed: u64,
    },
}

/// The samples of one split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitPart {
    /// Which split.
    pub split: SplitName,
    /// Indices into the dataset the part is drawn from, ascending.
    pub indices: Vec<usize>,
    /// SHA-256 (hex) of the sources of `indices`, in order, one per line: checks that a saved
    /// plan is applied to the same listing.
    pub fingerprint: String,
}

/// A train/val/test plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitPlan {
    /// [`PLAN_VERSION`].
    pub version: u32,
    /// How the plan was made.
    pub strategy: Strategy,
    /// The non-empty parts, in split order.
    pub parts: Vec<SplitPart>,
    /// Samples taken out of the training part for calibrating the softmax temperature
    /// ([`SplitPlan::hold_out`]): never trained on, never used for model selection. Their
    /// indices index the same dataset as the `train` part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Holdout>,
    /// One fold of the training part left out of training ([`SplitPlan::leave_out_fold`]):
    /// what makes a cross-fitted teacher, whose outputs on these samples are out-of-fold. Its
    /// indices index the same dataset as the `train` part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_out: Option<LeftOut>,
}

/// The fold a [`SplitPlan`] leaves out of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeftOut {
    /// Number of folds the training part was dealt into.
    pub folds: usize,
    /// The fold left out, `0..folds`.
    pub fold: usize,
    /// Seed of the deal.
    pub seed: u64,
    /// Indices into the dataset the `train` part indexes, ascending.
    pub indices: Vec<usize>,
    /// SHA-256 of the samples' sources, in index order.
    pub fingerprint: String,
}

/// The calibration hold-out of a [`SplitPlan`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holdout {
    /// Fraction of each class of the training part that was held out.
    pub fraction: f64,
    /// Seed of the draw.
    pub seed: u64,
    /// Indices into the dataset the `train` part indexes, ascending.
    pub indices: Vec<usize>,
    /// SHA-256 of the samples' sources, in index order.
    pub fingerprint: String,
}

/// The longest folder prefix (ending in `/`) that every source of `ds` starts with: where the
/// dataset happens to lie on this machine.
fn location(ds: &dyn Dataset) -> String {
    let Some(first) = (0..ds.len()).next().map(|i| ds.source(i)) else { return String::new() };
    let mut common = first.len();
    for i in 1..ds.len() {
        let s = ds.source(i);
        common = first.bytes().zip(s.bytes()).take(common).take_while(|(a, b)| a == b).count();
    }
    // Cut after a `/` (ASCII, so always a character boundary).
    match first.as_bytes()[..common].iter().rposition(|&b| b == b'/') {
        Some(k) => first[..=k].to_string(),
        None => String::new(),
    }
}

/// SHA-256 of the sources of `indices` in `ds`, relative to the dataset's [`location`], so a
/// plan made on one machine (a GPU server) checks against the same dataset copied elsewhere.
fn fingerprint(ds: &dyn Dataset, indices: &[usize]) -> String {
    let base = location(ds);
    let mut h = Sha256::new();
    for &i in indices {
        let s = ds.source(i);
        h.update(s.strip_prefix(base.as_str()).unwrap_or(&s).as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn part(ds: &dyn Dataset, split: SplitName, mut indices: Vec<usize>) -> SplitPart {
    indices.sort_unstable();
    let fingerprint = fingerprint(ds, &indices);
    SplitPart { split, indices, fingerprint }
}

impl SplitPlan {
    /// The official splits: every sample of each split's own dataset.
    pub fn official(splits: &[(SplitName, &dyn Dataset)]) -> SplitPlan {
        let parts = splits.iter().map(|(s, ds)| part(*ds, *s, (0..ds.len()).collect())).collect();
        SplitPlan {
            version: PLAN_VERSION,
            strategy: Strategy::Official,
            parts,
            calibration: None,
            left_out: None,
        }
    }

    /// Moves `fraction` of each class of the `train` part (drawn with `seed`) into the
    /// calibration hold-out. `ds` is the dataset the `train` part indexes (the pool, or the
    /// official training split). Fails when the plan has no `train` part, already has a
    /// hold-out, or `fraction` is not in `(0, 1)` or leaves a class of the training part empty.
    pub fn hold_out(&mut self, ds: &dyn Dataset, fraction: f64, seed: u64) -> Result<()> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(Error::invalid(
                "calibration fraction",
                format!("must be in (0, 1) (got {fraction})"),
            ));
        }
        if self.calibration.is_some() {
            return Err(Error::invalid("split plan", "it already has a calibration hold-out"));
        }
        let train = self.train_part_mut("hold samples out of")?;
        let (mut keep, mut held) = (Vec::new(), Vec::new());
        for (class, idx) in shuffled_by_class(ds, train.indices.iter().copied(), seed) {
            let n = ((idx.len() as f64 * fraction).round() as usize).max(1);
            if n >= idx.len() {
                let name = ds.classes().get(class).map_or("?", |c| c.name());
                return Err(Error::invalid(
                    "calibration fraction",
                    format!(
                        "holding out {fraction} of class {name} ({} training samples) leaves \
                         none to train on",
                        idx.len()
                    ),
                ));
            }
            held.extend_from_slice(&idx[..n]);
            keep.extend_from_slice(&idx[n..]);
        }
        *train = part(ds, SplitName::Train, keep);
        let held = part(ds, SplitName::Train, held);
        self.calibration =
            Some(Holdout { fraction, seed, indices: held.indices, fingerprint: held.fingerprint });
        Ok(())
    }

    /// Leaves fold `fold` of `folds` out of the `train` part: per class (in class order),
    /// the part's samples are shuffled with `seed` and dealt round-robin into `folds` folds
    /// (continuing the deal from one class to the next, so folds differ in size by at most one
    /// sample overall and one per class), and fold `fold`'s samples are no longer trained on.
    /// `folds` runs with `fold = 0..folds` and the same seed leave out disjoint folds whose
    /// union is the training part: teachers trained so (cross-fitting) give every training
    /// sample outputs of teachers that never saw it. Apply it after
    /// [`SplitPlan::hold_out`]. Fails when the plan has no `train` part or already leaves a
    /// fold out, `folds < 2`, `fold ≥ folds`, or a class has fewer than `folds` samples.
    pub fn leave_out_fold(
        &mut self,
        ds: &dyn Dataset,
        folds: usize,
        fold: usize,
        seed: u64,
    ) -> Result<()> {
        if folds < 2 || fold >= folds {
            return Err(Error::invalid(
                "cross-fit fold",
                format!("fold {fold} of {folds}: need at least 2 folds and 0 <= fold < folds"),
            ));
        }
        if self.left_out.is_some() {
            return Err(Error::invalid("split plan", "it already leaves a fold out"));
        }
        let train = self.train_part_mut("leave a fold out of")?;
        let (mut keep, mut left) = (Vec::new(), Vec::new());
        let mut next = 0;
        for (class, idx) in shuffled_by_class(ds, train.indices.iter().copied(), seed) {
            if idx.len() < folds {
                let name = ds.classes().get(class).map_or("?", |c| c.name());
                return Err(Error::invalid(
                    "cross-fit folds",
                    format!(
                        "class {name} has {} training samples, fewer than {folds} folds",
                        idx.len()
                    ),
                ));
            }
            for i in idx {
                if next % folds == fold {
                    left.push(i)
                } else {
                    keep.push(i)
                }
                next += 1;
            }
        }
        *train = part(ds, SplitName::Train, keep);
        let left = part(ds, SplitName::Train, left);
        self.left_out = Some(LeftOut {
            folds,
            fold,
            seed,
            indices: left.indices,
            fingerprint: left.fingerprint,
        });
        Ok(())
    }

    /// The `train` part, to `purpose` (in the error when there is none).
    fn train_part_mut(&mut self, purpose: &str) -> Result<&mut SplitPart> {
        self.parts
            .iter_mut()
            .find(|p| p.split == SplitName::Train)
            .ok_or_else(|| Error::invalid("split plan", format!("no `train` part to {purpose}")))
    }

    /// The calibration hold-out as a dataset over `ds` (the dataset the `train` part indexes).
    /// Fails when the plan has none or `ds` is not the listing it was drawn from.
    pub fn calibration_subset(&self, ds: Arc<dyn Dataset>) -> Result<Subset> {
        let h = self.calibration.as_ref().ok_or_else(|| {
            Error::invalid(
                "split plan",
                "it has no calibration hold-out (train with data.calib_fraction to make one)",
            )
        })?;
        checked_subset(&h.indices, &h.fingerprint, ds, "calibration hold-out")
    }

    /// The part of `split`, if the plan has one.
    pub fn part(&self, split: SplitName) -> Option<&SplitPart> {
        self.parts.iter().find(|p| p.split == split)
    }

    /// The samples of `split` as a dataset over `ds` (the pool, or for
    /// [`Strategy::Official`] the dataset opened for that split). Fails when the plan has no
    /// such part or `ds` is not the listing the plan was made from.
    pub fn subset(&self, split: SplitName, ds: Arc<dyn Dataset>) -> Result<Subset> {
        let p = self.part(split).ok_or_else(|| {
            Error::invalid("split", format!("the split plan has no `{split}` part"))
        })?;
        checked_subset(&p.indices, &p.fingerprint, ds, &format!("`{split}` part"))
    }

    /// Writes the plan as pretty JSON, atomically ([`fer_checkpoint::write_atomic`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|source| Error::Json { path: path.to_path_buf(), source })?;
        Ok(fer_checkpoint::write_atomic(path, text.as_bytes())?)
    }

    /// Reads a plan written by [`SplitPlan::save`].
    pub fn load(path: &Path) -> Result<SplitPlan> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let plan: SplitPlan = serde_json::from_str(&text)
            .map_err(|source| Error::Json { path: path.to_path_buf(), source })?;
        if plan.version != PLAN_VERSION {
            let msg = format!("plan version {}, this build reads {PLAN_VERSION}", plan.version);
            return Err(Error::format(path, msg));
        }
        Ok(plan)
    }
}

/// `indices` of `ds` after checking they are in range and match `fingerprint`.
fn checked_subset(
    indices: &[usize],
    fingerprint_: &str,
    ds: Arc<dyn Dataset>,
    what: &str,
) -> Result<Subset> {
    if let Some(&bad) = indices.iter().find(|&&i| i >= ds.len()) {
        return Err(Error::Index { index: bad, len: ds.len() });
    }
    if fingerprint(ds.as_ref(), indices) != fingerprint_ {
        return Err(Error::invalid(
            "split plan",
            format!("the {what} was made from a different listing of the dataset"),
        ));
    }
    Ok(Subset { inner: ds, indices: indices.to_vec() })
}

/// `indices` grouped by class (in class order), each group shuffled by one generator seeded
/// with `seed`: the draw behind every stratified split.
fn shuffled_by_class(
    ds: &dyn Dataset,
    indices: impl IntoIterator<Item = usize>,
    seed: u64,
) -> Vec<(usize, Vec<usize>)> {
    let mut by_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in indices {
        by_class.entry(ds.label(i)).or_default().push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    by_class
        .into_iter()
        .map(|(class, mut idx)| {
            idx.shuffle(&mut rng);
            (class, idx)
        })
        .collect()
}

/// A seeded split stratified by class: each class is divided in the same proportions.
pub fn stratified(ds: &dyn Dataset, val: f64, test: f64, seed: u64) -> Result<SplitPlan> {
    let ok = |f: f64| (0.0..1.0).contains(&f);
    if !ok(val) || !ok(test) || val + test >= 1.0 {
        return Err(Error::invalid(
            "split fractions",
            format!("val {val} and test {test} must each be in [0, 1) with val + test < 1"),
        ));
    }
    let (mut tr, mut va, mut te) = (Vec::new(), Vec::new(), Vec::new());
    for (_, idx) in shuffled_by_class(ds, 0..ds.len(), seed) {
        let n = idx.len() as f64;
        let nv = (n * val).round() as usize;
        let nt = ((n * test).round() as usize).min(idx.len() - nv);
        va.extend_from_slice(&idx[..nv]);
        te.extend_from_slice(&idx[nv..nv + nt]);
        tr.extend_from_slice(&idx[nv + nt..]);
    }
    let parts = [(SplitName::Train, tr), (SplitName::Val, va), (SplitName::Test, te)]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(s, v)| part(ds, s, v))
        .collect();
    Ok(SplitPlan {
        version: PLAN_VERSION,
        strategy: Strategy::Stratified { val, test, seed },
        parts,
        calibration: None,
        left_out: None,
    })
}

/// Deals the groups of `ds` into `k` folds: groups are shuffled with `seed`, then taken
/// largest first, each into the fold with the fewest samples so far. Returns the sample
/// indices of each fold (ascending). Every sample must have a group.
pub fn grouped_folds(ds: &dyn Dataset, k: usize, seed: u64) -> Result<Vec<Vec<usize>>> {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for i in 0..ds.len() {
        let g = ds.group(i).ok_or_else(|| {
            Error::invalid(
                "grouped split",
                format!("sample {} has no group (subject id)", ds.source(i)),
            )
        })?;
        groups.entry(g).or_default().push(i);
    }
    if k < 2 || k > groups.len() {
        return Err(Error::invalid(
            "split.k",
            format!("{k} folds; need 2 to {} (the number of groups)", groups.len()),
        ));
    }
    let mut order: Vec<Vec<usize>> = groups.into_values().collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    order.shuffle(&mut rng);
    order.sort_by_key(|g| std::cmp::Reverse(g.len()));
    let mut folds: Vec<Vec<usize>> = vec![Vec::new(); k];
    for g in order {
        let f = (0..k).min_by_key(|&f| (folds[f].len(), f)).unwrap_or(0);
        folds[f].extend(g);
    }
    for f in &mut folds {
        f.sort_unstable();
    }
    Ok(folds)
}

/// Fold `fold` of a seeded `k`-fold split grouped by [`Dataset::group`]: that fold is test,
/// the rest train. No group appears in both.
pub fn grouped_kfold(ds: &dyn Dataset, k: usize, fold: usize, seed: u64) -> Result<SplitPlan> {
    if fold >= k {
        return Err(Error::invalid("split.fold", format!("fold {fold} of {k}; use 0..{k}")));
    }
    let folds = grouped_folds(ds, k, seed)?;
    let test = folds[fold].clone();
    let train: Vec<usize> =
        folds.iter().enumerate().filter(|(f, _)| *f != fold).flat_map(|(_, v)| v.clone()).collect();
    let parts = vec![part(ds, SplitName::Train, train), part(ds, SplitName::Test, test)];
    Ok(SplitPlan {
        version: PLAN_VERSION,
        strategy: Strategy::GroupedKFold { k, fold, seed },
        parts,
        calibration: None,
        left_out: None,
    })
}

/// Some samples of another dataset, chosen by a [`SplitPlan`].
#[derive(Clone)]
pub struct Subset {
    inner: Arc<dyn Dataset>,
    indices: Vec<usize>,
}

impl std::fmt::Debug for Subset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subset")
            .field("len", &self.indices.len())
            .field("of", &self.inner.len())
            .finish()
    }
}

impl Subset {
    /// The subset of `inner` at `indices` (each must be `< inner.len()`).
    pub fn new(inner: Arc<dyn Dataset>, indices: Vec<usize>) -> Result<Subset> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= inner.len()) {
            return Err(Error::Index { index: bad, len: inner.len() });
        }
        Ok(Subset { inner, indices })
    }

    /// The indices into the underlying dataset.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
}

impl Dataset for Subset {
    fn classes(&self) -> &[Emotion] {
        self.inner.classes()
    }
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn label(&self, i: usize) -> usize {
        self.inner.label(self.indices[i])
    }
    fn group(&self, i: usize) -> Option<&str> {
        self.inner.group(self.indices[i])
    }
    fn source(&self, i: usize) -> String {
        self.inner.source(self.indices[i])
    }
    fn load(&self, i: usize) -> Result<Sample> {
        let j = *self.indices.get(i).ok_or(Error::Index { index: i, len: self.indices.len() })?;
        self.inner.load(j)
    }
    /// The underlying dataset's skipped items (they belong to no split).
    fn skipped(&self) -> &[SkippedItem] {
        self.inner.skipped()
    }
    /// The underlying dataset's exclusions.
    fn excluded(&self) -> &[Exclusion] {
        self.inner.excluded()
    }
}
