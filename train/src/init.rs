//! `fer-train init`: a complete, commented experiment config for a folder of labelled face
//! images, which `fer-train run` accepts as it is.
//!
//! The folder is surveyed first ([`fer_data::formats::survey`]): split folders (`train/ val/
//! test/` or none), class folders and their file counts. Every class folder that is neither an
//! expression name nor mapped (`--map smiling=happiness`, `--map misc=skip`) is named in one
//! error; nothing is skipped silently. The set is then opened as `fer-train run` will open it
//! (every image header read), and a spread of images is decoded to choose the colour mode (gray
//! data: `gray_rgb`). The recipe is the one `docs/results.md` measured on FER-2013, scaled to
//! the set's size; every value is written with a comment saying why, floats as they are typed
//! (`0.8`, never `0.800000011920929`).

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use fer_data::formats::{ClassMap, FolderClass, FolderSurvey, ImageFolder, OpenOptions};
use fer_data::{Dataset, SplitName};
use fer_models_spec::Arch;

/// What the config trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Task {
    /// A student from scratch on the labels only (exp3).
    Baseline,
    /// A teacher (ResNet-18 by default) from scratch, to distil from later.
    Teacher,
    /// A student distilled from a teacher: 0.1 cross-entropy + 0.9 Hinton KD (T = 4).
    Kd,
    /// A student distilled with Hinton KD and RKD distance (exp5).
    Hybrid,
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::Baseline => "baseline",
            Task::Teacher => "teacher",
            Task::Kd => "kd",
            Task::Hybrid => "hybrid",
        }
    }
}

/// What `fer-train init` was asked.
#[derive(Debug, Clone)]
pub struct InitRequest {
    /// The dataset folder: class folders, directly or under `train/ val/ test/`.
    pub data: PathBuf,
    /// Where the config will be written (relative paths in it are relative to its folder).
    pub out: PathBuf,
    /// What to train.
    pub task: Task,
    /// The architecture; default MobileNetV3-Large (ResNet-18 for a teacher).
    pub arch: Option<Arch>,
    /// The teacher's checkpoint (`RUN/best.safetensors`, or the run folder); required by
    /// `kd` and `hybrid`.
    pub teacher: Option<PathBuf>,
    /// Class folders not named after an expression.
    pub class_map: ClassMap,
    /// The run's name; default `<folder>_<task>`.
    pub name: Option<String>,
    /// Training epochs; default 60 (80 for a teacher).
    pub epochs: Option<usize>,
}

/// What [`plan`] could not do.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The folder could not be listed or opened as an image folder (unknown class folders
    /// included: [`fer_data::Error::UnknownClasses`]).
    #[error(transparent)]
    Data(#[from] fer_data::Error),
    /// No class folder with images.
    #[error("{}: no class folders with images (expected <class>/ folders, directly or under train/ val/ test/)", .0.display())]
    NoClasses(PathBuf),
    /// Split folders without `train/`.
    #[error("{}: has split folders but no train/ (found: {found})", path.display())]
    NoTrainSplit {
        /// The dataset folder.
        path: PathBuf,
        /// The split folders found.
        found: String,
    },
    /// Fewer than two classes.
    #[error("{}: {n} class with images; a classifier needs at least two", path.display())]
    OneClass {
        /// The dataset folder.
        path: PathBuf,
        /// Classes found.
        n: usize,
    },
    /// A distillation task without a teacher.
    #[error(
        "--task {0} distils from a teacher: give --teacher RUN/best.safetensors (train one with \
         `fer-train init --task teacher`)"
    )]
    NeedsTeacher(&'static str),
    /// A teacher given to a task that does not distil.
    #[error("--teacher is for --task kd or hybrid, not {0}")]
    UnusedTeacher(&'static str),
    /// A teacher checkpoint that is not there.
    #[error("--teacher {}: no such file (a run folder must hold best.safetensors)", .0.display())]
    NoTeacher(PathBuf),
    /// A file system error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The config text and what it was made from.
#[derive(Debug, Clone)]
pub struct InitPlan {
    /// The TOML config, commented.
    pub text: String,
    /// The run's name.
    pub name: String,
    /// One line per class folder: `name → expression: counts`.
    pub classes: Vec<String>,
    /// Where validation, calibration and test data come from, in a sentence.
    pub splits: String,
}

/// What the survey and the decoded sample say about the data.
struct Facts {
    survey: FolderSurvey,
    n_train: usize,
    n_total: usize,
    classes: usize,
    gray: bool,
    max_side: u32,
}

/// Surveys `req.data` and writes the config text; reads images, writes nothing.
pub fn plan(req: &InitRequest) -> Result<InitPlan, InitError> {
    let facts = survey(&req.data, &req.class_map)?;
    let teacher = match (req.task, &req.teacher) {
        (Task::Kd | Task::Hybrid, None) => return Err(InitError::NeedsTeacher(req.task.name())),
        (Task::Baseline | Task::Teacher, Some(_)) => {
            return Err(InitError::UnusedTeacher(req.task.name()));
        }
        (_, Some(t)) => {
            let t = if t.is_dir() { t.join("best.safetensors") } else { t.clone() };
            if !t.is_file() {
                return Err(InitError::NoTeacher(t));
            }
            Some(t)
        }
        (_, None) => None,
    };
    let base = absolute(req.out.parent().filter(|p| !p.as_os_str().is_empty()))?;
    let folder = absolute(Some(&req.data))?;
    let stem = folder.file_name().map(|f| f.to_string_lossy().into_owned());
    let stem: String = stem
        .unwrap_or_else(|| "data".into())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    let name = req.name.clone().unwrap_or_else(|| format!("{stem}_{}", req.task.name()));
    let ctx = Render {
        req,
        facts: &facts,
        name: &name,
        root: relative_to(&folder, &base),
        runs: relative_to(&absolute(Some(Path::new("runs")))?, &base),
        teacher: match &teacher {
            Some(t) => Some(relative_to(&absolute(Some(t))?, &base)),
            None => None,
        },
    };
    let (text, splits) = (ctx.text(), ctx.splits().1);
    Ok(InitPlan { text, name, classes: class_lines(&facts.survey, &req.class_map), splits })
}

fn absolute(p: Option<&Path>) -> Result<PathBuf, InitError> {
    let p = p.unwrap_or(Path::new("."));
    std::path::absolute(p).map_err(|source| InitError::Io { path: p.to_path_buf(), source })
}

/// `path` relative to the folder `base` (both absolute), with `..` where needed; `path`
/// itself when they share no prefix beyond the root.
fn relative_to(path: &Path, base: &Path) -> PathBuf {
    fn norm(p: &Path) -> Vec<Component<'_>> {
        p.components().filter(|c| !matches!(c, Component::CurDir)).collect()
    }
    let (p, b) = (norm(path), norm(base));
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if common <= 1 {
        return path.to_path_buf();
    }
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c.as_os_str());
    }
    if out.as_os_str().is_empty() { PathBuf::from(".") } else { out }
}

fn survey(root: &Path, map: &ClassMap) -> Result<Facts, InitError> {
    let survey = fer_data::formats::survey(root)?;
    if !survey.splits.is_empty() && !survey.splits.contains(&SplitName::Train) {
        let found: Vec<_> = survey.splits.iter().map(|s| s.to_string()).collect();
        return Err(InitError::NoTrainSplit { path: root.into(), found: found.join(", ") });
    }
    if survey.classes.iter().all(|c| c.total() == 0) {
        return Err(InitError::NoClasses(root.into()));
    }
    // Opened as `fer-train run` opens it: unknown folders are one error naming them all, and
    // every image header is read.
    let opts = OpenOptions { class_map: map.clone(), ..OpenOptions::default() };
    let all = ImageFolder::open(root, None, &opts)?;
    if all.classes().len() < 2 {
        return Err(InitError::OneClass { path: root.into(), n: all.classes().len() });
    }
    // The training images, from the survey's counts (the open above has checked every file).
    let n_train = match survey.splits.is_empty() {
        true => all.len(),
        false => survey
            .classes
            .iter()
            .filter(|c| matches!(map.resolve(&c.name), Some(FolderClass::Expression(_))))
            .flat_map(|c| &c.files)
            .filter(|(s, _)| *s == Some(SplitName::Train))
            .map(|(_, n)| n)
            .sum(),
    };
    // A spread of up to 64 images decides gray against colour and the largest side.
    let (mut gray, mut max_side) = (true, 0);
    let step = all.len().div_ceil(64).max(1);
    for i in (0..all.len()).step_by(step) {
        let img = all.load(i)?.image;
        gray &= !img.color().has_color();
        max_side = max_side.max(img.width()).max(img.height());
    }
    Ok(Facts { n_train, n_total: all.len(), classes: all.classes().len(), survey, gray, max_side })
}

fn class_lines(survey: &FolderSurvey, map: &ClassMap) -> Vec<String> {
    survey
        .classes
        .iter()
        .map(|c| {
            let what = match map.resolve(&c.name) {
                Some(FolderClass::Expression(e)) => e.name().to_string(),
                Some(FolderClass::Skip) => "skipped".into(),
                None => "unknown".into(),
            };
            let counts: Vec<String> = c
                .files
                .iter()
                .map(|(s, n)| match s {
                    Some(s) => format!("{s} {n}"),
                    None => format!("{n}"),
                })
                .collect();
            format!("{:<12} → {:<10} {}", c.name, what, counts.join(", "))
        })
        .collect()
}

/// Everything the text is rendered from.
struct Render<'a> {
    req: &'a InitRequest,
    facts: &'a Facts,
    name: &'a str,
    root: PathBuf,
    runs: PathBuf,
    teacher: Option<PathBuf>,
}

/// A TOML string literal.
fn quoted(p: &Path) -> String {
    let s = p.to_string_lossy().replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{s}\"")
}

impl Render<'_> {
    fn arch(&self) -> Arch {
        self.req.arch.unwrap_or(match self.req.task {
            Task::Teacher => Arch::Resnet18,
            _ => Arch::MobilenetV3Large,
        })
    }

    /// The `[data]` split keys, and the sentence that explains them.
    fn splits(&self) -> (String, String) {
        let has = |s| self.facts.survey.splits.contains(&s);
        let mut keys = String::new();
        let mut said = Vec::new();
        if has(SplitName::Train) {
            keys += "train_split = \"train\"\n";
        }
        if has(SplitName::Val) {
            keys += "val_split = \"val\"                       # val/ chooses the epoch (best.safetensors)\n";
            said.push("val/ chooses the epoch".to_string());
        } else {
            keys += "val_fraction = 0.1                        # 10 % of each class of the training images chooses the epoch\n";
            said.push("10 % of each class of the training images chooses the epoch".into());
        }
        if self.facts.n_train >= 2000 {
            keys += "calib_fraction = 0.05                     # another 5 % kept out to fit the softmax temperature (fer-infer calibrate)\n";
            said.push("5 % is kept out for calibration".into());
        } else {
            keys += "# calib_fraction = 0.05                   # too few images for a useful calibration hold-out\n";
        }
        if has(SplitName::Test) {
            keys += "test_split = \"test\"                     # scored once at the end (test.json), never used to choose\n";
            said.push("test/ is scored once at the end".into());
        }
        keys += "split_seed = 0                            # the same held-out images for every seed and experiment\n";
        (keys, said.join("; "))
    }

    fn text(&self) -> String {
        let (f, req) = (self.facts, self.req);
        let arch = self.arch();
        let teacher_task = req.task == Task::Teacher;
        let size = match arch {
            Arch::InceptionV3 => 299,
            Arch::VggFer => 48,
            _ => 112,
        };
        let epochs = req.epochs.unwrap_or(if teacher_task { 80 } else { 60 });
        let batch = if f.n_train >= 10_000 { 256 } else { 64 };
        // The linear scaling rule from the FER-2013 recipe (0.1 at batch 256).
        let lr = if batch == 256 { 0.1 } else { 0.025 };
        let steps = f.n_train.div_ceil(batch);
        let cache = f.n_total * size * size * 3 <= 4 << 30;
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8));
        let color = if f.gray { "gray_rgb" } else { "rgb" };
        let mut t = String::new();
        let w = &mut t;
        let _ =
            writeln!(w, "# Written by `fer-train init --task {}`; edit freely.", req.task.name());
        let _ = writeln!(
            w,
            "# {} classes, {} images ({} to train on), {}, at most {} px.",
            f.classes,
            f.n_total,
            f.n_train,
            if f.gray { "gray" } else { "colour" },
            f.max_side
        );
        let _ = writeln!(w, "# Train with: fer-train run --config <this file>");
        let _ = writeln!(w, "version = 1");
        let _ = writeln!(w, "name = \"{}\"                           # runs/<name>/", self.name);
        let _ = writeln!(
            w,
            "description = \"{} on {}.\"",
            describe(req.task, arch),
            self.root.display()
        );
        let _ = writeln!(w, "seed = 0");
        let _ = writeln!(
            w,
            "device = \"auto\"                           # cuda when there is one, else cpu"
        );
        let _ = writeln!(w, "output_dir = {}", quoted(&self.runs));
        let _ = writeln!(w, "\n[data]");
        let _ = writeln!(
            w,
            "format = \"image-folder\"                  # class folders, directly or under train/ val/ test/"
        );
        let _ = writeln!(w, "root = {}", quoted(&self.root));
        t += &self.splits().0;
        let w = &mut t;
        let _ = writeln!(
            w,
            "cache = {cache}                              # keep decoded images in memory (about {} MB)",
            (f.n_total * size * size * 3) >> 20
        );
        let _ = writeln!(
            w,
            "workers = {workers}                              # loader threads (CPU runs; on a GPU the data path is on the device)"
        );
        let _ = writeln!(
            w,
            "balance = \"none\"                         # or inverse_frequency_weights, balanced_sampler"
        );
        if !req.class_map.is_empty() {
            let _ = writeln!(
                w,
                "\n[data.class_map]                          # class folders not named after an expression"
            );
            for (k, v) in &req.class_map.0 {
                let _ = writeln!(w, "{} = \"{v}\"", toml_key(k));
            }
        }
        let _ = writeln!(
            w,
            "\n[augment]                                 # drawn per image, seeded by (seed, epoch)"
        );
        let _ = writeln!(w, "hflip_prob = 0.5");
        let _ = writeln!(
            w,
            "crop_scale = [0.8, 1.0]                   # random resized crop, share of the area"
        );
        let _ = writeln!(w, "rotate_degrees = 10.0");
        let _ = writeln!(w, "brightness = 0.2");
        let _ = writeln!(w, "contrast = 0.2");
        let _ = writeln!(w, "erase_prob = 0.25                         # random erasing");
        let _ = writeln!(w, "\n[model]");
        let _ = writeln!(w, "arch = \"{arch}\"                 # {}", Arch::ALL_IDS.join(", "));
        let _ = writeln!(w, "num_classes = {}", f.classes);
        let _ = writeln!(w, "in_channels = 3");
        let _ = writeln!(
            w,
            "input_size = {size}                          # sources of {} px are resized to this",
            f.max_side
        );
        let _ = writeln!(w, "\n[preprocess]");
        let _ = writeln!(
            w,
            "color = \"{color}\"                          # {}",
            if f.gray {
                "gray data: every input (colour photos too) becomes gray, in 3 channels"
            } else {
                "colour data"
            }
        );
        let _ = writeln!(w, "\n[optim]");
        let _ = writeln!(w, "optimizer = \"sgd\"");
        let _ = writeln!(
            w,
            "lr = {lr}                                  # 0.1 per 256 images of a batch"
        );
        let _ = writeln!(w, "momentum = 0.9");
        let _ = writeln!(w, "nesterov = true");
        let _ = writeln!(w, "weight_decay = 0.0005");
        let _ = writeln!(w, "batch_size = {batch}");
        let _ = writeln!(
            w,
            "precision = \"{}\"                         # {}",
            if teacher_task { "bf16" } else { "fp32" },
            if teacher_task {
                "CUDA autocast; fp32 on the CPU"
            } else {
                "small students are as fast in fp32 at 112 px"
            }
        );
        let _ = writeln!(w, "schedule = \"cosine\"");
        let _ = writeln!(
            w,
            "channels_last = true                      # NHWC convolutions on CUDA (ignored on the CPU)"
        );
        let _ = writeln!(w, "warmup_epochs = 2");
        if steps >= 50 {
            let _ = writeln!(
                w,
                "ema_decay = 0.999                         # weight EMA over about {} epochs: validated and saved",
                1000 / steps
            );
        } else {
            let _ = writeln!(
                w,
                "# ema_decay = 0.999                       # off: {steps} steps per epoch are too few for it"
            );
        }
        let _ = writeln!(w, "\n[early_stopping]");
        let _ = writeln!(
            w,
            "metric = \"val_accuracy\"                   # chooses best.safetensors; add patience = N to stop early"
        );
        if let Some(tp) = &self.teacher {
            let _ = writeln!(w, "\n[[teachers]]");
            let _ = writeln!(w, "name = \"teacher\"");
            let _ = writeln!(w, "checkpoint = {}", quoted(tp));
        }
        let _ = writeln!(w, "\n[[stages]]");
        let _ = writeln!(w, "name = \"train\"");
        let _ = writeln!(w, "epochs = {epochs}");
        let ce = match req.task {
            Task::Kd => 0.1,
            Task::Hybrid => 0.5,
            _ => 1.0,
        };
        let _ = writeln!(w, "\n[[stages.loss]]");
        let _ = writeln!(w, "kind = \"cross_entropy\"");
        let _ = writeln!(w, "weight = {ce:?}");
        let _ = writeln!(w, "label_smoothing = 0.1");
        if matches!(req.task, Task::Kd | Task::Hybrid) {
            let _ = writeln!(w, "\n[[stages.loss]]");
            let _ = writeln!(
                w,
                "kind = \"kd\"                               # Hinton KD towards the teacher's softened outputs"
            );
            let _ = writeln!(w, "weight = {:?}", 1.0 - ce);
            let _ = writeln!(w, "temperature = 4.0");
            let _ = writeln!(w, "teacher = \"teacher\"");
        }
        if req.task == Task::Hybrid {
            let _ = writeln!(w, "\n[[stages.loss]]");
            let _ = writeln!(
                w,
                "kind = \"rkd_distance\"                     # relational KD: pairwise distances of the embeddings"
            );
            let _ = writeln!(w, "weight = 25.0                             # Park et al. 2019");
            let _ = writeln!(w, "teacher = \"teacher\"");
        }
        align_comments(&t)
    }
}

/// Pads every `code  # comment` line so the comments start in one column (a line whose code
/// part has an odd number of quotes is left alone: its `#` is inside a string).
fn align_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 512);
    for line in text.lines() {
        match line.find("  #") {
            Some(i) if i > 0 && line[..i].matches('"').count() % 2 == 0 => {
                let (code, comment) = (line[..i].trim_end(), line[i..].trim_start());
                let _ = writeln!(out, "{code:<41} {comment}");
            }
            _ => {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    out
}

fn describe(task: Task, arch: Arch) -> String {
    match task {
        Task::Baseline => format!("{arch} from scratch, cross-entropy"),
        Task::Teacher => format!("Teacher: {arch} from scratch, cross-entropy"),
        Task::Kd => format!("{arch} distilled (0.1 CE + 0.9 Hinton KD, T = 4)"),
        Task::Hybrid => format!("{arch} distilled (0.5 CE + 0.5 Hinton KD + RKD distance)"),
    }
}

/// `k` as a TOML key: bare when it can be, quoted otherwise.
fn toml_key(k: &str) -> String {
    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        k.to_string()
    } else {
        quoted(Path::new(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fer_data::Emotion;

    /// The names in messages and in the written config are the names `--task` accepts.
    #[cfg(feature = "clap")]
    #[test]
    fn task_names_are_the_flag_names() {
        use clap::ValueEnum;
        for t in Task::value_variants() {
            let flag = t.to_possible_value().unwrap();
            assert_eq!(flag.get_name(), t.name(), "{t:?}");
        }
    }

    #[test]
    fn relative_paths_walk_up_from_the_config_folder() {
        let r = |p: &str, b: &str| relative_to(Path::new(p), Path::new(b));
        assert_eq!(r("/a/b/data", "/a/b/configs"), Path::new("../data"));
        assert_eq!(r("/a/b/data", "/a/b"), Path::new("data"));
        assert_eq!(r("/a/b", "/a/b"), Path::new("."));
        assert_eq!(r("/x/data", "/y/configs"), Path::new("/x/data"), "nothing shared but /");
    }

    #[test]
    fn emotion_names_round_trip_through_the_class_lines() {
        let s = FolderSurvey {
            splits: vec![],
            classes: vec![fer_data::formats::ClassFolder {
                name: "happy".into(),
                files: vec![(None, 3)],
            }],
        };
        let lines = class_lines(&s, &ClassMap::default());
        assert!(
            lines[0].contains(Emotion::Happiness.name()) && lines[0].ends_with('3'),
            "{lines:?}"
        );
    }
}
