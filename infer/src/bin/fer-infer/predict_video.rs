//! `predict` on video files: the frames of a [`VideoFile`] (the `live --source` reader: H.264
//! in MP4/MOV, MJPEG in AVI or raw) go through the same face finding, aligned crops and
//! classifier as photos, every `--every`-th frame, `--batch` frames per forward pass; each
//! record is a photo's plus the frame's index and presentation time.

use std::path::{Path, PathBuf};

use anyhow::Context;
use fer_live::source::FrameSource;
use fer_live::video::{self, VideoFile};

use crate::predict::{Item, Run};

/// The inputs that are video files (by extension; folders are searched for images only).
pub fn videos(inputs: &[PathBuf]) -> Vec<PathBuf> {
    inputs.iter().filter(|p| video::is_video_path(p) && !p.is_dir()).cloned().collect()
}

/// Classifies the faces of every `--every`-th frame of `path`.
pub fn predict(run: &mut Run, path: &Path) -> anyhow::Result<()> {
    let mut v = match VideoFile::open(path) {
        Ok(v) => v,
        Err(e) if run.a.skip_bad => {
            tracing::warn!("skipping {e}");
            run.n.skipped += 1;
            return Ok(());
        }
        Err(e) => return Err(e).context("reading an input video (--skip-bad goes on)"),
    };
    tracing::info!(video = %v.describe(), every = run.a.every, "predict");
    let (every, batch) = (run.a.every, run.a.batch);
    let shown = path.display().to_string();
    let stem = path.file_stem().map_or("video".into(), |s| s.to_string_lossy().into_owned());
    let mut step = Vec::new();
    loop {
        let frame = match v.next_frame() {
            Ok(f) => f,
            Err(e) if run.a.skip_bad => {
                tracing::warn!("{e}; going on with the next input");
                run.n.skipped += 1;
                None
            }
            Err(e) => return Err(e).context("reading an input video (--skip-bad goes on)"),
        };
        let Some(frame) = frame else { break };
        if frame.index % every != 0 {
            continue;
        }
        let canvas = run.annotating().then(|| frame.image.clone());
        let prep = run
            .photos
            .prepare(image::DynamicImage::ImageRgb8(frame.image))
            .with_context(|| format!("looking for faces in {shown}, frame {}", frame.index))?;
        step.push(Item {
            shown: shown.clone(),
            name: PathBuf::from(format!("{stem}_{:06}", frame.index)),
            frame: Some((frame.index, v.time_s())),
            prep,
            canvas,
        });
        if step.len() == batch {
            run.step(std::mem::take(&mut step))?;
        }
    }
    if !step.is_empty() {
        run.step(step)?;
    }
    Ok(())
}
