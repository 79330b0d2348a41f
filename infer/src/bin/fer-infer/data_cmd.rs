//! `fer-infer data faces`: a labelled folder of photos becomes a dataset of aligned face crops
//! (the crop `predict`, `eval --faces` and `live` cut), with `faces.json` saying which crop it
//! is and what happened to every photo. It lives in `fer-infer` because it needs the face
//! detector, which runs on ONNX Runtime or tract and `fer-train` never links either
//! (ARCHITECTURE.md); the crop itself is `fer_data::face_crop`, shared with training code.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use fer_data::SplitName;
use fer_data::formats::Format;
use fer_infer::eval::DataSpec;
use fer_infer::eval::faces::{FaceCropped, FaceSummary, Multi};
use fer_infer::photo::{FaceMode, Photos};
use fer_models_spec::FaceCrop;
use fer_models_spec::crop::{DATASET_MANIFEST, DEFAULT_MARGIN, DatasetCrop};
use serde::Serialize;

use crate::UsageError;
use crate::args::{BackendArgs, FaceArgs};

/// Dataset tools.
#[derive(Subcommand, Debug)]
pub enum DataCmd {
    /// Turn labelled class folders of photos into class folders of aligned face crops.
    Faces(FacesArgs),
}

/// Arguments of `data faces`.
#[derive(Args, Debug)]
pub struct FacesArgs {
    /// The photos: class folders (`happy/`, `anger/`, …) as `--format image-folder` reads them,
    /// or any other format's root.
    #[arg(long = "in", value_name = "DIR")]
    input: PathBuf,
    /// The format of `--in` (see `eval --format`).
    #[arg(long, default_value = "image-folder")]
    format: Format,
    /// Official split of `--in` to read (default: every sample).
    #[arg(long)]
    split: Option<SplitName>,
    /// Where the crops go (`CLASS/NAME.png` and `faces.json`); must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// A photo with several faces gives its `largest`, or is left out (`skip`).
    #[arg(long, value_enum, default_value = "largest")]
    multi: Multi,
    /// Crop side / detection box side.
    #[arg(long, default_value_t = DEFAULT_MARGIN)]
    margin: f32,
    /// Side of the crops in pixels.
    #[arg(long, default_value_t = 128)]
    side: u32,
    /// Leave out unreadable photos (listed in faces.json) instead of stopping at the first.
    #[arg(long)]
    skip_bad: bool,
    #[command(flatten)]
    face: FaceArgs,
    #[command(flatten)]
    backend: BackendArgs,
}

/// `faces.json`: the crop (read back by `fer-export`), and every photo's fate.
#[derive(Serialize)]
struct Manifest<'a> {
    #[serde(flatten)]
    crop: DatasetCrop,
    source: String,
    summary: &'a FaceSummary,
    written: usize,
    left_out: Vec<&'a fer_data::dataset::SkippedItem>,
}

pub fn run(cmd: DataCmd) -> anyhow::Result<()> {
    match cmd {
        DataCmd::Faces(a) => faces(a),
    }
}

fn faces(a: FacesArgs) -> anyhow::Result<()> {
    let crop = FaceCrop::aligned(a.margin);
    crop.check().map_err(|e| UsageError(format!("--margin: {e}")))?;
    if !(16..=1024).contains(&a.side) {
        return Err(UsageError(format!("--side {} is not within 16–1024 pixels", a.side)).into());
    }
    if std::fs::read_dir(&a.out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(UsageError(format!("--out {} exists and is not empty", a.out.display())).into());
    }
    let spec = DataSpec {
        path: a.input.clone(),
        format: a.format,
        split: a.split,
        holdout: None,
        holdout_part: Default::default(),
    };
    let data = spec.open(a.skip_bad).context("opening the photos")?;
    let finder = a.face.finder(FaceMode::Detect, crop, &a.backend)?;
    let side = a.side;
    let mut photos = Photos::with_crop(finder, FaceMode::Detect, crop, side as usize, side)?;
    let bar = crate::eval_cmd::progress_bar(data.len() as u64);
    let fc = FaceCropped::build(data, &mut photos, side, a.multi, a.skip_bad, &mut |i, _| {
        bar.set_position(i as u64)
    })
    .with_context(|| format!("looking for faces in {}", a.input.display()))?;
    bar.finish_and_clear();
    let written = write_crops(&fc, &a.out)?;
    let left_out: Vec<_> = fer_data::Dataset::skipped(&fc).iter().collect();
    for it in &left_out {
        eprintln!("left out {}: {}", it.source, it.reason);
    }
    let manifest = Manifest {
        crop: DatasetCrop { crop, side },
        source: a.input.display().to_string(),
        summary: &fc.summary,
        written,
        left_out,
    };
    let path = a.out.join(DATASET_MANIFEST);
    let json = serde_json::to_string_pretty(&manifest)?;
    fer_checkpoint::atomic::write_atomic(&path, json.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!("faces: {}", fc.summary.line());
    outln!(
        "wrote {written} crops ({crop}, {side} px) and {} into {}",
        DATASET_MANIFEST,
        a.out.display()
    );
    Ok(())
}

/// Writes every kept sample's crop as `out/CLASS/NAME.png`; returns how many.
fn write_crops(fc: &FaceCropped, out: &Path) -> anyhow::Result<usize> {
    use fer_data::Dataset;
    let mut used = HashSet::new();
    for i in 0..fc.len() {
        let s = fc.load(i).with_context(|| format!("reading {}", fc.source(i)))?;
        let class = fc.classes()[fc.label(i)].name();
        let dir = out.join(class);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let stem = Path::new(&s.source)
            .file_stem()
            .map_or_else(|| format!("{i:06}"), |x| x.to_string_lossy().into_owned());
        let mut name = PathBuf::from(class).join(format!("{stem}.png"));
        let mut n = 1;
        while !used.insert(name.clone()) {
            n += 1;
            name = PathBuf::from(class).join(format!("{stem}-{n}.png"));
        }
        let path = out.join(&name);
        fer_data::image_file::save_image(&s.image, &path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(fc.len())
}
