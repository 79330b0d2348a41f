//! The config-facing declaration of a stage's loss as a weighted sum of terms.

use tch::{Kind, Tensor};

use super::{
    DkdParams, Target, cross_entropy, dkd_loss_weighted, focal_loss, kd_ensemble_loss_weighted,
    kd_loss, rkd_angle, rkd_distance, standardize_logits,
};
use crate::{Error, Result};

/// One term of a stage's loss; the stage's loss is `Σ weight · term`.
///
/// In a config (internally tagged by `kind`):
/// ```toml
/// [[loss]]
/// kind = "kd"
/// weight = 0.9
/// temperature = 4.0
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LossTerm {
    /// Cross-entropy of the student's logits against the batch's (hard or soft) labels.
    CrossEntropy {
        /// Multiplier of the term in the stage's loss, finite and `≥ 0` (required).
        weight: f64,
        /// Label smoothing ε in `[0, 1)`: the target becomes `(1 − ε)·target + ε/K`.
        /// Default 0 (none).
        #[serde(default)]
        label_smoothing: f64,
        /// Focal loss's γ (0, or at least 1): each class's term is multiplied by
        /// `(1 − p_k)^γ` ([`super::focal_loss`]), which stops pushing confident predictions
        /// towards certainty (Mukhoti et al. 2020 use 3 for calibration). Not with class
        /// weights. Default 0 (plain cross-entropy).
        #[serde(default, skip_serializing_if = "is_zero")]
        focal_gamma: f64,
    },
    /// Hinton KD: `T² · KL(softmax(teacher/T) ‖ softmax(student/T))`, batch mean.
    Kd {
        /// Multiplier of the term in the stage's loss, finite and `≥ 0` (required).
        weight: f64,
        /// Softmax temperature `T`, finite and `> 0` (required; 4 is a common choice).
        temperature: f64,
        /// Name of the stage's teacher whose logits are distilled. Default: none, which is
        /// valid only when the stage has exactly one teacher.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        teacher: Option<String>,
        /// Standardise the student's and the teachers' logits first (Sun et al. 2024,
        /// [`super::standardize_logits`]), so that only the shape of the distributions is
        /// compared. Default false.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        standardize: bool,
    },
    /// Hinton KD against an ensemble: `T² · KL(p̄ ‖ softmax(student/T))` with `p̄` the mean of
    /// the named teachers' `softmax(teacher/T)`, batch mean.
    KdEnsemble {
        /// Multiplier of the term in the stage's loss, finite and `≥ 0` (required).
        weight: f64,
        /// Softmax temperature `T`, finite and `> 0` (required), applied to every teacher.
        temperature: f64,
        /// Names of the stage's teachers averaged, at least two, without repeats (required).
        teachers: Vec<String>,
        /// Standardise the student's and the teachers' logits first (Sun et al. 2024,
        /// [`super::standardize_logits`]), so that only the shape of the distributions is
        /// compared. Default false.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        standardize: bool,
    },
    /// Decoupled KD (Zhao et al. 2022): `T² · (α · TCKD + β · NCKD)`, batch mean, against one
    /// teacher or the mean of several teachers' `softmax(teacher/T)`; needs hard labels
    /// ([`super::dkd_loss`]).
    Dkd {
        /// Multiplier of the term in the stage's loss, finite and `≥ 0` (required).
        weight: f64,
        /// Softmax temperature `T`, finite and `> 0` (required; the paper uses 4 on CIFAR-100).
        temperature: f64,
        /// Weight `α` of the target-class term, finite and `≥ 0`. Default 1 (the paper's).
        #[serde(default = "one")]
        alpha: f64,
        /// Weight `β` of the non-target-class term, finite and `≥ 0` (required: the paper
        /// uses 8 on CIFAR-100 and 0.5 on ImageNet).
        beta: f64,
        /// Names of the stage's teachers whose mean distribution is distilled, without
        /// repeats. Default: none, which is valid only when the stage has exactly one teacher.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        teachers: Vec<String>,
        /// Standardise the student's and the teachers' logits first (Sun et al. 2024,
        /// [`super::standardize_logits`]), so that only the shape of the distributions is
        /// compared. Default false.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        standardize: bool,
    },
    /// RKD distance loss on the embeddings (penultimate features), Park et al. 2019.
    RkdDistance {
        /// Multiplier of the term in the stage's loss, finite and `≥ 0` (required; the paper
        /// uses 25 for the distance term alongside a task loss).
        weight: f64,
        /// Name of the stage's teacher whose embedding is distilled. Default: none, which is
        /// valid only when the stage has exactly one teacher.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        teacher: Option<String>,
    },
    /// RKD angle loss on the embeddings (penultimate features), Park et al. 2019.
    RkdAngle {
        /// Multiplier of the term in the stage's loss, finite and `≥ 0` (required; the paper
        /// uses 50 for the angle term alongside a task loss).
        weight: f64,
        /// Name of the stage's teacher whose embedding is distilled. Default: none, which is
        /// valid only when the stage has exactly one teacher.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        teacher: Option<String>,
    },
}

/// `alpha`'s default.
fn one() -> f64 {
    1.0
}

/// Whether an optional number is at its default, 0 (not written into resolved configs).
fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl LossTerm {
    /// The `kind` tag as written in configs (`cross_entropy`, `kd`, `kd_ensemble`, `dkd`,
    /// `rkd_distance`, `rkd_angle`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            LossTerm::CrossEntropy { .. } => "cross_entropy",
            LossTerm::Kd { .. } => "kd",
            LossTerm::KdEnsemble { .. } => "kd_ensemble",
            LossTerm::Dkd { .. } => "dkd",
            LossTerm::RkdDistance { .. } => "rkd_distance",
            LossTerm::RkdAngle { .. } => "rkd_angle",
        }
    }

    /// The term's multiplier.
    pub fn weight(&self) -> f64 {
        match self {
            LossTerm::CrossEntropy { weight, .. }
            | LossTerm::Kd { weight, .. }
            | LossTerm::KdEnsemble { weight, .. }
            | LossTerm::Dkd { weight, .. }
            | LossTerm::RkdDistance { weight, .. }
            | LossTerm::RkdAngle { weight, .. } => *weight,
        }
    }

    /// The one teacher the term names, if any (`None` for cross-entropy and for the terms
    /// that take a list, `kd_ensemble` and `dkd`: [`LossTerm::teacher_names`]).
    pub fn teacher_opt(&self) -> Option<&str> {
        match self {
            LossTerm::CrossEntropy { .. } | LossTerm::KdEnsemble { .. } | LossTerm::Dkd { .. } => {
                None
            }
            LossTerm::Kd { teacher, .. }
            | LossTerm::RkdDistance { teacher, .. }
            | LossTerm::RkdAngle { teacher, .. } => teacher.as_deref(),
        }
    }

    /// Every teacher the term names (empty when it names none and reads the only teacher).
    pub fn teacher_names(&self) -> Vec<&str> {
        match self {
            LossTerm::KdEnsemble { teachers, .. } | LossTerm::Dkd { teachers, .. } => {
                teachers.iter().map(String::as_str).collect()
            }
            _ => self.teacher_opt().into_iter().collect(),
        }
    }

    /// Whether the term distils a teacher (so the stage needs at least one).
    pub fn needs_teacher(&self) -> bool {
        !matches!(self, LossTerm::CrossEntropy { .. })
    }

    /// Whether the term reads the batch's hard labels (so mixup, CutMix and soft labels, which
    /// replace them by distributions, cannot be used with it).
    pub fn needs_hard_labels(&self) -> bool {
        matches!(self, LossTerm::Dkd { .. })
    }

    /// Whether the term compares embeddings (so student and teacher must expose one).
    pub fn needs_embedding(&self) -> bool {
        matches!(self, LossTerm::RkdDistance { .. } | LossTerm::RkdAngle { .. })
    }

    /// All semantic problems of the term, each starting with the field it concerns, e.g.
    /// `temperature: must be > 0 (got 0)`. Empty when the term is valid. The caller prefixes
    /// the term's position (`loss[2].`).
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let weight = self.weight();
        if !(weight.is_finite() && weight >= 0.0) {
            problems.push(format!("weight: must be a finite number >= 0 (got {weight})"));
        }
        match self {
            LossTerm::CrossEntropy { label_smoothing, focal_gamma, .. } => {
                if !(0.0..1.0).contains(label_smoothing) {
                    problems.push(format!(
                        "label_smoothing: must be in [0, 1) (got {label_smoothing})"
                    ));
                }
                if !(*focal_gamma == 0.0 || (focal_gamma.is_finite() && *focal_gamma >= 1.0)) {
                    problems.push(format!(
                        "focal_gamma: must be 0 or a finite number >= 1 (got {focal_gamma})"
                    ));
                }
            }
            LossTerm::Kd { temperature, .. }
            | LossTerm::KdEnsemble { temperature, .. }
            | LossTerm::Dkd { temperature, .. } => {
                if !(temperature.is_finite() && *temperature > 0.0) {
                    problems.push(format!(
                        "temperature: must be a finite number > 0 (got {temperature})"
                    ));
                }
            }
            LossTerm::RkdDistance { .. } | LossTerm::RkdAngle { .. } => {}
        }
        if let LossTerm::Dkd { alpha, beta, .. } = self {
            for (name, w) in [("alpha", alpha), ("beta", beta)] {
                if !(w.is_finite() && *w >= 0.0) {
                    problems.push(format!("{name}: must be a finite number >= 0 (got {w})"));
                }
            }
        }
        if let LossTerm::KdEnsemble { teachers, .. } | LossTerm::Dkd { teachers, .. } = self {
            if matches!(self, LossTerm::KdEnsemble { .. }) && teachers.len() < 2 {
                problems.push(format!(
                    "teachers: an ensemble needs at least two teachers (got {}); use kind = \"kd\" for one",
                    teachers.len()
                ));
            }
            for (i, t) in teachers.iter().enumerate() {
                if t.trim().is_empty() {
                    problems.push(format!("teachers[{i}]: must not be empty"));
                } else if teachers[..i].contains(t) {
                    problems.push(format!("teachers[{i}]: {t:?} is listed twice"));
                }
            }
        }
        if self.teacher_opt().is_some_and(|t| t.trim().is_empty()) {
            problems.push("teacher: must not be empty (omit it to use the only teacher)".into());
        }
        problems
    }
}

/// What one teacher produced for the batch.
#[derive(Debug, Clone, Copy)]
pub struct TeacherOutputs<'a> {
    /// The teacher's name in the stage (what [`LossTerm`]'s `teacher` refers to).
    pub name: &'a str,
    /// Its logits `[N, K]`, when a term needs them.
    pub logits: Option<&'a Tensor>,
    /// Its embedding `[N, Dt]`, when a term needs it.
    pub embedding: Option<&'a Tensor>,
    /// Its weight per sample `[N]` in the mean of a `kd_ensemble` or `dkd` term: 0 on the
    /// samples it must not be read on (it trained on them, `[[teachers]] out_of_fold`), 1
    /// elsewhere. `None`: 1 everywhere. A single-teacher term (`kd`, RKD) refuses a weighted
    /// teacher.
    pub weight: Option<&'a Tensor>,
}

/// Everything the loss terms of a stage may read for one batch.
#[derive(Debug, Clone, Copy)]
pub struct LossInputs<'a> {
    /// The student's logits `[N, K]`.
    pub student_logits: &'a Tensor,
    /// The student's embedding `[N, Ds]` (needed by the RKD terms).
    pub student_embedding: Option<&'a Tensor>,
    /// The batch's labels (needed by cross-entropy).
    pub target: Option<Target<'a>>,
    /// Per-class weights `[K]` of cross-entropy, if any.
    pub class_weights: Option<&'a Tensor>,
    /// The stage's teachers, by name.
    pub teachers: &'a [TeacherOutputs<'a>],
}

/// The stage's loss `Σ weight · term` and each term's unweighted value for logging.
///
/// The per-term values are detached 0-d tensors on the student's device, labelled by kind
/// (and teacher, e.g. `kd[resnet50]`; a repeated label gets `#<index>`): reading them is a
/// host sync, which the trainer does only every few steps. Terms are validated first; an
/// invalid or empty list, a missing target, teacher, logits or embedding is an
/// [`Error::Input`] naming `loss[i]`.
pub fn total_loss(
    terms: &[LossTerm],
    inputs: &LossInputs<'_>,
) -> Result<(Tensor, Vec<(String, Tensor)>)> {
    if terms.is_empty() {
        return Err(Error::Input("loss: no loss terms declared".into()));
    }
    let mut total: Option<Tensor> = None;
    let mut logs: Vec<(String, Tensor)> = Vec::with_capacity(terms.len());
    for (i, term) in terms.iter().enumerate() {
        if let Some(problem) = term.validate().into_iter().next() {
            return Err(Error::Input(format!("loss[{i}].{problem}")));
        }
        let value = term_value(i, term, inputs)?;
        let weighted = &value * term.weight();
        total = Some(match total {
            Some(t) => t + weighted,
            None => weighted,
        });
        let named = term.teacher_names();
        let mut label = if named.is_empty() {
            term.kind_name().to_owned()
        } else {
            format!("{}[{}]", term.kind_name(), named.join("+"))
        };
        if logs.iter().any(|(l, _)| *l == label) {
            label = format!("{label}#{i}");
        }
        logs.push((label, value.detach()));
    }
    let total = total.ok_or_else(|| Error::Input("loss: no loss terms declared".into()))?;
    Ok((total, logs))
}

/// The unweighted value of term `i`.
fn term_value(i: usize, term: &LossTerm, inputs: &LossInputs<'_>) -> Result<Tensor> {
    let at = |e: Error| match e {
        Error::Input(msg) => Error::Input(format!("loss[{i}] ({}): {msg}", term.kind_name())),
        other => other,
    };
    match term {
        LossTerm::CrossEntropy { label_smoothing, focal_gamma, .. } => {
            let target = inputs.target.ok_or_else(|| {
                Error::Input(format!("loss[{i}] (cross_entropy) needs labels; the batch has none"))
            })?;
            if *focal_gamma == 0.0 {
                return cross_entropy(
                    inputs.student_logits,
                    target,
                    *label_smoothing,
                    inputs.class_weights,
                )
                .map_err(at);
            }
            if inputs.class_weights.is_some() {
                return Err(Error::Input(format!(
                    "loss[{i}] (cross_entropy): focal_gamma cannot be combined with class weights"
                )));
            }
            focal_loss(inputs.student_logits, target, *focal_gamma, *label_smoothing).map_err(at)
        }
        LossTerm::Kd { temperature, teacher, standardize, .. } => {
            let t = find_teacher(i, term, teacher.as_deref(), inputs.teachers)?;
            unweighted(i, term, t)?;
            let logits = t.logits.ok_or_else(|| {
                Error::Input(format!("loss[{i}] (kd): teacher `{}` gives no logits", t.name))
            })?;
            let (s, t) =
                standardized(*standardize, inputs.student_logits, &[logits]).map_err(at)?;
            kd_loss(&s, &t[0], *temperature).map_err(at)
        }
        LossTerm::KdEnsemble { temperature, teachers, standardize, .. } => {
            let (logits, w) = teacher_logits(i, term, teachers, inputs.teachers)?;
            let (s, t) = standardized(*standardize, inputs.student_logits, &logits).map_err(at)?;
            kd_ensemble_loss_weighted(&s, &t.iter().collect::<Vec<_>>(), w.as_ref(), *temperature)
                .map_err(at)
        }
        LossTerm::Dkd { temperature, alpha, beta, teachers, standardize, .. } => {
            let (logits, w) = teacher_logits(i, term, teachers, inputs.teachers)?;
            let (s, t) = standardized(*standardize, inputs.student_logits, &logits).map_err(at)?;
            let logits: Vec<&Tensor> = t.iter().collect();
            let labels = match inputs.target {
                Some(Target::Hard(y)) => y,
                Some(Target::Soft(_)) => {
                    return Err(Error::Input(format!(
                        "loss[{i}] (dkd) needs hard labels; the batch's are distributions (mixup, CutMix or soft labels)"
                    )));
                }
                None => {
                    return Err(Error::Input(format!(
                        "loss[{i}] (dkd) needs labels; the batch has none"
                    )));
                }
            };
            let params = DkdParams { temperature: *temperature, alpha: *alpha, beta: *beta };
            dkd_loss_weighted(&s, &logits, w.as_ref(), labels, params).map_err(at)
        }
        LossTerm::RkdDistance { teacher, .. } | LossTerm::RkdAngle { teacher, .. } => {
            let t = find_teacher(i, term, teacher.as_deref(), inputs.teachers)?;
            unweighted(i, term, t)?;
            let kind = term.kind_name();
            let t_emb = t.embedding.ok_or_else(|| {
                Error::Input(format!("loss[{i}] ({kind}): teacher `{}` gives no embedding", t.name))
            })?;
            let s_emb = inputs.student_embedding.ok_or_else(|| {
                Error::Input(format!("loss[{i}] ({kind}) needs the student's embedding"))
            })?;
            match term {
                LossTerm::RkdDistance { .. } => rkd_distance(s_emb, t_emb).map_err(at),
                _ => rkd_angle(s_emb, t_emb).map_err(at),
            }
        }
    }
}

/// The student's and the teachers' logits as a response term reads them: standardised when
/// `standardize` is set ([`standardize_logits`]), else as they are (shallow clones).
fn standardized(
    standardize: bool,
    student: &Tensor,
    teachers: &[&Tensor],
) -> Result<(Tensor, Vec<Tensor>)> {
    if !standardize {
        return Ok((student.shallow_clone(), teachers.iter().map(|t| t.shallow_clone()).collect()));
    }
    let teachers = tch::no_grad(|| {
        teachers.iter().map(|t| standardize_logits(&t.detach())).collect::<Result<Vec<_>>>()
    })?;
    Ok((standardize_logits(student)?, teachers))
}

/// A single-teacher term cannot leave its teacher out of some samples.
fn unweighted(i: usize, term: &LossTerm, t: &TeacherOutputs<'_>) -> Result<()> {
    match t.weight {
        None => Ok(()),
        Some(_) => Err(Error::Input(format!(
            "loss[{i}] ({}): teacher `{}` is read out-of-fold only; a single-teacher term has \
             no target on the samples it trained on",
            term.kind_name(),
            t.name
        ))),
    }
}

/// The logits of the teachers a list term names (`kd_ensemble`, `dkd`): each named one in
/// order, or the only one when the list is empty; and, when any of them is weighted per
/// sample ([`TeacherOutputs::weight`]), their weights `[N, M]` (1 for the unweighted).
fn teacher_logits<'t>(
    i: usize,
    term: &LossTerm,
    names: &[String],
    teachers: &'t [TeacherOutputs<'_>],
) -> Result<(Vec<&'t Tensor>, Option<Tensor>)> {
    let found = if names.is_empty() {
        vec![find_teacher(i, term, None, teachers)?]
    } else {
        names
            .iter()
            .map(|name| find_teacher(i, term, Some(name), teachers))
            .collect::<Result<Vec<_>>>()?
    };
    let logits = found
        .iter()
        .map(|t| {
            t.logits.ok_or_else(|| {
                Error::Input(format!(
                    "loss[{i}] ({}): teacher `{}` gives no logits",
                    term.kind_name(),
                    t.name
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if found.iter().all(|t| t.weight.is_none()) {
        return Ok((logits, None));
    }
    let n = logits[0].size()[0];
    let columns: Vec<Tensor> = found
        .iter()
        .map(|t| match t.weight {
            Some(w) => w.to_kind(Kind::Float),
            None => Tensor::ones([n], (Kind::Float, logits[0].device())),
        })
        .collect();
    Ok((logits, Some(Tensor::stack(&columns, 1))))
}

/// The teacher a term refers to: the named one, or the only one when it names none.
fn find_teacher<'t, 'a>(
    i: usize,
    term: &LossTerm,
    name: Option<&str>,
    teachers: &'t [TeacherOutputs<'a>],
) -> Result<&'t TeacherOutputs<'a>> {
    let kind = term.kind_name();
    let names = || teachers.iter().map(|t| format!("`{}`", t.name)).collect::<Vec<_>>().join(", ");
    match (name, teachers) {
        (_, []) => {
            Err(Error::Input(format!("loss[{i}] ({kind}) needs a teacher but the stage has none")))
        }
        (None, [only]) => Ok(only),
        (None, _) => Err(Error::Input(format!(
            "loss[{i}] ({kind}).teacher: the stage has several teachers ({}); name one",
            names()
        ))),
        (Some(n), _) => teachers.iter().find(|t| t.name == n).ok_or_else(|| {
            Error::Input(format!(
                "loss[{i}] ({kind}).teacher: `{n}` is not a teacher of the stage (available: {})",
                names()
            ))
        }),
    }
}
