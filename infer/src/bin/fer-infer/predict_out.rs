//! `predict`'s records: one per face (or one saying that an image has none), as JSON lines or
//! CSV rows, and the annotated images of `--annotate`.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use fer_infer::face::Found;
use fer_infer::photo::{CropUsed, Prepared};
use fer_infer::predict::{Prediction, Scored};
use fer_live::{FaceResult, FrameResult, Timings, draw};
use image::RgbImage;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// Landmark names, in BlazeFace's keypoint order (the subject's sides).
pub const LANDMARKS: [&str; 6] =
    ["right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear"];

/// One output record: a face of an image, or an image without a face (`face` is `None`).
pub struct Record<'a> {
    /// The image file.
    pub path: &'a str,
    /// Index of the face in its image (`None`: no face found).
    pub face: Option<usize>,
    /// Faces found in the image (1 for a whole image).
    pub faces: usize,
    /// What was classified.
    pub crop: CropUsed,
    /// The detection (`None` for a whole image or no face).
    pub found: Option<&'a Found>,
    /// `[x0, y0, x1, y1]`: the detection box, or the whole image.
    pub bbox: Option<[f32; 4]>,
    /// The classification.
    pub pred: Option<&'a Prediction>,
    /// A video frame's index and presentation time (`None` for a photo).
    pub frame: Option<(usize, Option<f64>)>,
}

/// The records of one prepared image and its predictions (one per classifier input).
pub fn records<'a>(path: &'a str, p: &'a Prepared, preds: &'a [Prediction]) -> Vec<Record<'a>> {
    let base = Record {
        path,
        face: None,
        faces: preds.len(),
        crop: p.crop,
        found: None,
        bbox: None,
        pred: None,
        frame: None,
    };
    if preds.is_empty() {
        return vec![base];
    }
    let whole = [0.0, 0.0, p.size[0] as f32, p.size[1] as f32];
    preds
        .iter()
        .enumerate()
        .map(|(i, pred)| {
            let found = p.faces.get(i);
            Record {
                face: Some(i),
                found,
                bbox: Some(found.map_or(whole, |f| f.face.bbox)),
                pred: Some(pred),
                ..base
            }
        })
        .collect()
}

/// Every class's probability, as a JSON object in label order.
struct Probs<'a>(&'a [String], &'a [f32]);

impl Serialize for Probs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.1.len()))?;
        for (l, p) in self.0.iter().zip(self.1) {
            m.serialize_entry(l, p)?;
        }
        m.end()
    }
}

/// The six landmarks, as a JSON object of `[x, y]` by name.
struct Landmarks<'a>(&'a [[f32; 2]; 6]);

impl Serialize for Landmarks<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(6))?;
        for (name, p) in LANDMARKS.iter().zip(self.0) {
            m.serialize_entry(name, p)?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct JsonLine<'a> {
    path: &'a str,
    face: Option<usize>,
    faces: usize,
    crop: CropUsed,
    detector: Option<fer_infer::face::Range>,
    score: Option<f32>,
    #[serde(rename = "box")]
    bbox: Option<[f32; 4]>,
    landmarks: Option<Landmarks<'a>>,
    label: Option<&'a str>,
    confidence: Option<f32>,
    probs: Option<Probs<'a>>,
    top: Option<&'a [Scored]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frame: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_s: Option<Option<f64>>,
}

/// Writes `r` as one JSON line.
pub fn write_json(out: &mut impl Write, r: &Record, labels: &[String]) -> anyhow::Result<()> {
    let line = JsonLine {
        path: r.path,
        face: r.face,
        faces: r.faces,
        crop: r.crop,
        detector: r.found.map(|f| f.range),
        score: r.found.map(|f| f.face.score),
        bbox: r.bbox,
        landmarks: r.found.map(|f| Landmarks(&f.face.keypoints)),
        label: r.pred.map(|p| p.top[0].label.as_str()),
        confidence: r.pred.map(|p| p.top[0].prob),
        probs: r.pred.map(|p| Probs(labels, &p.probs)),
        top: r.pred.map(|p| p.top.as_slice()),
        frame: r.frame.map(|f| f.0),
        time_s: r.frame.map(|f| f.1),
    };
    serde_json::to_writer(&mut *out, &line)?;
    writeln!(out)?;
    Ok(())
}

/// The CSV header: one column per class (named by the label) after the face's columns.
pub fn csv_header(labels: &[String]) -> String {
    let mut h: Vec<String> = ["path", "face", "faces", "crop", "detector", "score"]
        .iter()
        .chain(&["x0", "y0", "x1", "y1"])
        .map(|s| s.to_string())
        .collect();
    for l in LANDMARKS {
        h.push(format!("{l}_x"));
        h.push(format!("{l}_y"));
    }
    h.push("label".into());
    h.push("confidence".into());
    h.extend(labels.iter().map(|l| csv_field(l)));
    h.join(",")
}

/// Writes `r` as one CSV row (empty fields where a value does not apply); with `frames`, the
/// row ends with the video frame's index and time (empty for a photo).
pub fn write_csv(
    out: &mut impl Write,
    r: &Record,
    labels: &[String],
    frames: bool,
) -> anyhow::Result<()> {
    let opt = |v: Option<String>| v.unwrap_or_default();
    let mut row = vec![
        csv_field(r.path),
        opt(r.face.map(|f| f.to_string())),
        r.faces.to_string(),
        r.crop.as_str().to_string(),
        opt(r.found.map(|f| format!("{:?}", f.range).to_lowercase())),
        opt(r.found.map(|f| f.face.score.to_string())),
    ];
    row.extend((0..4).map(|i| opt(r.bbox.map(|b| b[i].to_string()))));
    for k in 0..12 {
        row.push(opt(r.found.map(|f| f.face.keypoints[k / 2][k % 2].to_string())));
    }
    row.push(opt(r.pred.map(|p| csv_field(&p.top[0].label))));
    row.push(opt(r.pred.map(|p| p.top[0].prob.to_string())));
    for i in 0..labels.len() {
        row.push(opt(r.pred.and_then(|p| p.probs.get(i)).map(|v| v.to_string())));
    }
    if frames {
        row.push(opt(r.frame.map(|f| f.0.to_string())));
        row.push(opt(r.frame.and_then(|f| f.1).map(|t| t.to_string())));
    }
    writeln!(out, "{}", row.join(","))?;
    Ok(())
}

/// Quotes a CSV field when it holds a comma, quote or line break (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes annotated copies of the inputs into a folder, one PNG per input, named after the
/// input (`photo.jpg` → `photo.png`; `photo-2.png` for a second `photo.*`).
pub struct Annotator {
    dir: PathBuf,
    used: HashSet<String>,
}

impl Annotator {
    /// Creates the folder.
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("creating --annotate folder {}: {e}", dir.display()))?;
        Ok(Annotator { dir: dir.to_path_buf(), used: HashSet::new() })
    }

    /// Draws the records of one image into `img` (live's drawing) and writes it.
    pub fn write(
        &mut self,
        source: &Path,
        mut img: RgbImage,
        recs: &[Record],
        labels: &[String],
    ) -> anyhow::Result<PathBuf> {
        let faces = recs
            .iter()
            .filter_map(|r| {
                let (p, bbox) = (r.pred?, r.bbox?);
                Some(FaceResult {
                    id: r.face? as u64,
                    score: r.found.map_or(1.0, |f| f.face.score),
                    bbox,
                    label: p.top[0].label.clone(),
                    confidence: p.top[0].prob,
                    probs: p.probs.clone(),
                })
            })
            .collect();
        let frame = FrameResult {
            frame: 0,
            path: None,
            size: [img.width(), img.height()],
            faces,
            labels: labels.to_vec(),
            truth: None,
            ms: Timings::default(),
        };
        draw::annotate(&mut img, &frame);
        let stem = source.file_stem().map_or("image".into(), |s| s.to_string_lossy().into_owned());
        let mut name = format!("{stem}.png");
        let mut n = 1;
        while !self.used.insert(name.clone()) {
            n += 1;
            name = format!("{stem}-{n}.png");
        }
        let path = self.dir.join(name);
        fer_data::image_file::save_image(&img.into(), &path)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        Ok(path)
    }
}
