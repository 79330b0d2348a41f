//! Semantic checks of a parsed config; every problem is collected, none stops the others.

use fer_models_spec::{ColorMode, SpecError};

use super::error::{ConfigErrors, ConfigIssue};
use super::{
    CONFIG_VERSION, ClassBalance, ExperimentConfig, FOLD_PLACEHOLDER, OptimizerKind, Precision,
    Schedule, StageConfig,
};
use crate::losses::LossTerm;

/// Collects issues with field paths.
#[derive(Default)]
struct Issues(Vec<ConfigIssue>);

impl Issues {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigIssue { field: field.into(), message: message.into() });
    }
    fn positive(&mut self, field: &str, v: f64) {
        if !(v.is_finite() && v > 0.0) {
            self.push(field, format!("must be a finite number > 0 (got {v})"));
        }
    }
    fn non_negative(&mut self, field: &str, v: f64) {
        if !(v.is_finite() && v >= 0.0) {
            self.push(field, format!("must be a finite number >= 0 (got {v})"));
        }
    }
    fn unit_open(&mut self, field: &str, v: f64) {
        if !(0.0..1.0).contains(&v) {
            self.push(field, format!("must be in [0, 1) (got {v})"));
        }
    }
}

/// Whether `s` is a usable name: non-empty, letters, digits, `_`, `-`, `.`, and no `..`.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && !s.contains("..")
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl ExperimentConfig {
    /// Checks everything that can be checked without reading data or weights, and returns
    /// every problem found, each naming its field (`stages[1].loss[0].teacher`) and what is
    /// allowed. Files that do not exist yet are not problems (see the module doc).
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut is = Issues::default();
        if self.version != CONFIG_VERSION {
            is.push(
                "version",
                format!("{} is not supported (allowed: {CONFIG_VERSION})", self.version),
            );
        }
        let bare_name = self.name.replace(FOLD_PLACEHOLDER, "0");
        if !is_name(&bare_name) {
            is.push(
                "name",
                format!("{:?} is not a run name (allowed: letters, digits, `_`, `-`, `.`, `{FOLD_PLACEHOLDER}`)", self.name),
            );
        }
        if self.data.folds.is_some() && !self.name.contains(FOLD_PLACEHOLDER) {
            is.push(
                "name",
                format!("must contain `{FOLD_PLACEHOLDER}` when data.folds is set, so that the folds' runs get their own directories"),
            );
        }
        if self.data.fold.is_none() {
            let mut templated = vec![("name".to_string(), self.name.clone())];
            if let Some(init) = &self.model.init {
                templated.push(("model.init.weights".into(), init.weights.display().to_string()));
            }
            for (i, t) in self.teachers.iter().enumerate() {
                templated.push((
                    format!("teachers[{i}].checkpoint"),
                    t.checkpoint.display().to_string(),
                ));
            }
            for (field, text) in templated.into_iter().filter(|(_, t)| t.contains(FOLD_PLACEHOLDER))
            {
                is.push(
                    field,
                    format!("{text:?} uses `{FOLD_PLACEHOLDER}` but data.fold is not set"),
                );
            }
        }
        if self.output_dir.as_os_str().is_empty() {
            is.push("output_dir", "must not be empty");
        }
        self.check_data(&mut is);
        self.check_model(&mut is);
        match self.augment.validate() {
            Ok(()) => {}
            Err(fer_data::Error::Invalid { what, msg }) => is.push(what, msg),
            Err(e) => is.push("augment", e.to_string()),
        }
        self.check_optim(&mut is);
        if let Some(0) = self.early_stopping.patience {
            is.push("early_stopping.patience", "must be >= 1 (omit it to never stop early)");
        }
        is.non_negative("early_stopping.min_delta", self.early_stopping.min_delta);
        self.check_teachers(&mut is);
        self.check_stages(&mut is);
        if is.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors { origin: self.origin.path.clone(), issues: is.0 })
        }
    }

    fn check_data(&self, is: &mut Issues) {
        let d = &self.data;
        if d.root.as_os_str().is_empty() {
            is.push("data.root", "must not be empty");
        }
        let sources: Vec<&str> = [
            d.val_split.map(|_| "val_split"),
            d.val_fraction.map(|_| "val_fraction"),
            d.folds.map(|_| "folds"),
        ]
        .into_iter()
        .flatten()
        .collect();
        match sources.as_slice() {
            [] => is.push(
                "data",
                "no validation set: set one of val_split (an official split), val_fraction \
                 (a stratified held-out fraction) or folds + fold (subject-grouped folds)",
            ),
            [_] => {}
            many => is.push(
                "data",
                format!("{} each choose the validation set; set only one", many.join(", ")),
            ),
        }
        if let (Some(t), Some(v)) = (d.train_split, d.val_split)
            && t == v
        {
            is.push("data.val_split", format!("\"{v}\" is also the training split"));
        }
        if d.val_split.is_some() && d.train_split.is_none() {
            is.push(
                "data.train_split",
                "must be set when val_split is (otherwise every split, the validation one \
                 included, is trained on); allowed: train, val, test",
            );
        }
        if let Some(t) = d.test_split
            && (d.train_split.is_none_or(|tr| tr == t) || d.val_split == Some(t))
        {
            is.push(
                "data.test_split",
                format!("\"{t}\" is also trained on or used for validation"),
            );
        }
        if let Some(f) = d.val_fraction
            && !(f > 0.0 && f < 1.0)
        {
            is.push("data.val_fraction", format!("must be in (0, 1) (got {f})"));
        }
        if !(d.device_data_share > 0.0 && d.device_data_share <= 1.0) {
            is.push(
                "data.device_data_share",
                format!("must be in (0, 1] (got {})", d.device_data_share),
            );
        }
        if !d.class_map.is_empty() && d.format != fer_data::formats::Format::ImageFolder {
            is.push(
                "data.class_map",
                format!("is read by the image-folder format only (format is {})", d.format),
            );
        }
        if let Some(f) = d.calib_fraction
            && !(f > 0.0 && f < 1.0)
        {
            is.push("data.calib_fraction", format!("must be in (0, 1) (got {f})"));
        }
        match (d.folds, d.fold) {
            (Some(n), _) if n < 2 => is.push("data.folds", format!("must be >= 2 (got {n})")),
            (Some(n), Some(k)) if k >= n => {
                is.push("data.fold", format!("{k} is not a fold of {n} (allowed: 0 to {})", n - 1))
            }
            (Some(_), None) => is.push("data.fold", "required when data.folds is set"),
            (None, Some(_)) => is.push("data.fold", "needs data.folds (the number of folds)"),
            _ => {}
        }
        match (d.cross_fit_folds, d.cross_fit_fold) {
            (Some(n), _) if n < 2 => {
                is.push("data.cross_fit_folds", format!("must be >= 2 (got {n})"))
            }
            (Some(n), Some(k)) if k >= n => is.push(
                "data.cross_fit_fold",
                format!("{k} is not a fold of {n} (allowed: 0 to {})", n - 1),
            ),
            (Some(_), None) => {
                is.push("data.cross_fit_fold", "required when data.cross_fit_folds is set")
            }
            (None, Some(_)) => {
                is.push("data.cross_fit_fold", "needs data.cross_fit_folds (the number of folds)")
            }
            _ => {}
        }
    }

    fn check_model(&self, is: &mut Issues) {
        let m = &self.model;
        match m.net.validate() {
            Ok(()) => {}
            Err(SpecError::BadOption { field, value, reason, .. }) => is.push(
                format!("model.{field}"),
                format!("{value} is not supported by {} (allowed: {reason})", m.net.arch),
            ),
            Err(e) => is.push("model", e.to_string()),
        }
        if m.zero_init_residual
            && let Ok(graph) = fer_models_spec::spec(&m.net)
            && graph.residual_branch_norms().is_empty()
        {
            is.push(
                "model.zero_init_residual",
                format!("{} has no residual blocks to start as the identity", m.net.arch),
            );
        }
        if m.zero_init_residual && m.init.is_some() {
            is.push(
                "model.zero_init_residual",
                "applies to fresh weights, and model.init loads them from a file: set one of the two",
            );
        }
        if let Some(init) = &m.init
            && init.weights.as_os_str().is_empty()
        {
            is.push("model.init.weights", "must not be empty");
        }
        let p = &self.preprocess;
        let channels = m.net.in_channels;
        if let Some(color) = p.color {
            let want = match color {
                ColorMode::Gray => 1,
                ColorMode::Rgb | ColorMode::GrayRgb => 3,
            };
            if want != channels {
                is.push(
                    "preprocess.color",
                    format!("{color:?} gives {want} channel(s) but model.in_channels = {channels}")
                        .to_lowercase(),
                );
            }
        }
        for (field, values) in [("mean", &p.mean), ("std", &p.std)] {
            if let Some(v) = values {
                if v.len() != channels {
                    is.push(
                        format!("preprocess.{field}"),
                        format!("{} value(s) for {channels} input channel(s)", v.len()),
                    );
                }
                if v.iter().any(|x| !x.is_finite() || (field == "std" && *x <= 0.0)) {
                    let rule = if field == "std" { "> 0" } else { "finite" };
                    is.push(format!("preprocess.{field}"), format!("every value must be {rule}"));
                }
            }
        }
    }

    fn check_optim(&self, is: &mut Issues) {
        let o = &self.optim;
        is.positive("optim.lr", o.lr);
        is.unit_open("optim.momentum", o.momentum);
        if o.nesterov && (o.optimizer != OptimizerKind::Sgd || o.momentum <= 0.0) {
            is.push("optim.nesterov", "needs optimizer = \"sgd\" and momentum > 0");
        }
        is.unit_open("optim.betas[0]", o.betas[0]);
        is.unit_open("optim.betas[1]", o.betas[1]);
        is.positive("optim.eps", o.eps);
        is.non_negative("optim.weight_decay", o.weight_decay);
        if o.batch_size == 0 {
            is.push("optim.batch_size", "must be >= 1");
        }
        if o.micro_batches == 0 {
            is.push("optim.micro_batches", "must be >= 1");
        } else if !o.batch_size.is_multiple_of(o.micro_batches) {
            is.push(
                "optim.micro_batches",
                format!(
                    "must divide optim.batch_size = {} (got {})",
                    o.batch_size, o.micro_batches
                ),
            );
        } else if o.micro_batches > 1 && o.precision == Precision::Fp16 {
            is.push(
                "optim.micro_batches",
                "needs precision fp32 or bf16 (float16's loss scaling is per step)",
            );
        }
        if let Some(d) = o.ema_decay
            && !(d > 0.0 && d < 1.0)
        {
            is.push("optim.ema_decay", format!("must be in (0, 1) (got {d})"));
        }
        if let Some(c) = o.grad_clip_norm {
            is.positive("optim.grad_clip_norm", c);
        }
        is.non_negative("optim.min_lr", o.min_lr);
        if o.schedule == Schedule::Cosine && o.lr > 0.0 && o.min_lr >= o.lr {
            is.push(
                "optim.min_lr",
                format!("must be below optim.lr = {} (got {})", o.lr, o.min_lr),
            );
        }
        if o.schedule == Schedule::Step {
            if o.milestones.is_empty() {
                is.push("optim.milestones", "schedule = \"step\" needs at least one milestone");
            }
            if !(o.gamma > 0.0 && o.gamma <= 1.0) {
                is.push("optim.gamma", format!("must be in (0, 1] (got {})", o.gamma));
            }
        } else if !o.milestones.is_empty() {
            is.push("optim.milestones", "only used by schedule = \"step\"");
        }
        if o.milestones.first() == Some(&0) || o.milestones.windows(2).any(|w| w[0] >= w[1]) {
            is.push(
                "optim.milestones",
                format!("must be >= 1 and strictly increasing (got {:?})", o.milestones),
            );
        }
    }

    fn check_teachers(&self, is: &mut Issues) {
        for (i, t) in self.teachers.iter().enumerate() {
            let at = |f: &str| format!("teachers[{i}].{f}");
            if !is_name(&t.name) {
                is.push(
                    at("name"),
                    format!("{:?} is not a name (allowed: letters, digits, `_`, `-`, `.`)", t.name),
                );
            }
            if self.teachers[..i].iter().any(|u| u.name == t.name) {
                is.push(at("name"), format!("{:?} is used by an earlier teacher", t.name));
            }
            if t.checkpoint.as_os_str().is_empty() {
                is.push(at("checkpoint"), "must not be empty");
            }
            if let Some(s) = t.input_size
                && !(32..=1024).contains(&s)
            {
                is.push(at("input_size"), format!("{s} is out of range (allowed: 32 to 1024)"));
            }
            if !self
                .stages
                .iter()
                .any(|s| s.teachers_used(&self.teachers).contains(&t.name.as_str()))
            {
                is.push(at("name"), format!("teacher {:?} is used by no loss term (remove it, or name it in a kd/rkd term)", t.name));
            }
            if t.out_of_fold {
                self.check_out_of_fold(&t.name, &at("out_of_fold"), is);
            }
        }
    }

    /// Where an `out_of_fold` teacher may be read: by `kd_ensemble` and `dkd` terms of stages
    /// with the teacher cache (which keeps, per image, which teachers may be averaged).
    fn check_out_of_fold(&self, name: &str, at: &str, is: &mut Issues) {
        for s in &self.stages {
            let reads = |t: &LossTerm| {
                let named = t.teacher_names();
                named.contains(&name)
                    || (named.is_empty() && t.needs_teacher() && self.teachers.len() == 1)
            };
            if !s.loss.iter().any(reads) {
                continue;
            }
            if !s.teacher_cache {
                is.push(at, format!("stage {:?} reads teacher {name:?} without teacher_cache = true (the cache keeps which images each teacher may be read on)", s.name));
            }
            for t in s.loss.iter().filter(|t| reads(t)) {
                if !matches!(t, LossTerm::KdEnsemble { .. } | LossTerm::Dkd { .. }) {
                    is.push(at, format!("stage {:?}: a {} term cannot read an out-of-fold teacher (it would have no target on the images the teacher trained on; use kd_ensemble or dkd with several teachers)", s.name, t.kind_name()));
                }
            }
        }
    }

    /// What `stages[i].teacher_cache = true` needs (see [`StageConfig::teacher_cache`]).
    fn check_teacher_cache(&self, s: &StageConfig, at: &str, is: &mut Issues) {
        let aug = &self.augment;
        if aug.views == 0 {
            is.push(at, "needs augment.views >= 1 (the teachers' outputs are cached per view)");
        }
        if aug.mixup_alpha > 0.0 || aug.cutmix_alpha > 0.0 {
            is.push(at, "cannot be used with mixup or CutMix (mixed images differ every epoch)");
        }
        if self.data.balance == ClassBalance::BalancedSampler {
            is.push(at, "cannot be used with data.balance = \"balanced_sampler\" (it repeats images under other draws)");
        }
        if !s.loss.iter().any(LossTerm::needs_teacher) {
            is.push(at, "the stage has no term that reads a teacher");
        }
        if let Some(t) = s.loss.iter().find(|t| t.needs_embedding()) {
            is.push(
                at,
                format!("cannot be used with a {} term (only logits are cached)", t.kind_name()),
            );
        }
    }

    /// A term that reads the class of each sample (`dkd`) cannot train on distributions.
    fn check_hard_labels(&self, term: &LossTerm, at: &str, is: &mut Issues) {
        let kind = term.kind_name();
        let aug = &self.augment;
        if aug.mixup_alpha > 0.0 || aug.cutmix_alpha > 0.0 {
            is.push(
                at,
                format!("a {kind} term needs hard labels; mixup and CutMix turn them into distributions (set augment.mixup_alpha and augment.cutmix_alpha to 0)"),
            );
        }
        let d = &self.data;
        if d.format == fer_data::formats::Format::FerPlus
            && d.ferplus_mode == fer_data::formats::FerPlusMode::Soft
        {
            is.push(
                at,
                format!("a {kind} term needs hard labels; data.ferplus_mode = \"soft\" gives distributions (use \"majority\")"),
            );
        }
    }

    fn check_stages(&self, is: &mut Issues) {
        if self.stages.is_empty() {
            is.push("stages", "at least one [[stages]] is required");
        }
        let names: Vec<&str> = self.teachers.iter().map(|t| t.name.as_str()).collect();
        let known = if names.is_empty() { "none".to_string() } else { names.join(", ") };
        for (i, s) in self.stages.iter().enumerate() {
            let at = |f: &str| format!("stages[{i}].{f}");
            if s.name.trim().is_empty() {
                is.push(at("name"), "must not be empty");
            } else if self.stages[..i].iter().any(|u| u.name == s.name) {
                is.push(at("name"), format!("{:?} is used by an earlier stage", s.name));
            }
            if s.epochs == 0 {
                is.push(at("epochs"), "must be >= 1");
            }
            if let Some(lr) = s.lr {
                is.positive(&at("lr"), lr);
            }
            let warmup = s.warmup(&self.optim);
            if s.epochs > 0 && warmup >= s.epochs {
                let field = if s.warmup_epochs.is_some() {
                    at("warmup_epochs")
                } else {
                    "optim.warmup_epochs".into()
                };
                is.push(
                    field,
                    format!(
                        "{warmup} warm-up epochs leave nothing of stage {:?} ({} epochs)",
                        s.name, s.epochs
                    ),
                );
            }
            if s.loss.is_empty() {
                is.push(at("loss"), "at least one [[stages.loss]] term is required");
            }
            if s.teacher_cache {
                self.check_teacher_cache(s, &at("teacher_cache"), is);
            }
            for (j, term) in s.loss.iter().enumerate() {
                let term_at = format!("stages[{i}].loss[{j}]");
                for problem in term.validate() {
                    match problem.split_once(": ") {
                        Some((field, msg)) => is.push(format!("{term_at}.{field}"), msg),
                        None => is.push(term_at.clone(), problem),
                    }
                }
                if term.needs_hard_labels() {
                    self.check_hard_labels(term, &term_at, is);
                }
                if let LossTerm::CrossEntropy { focal_gamma, .. } = term
                    && *focal_gamma > 0.0
                    && self.data.balance == ClassBalance::InverseFrequencyWeights
                {
                    is.push(
                        format!("{term_at}.focal_gamma"),
                        "cannot be combined with data.balance = \"inverse_frequency_weights\" (use \"none\" or \"balanced_sampler\")",
                    );
                }
                if !term.needs_teacher() {
                    continue;
                }
                let kind = term.kind_name();
                if let LossTerm::KdEnsemble { teachers, .. } | LossTerm::Dkd { teachers, .. } = term
                    && !teachers.is_empty()
                {
                    for (k, t) in teachers.iter().enumerate() {
                        if !t.trim().is_empty() && !names.contains(&t.as_str()) {
                            is.push(
                                format!("{term_at}.teachers[{k}]"),
                                format!(
                                    "{t:?} is not a teacher of this config (teachers: {known})"
                                ),
                            );
                        }
                    }
                    continue;
                }
                match term.teacher_opt() {
                    Some(t) if !names.contains(&t) => is.push(
                        format!("{term_at}.teacher"),
                        format!("{t:?} is not a teacher of this config (teachers: {known})"),
                    ),
                    Some(_) => {}
                    None if names.is_empty() => is.push(
                        term_at.clone(),
                        format!(
                            "a {kind} term needs a teacher, but the config has no [[teachers]]"
                        ),
                    ),
                    None if names.len() > 1 => is.push(
                        format!(
                            "{term_at}.{}",
                            if matches!(term, LossTerm::Dkd { .. }) {
                                "teachers"
                            } else {
                                "teacher"
                            }
                        ),
                        format!("required with several teachers (teachers: {known})"),
                    ),
                    None => {}
                }
            }
        }
    }
}
