//! The ONNX `metadata_props` codec: the one place that names every `fer.*` key and turns
//! [`ModelMeta`] into string pairs and back. `fer-export` writes with it, `fer-infer calibrate`
//! re-encodes the temperature with it, and `fer-infer` reads every file with it.
//!
//! Values are plain strings (`fer.color`, `fer.resize`), decimal numbers, or JSON (`fer.labels`,
//! `fer.mean`, `fer.std`, `fer.arch_config`, `fer.crop`); `docs/onnx-metadata.md` documents
//! them for users of other languages. Reading collects every problem before failing, so a file
//! missing several keys gets one error naming all of them.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use super::{ColorMode, MetaError, ModelMeta, Preprocess, ResizeMethod};
use crate::arch::ArchConfig;
use crate::crop::FaceCrop;

/// Prefix of every metadata key we write.
pub const META_PREFIX: &str = "fer.";
/// Version of the metadata schema.
pub const META_SCHEMA_VERSION: u32 = 1;

/// Every metadata key, named once.
pub mod keys {
    /// Version of the schema (`1`); a newer one is refused.
    pub const SCHEMA_VERSION: &str = "fer.schema_version";
    /// Architecture id, for example `mobilenet_v3_small` (informative).
    pub const ARCH: &str = "fer.arch";
    /// The architecture and its options, JSON.
    pub const ARCH_CONFIG: &str = "fer.arch_config";
    /// Class names in logit order, a JSON list.
    pub const LABELS: &str = "fer.labels";
    /// Number of classes (informative).
    pub const NUM_CLASSES: &str = "fer.num_classes";
    /// Square input side in pixels.
    pub const INPUT_SIZE: &str = "fer.input_size";
    /// Input channels (informative).
    pub const IN_CHANNELS: &str = "fer.in_channels";
    /// Colour handling: `gray`, `rgb` or `gray_rgb`.
    pub const COLOR: &str = "fer.color";
    /// Resize interpolation: `bilinear` or `nearest`.
    pub const RESIZE: &str = "fer.resize";
    /// Per-channel mean, a JSON list.
    pub const MEAN: &str = "fer.mean";
    /// Per-channel standard deviation, a JSON list.
    pub const STD: &str = "fer.std";
    /// Softmax temperature.
    pub const TEMPERATURE: &str = "fer.temperature";
    /// The face crop the model was trained on ([`crate::FaceCrop`]), JSON.
    pub const CROP: &str = crate::crop::KEY_CROP;
    /// SHA-256 of the source weights (written by `fer-export`).
    pub const WEIGHTS_SHA256: &str = "fer.weights_sha256";
    /// Toolkit version that wrote the file.
    pub const TOOLKIT_VERSION: &str = "fer.toolkit_version";
    /// The graph's output names, a JSON list.
    pub const OUTPUTS: &str = "fer.outputs";
    /// Whether BatchNorms were folded into convolutions (`true`/`false`).
    pub const BN_FOLDED: &str = "fer.bn_folded";
}

/// Every problem found in a file's metadata (at least one), in key order of reading.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct MetaErrors(pub Vec<MetaError>);

fn describe(errors: &[MetaError]) -> String {
    let parts: Vec<String> = errors.iter().map(|e| format!("`{}`: {}", e.key, e.msg)).collect();
    format!("model metadata {}", parts.join("; "))
}

impl From<MetaError> for MetaErrors {
    fn from(e: MetaError) -> MetaErrors {
        MetaErrors(vec![e])
    }
}

impl MetaErrors {
    /// One "missing" error per key.
    pub fn missing<'a>(keys: impl IntoIterator<Item = &'a str>) -> MetaErrors {
        MetaErrors(
            keys.into_iter().map(|k| MetaError { key: k.into(), msg: "missing".into() }).collect(),
        )
    }

    /// The keys at fault.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|e| e.key.as_str())
    }
}

/// What a file's `fer.*` metadata says: each value only when present (and parsed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetaProps {
    /// `fer.schema_version`.
    pub schema_version: Option<u32>,
    /// `fer.arch_config`.
    pub arch: Option<ArchConfig>,
    /// `fer.labels`.
    pub labels: Option<Vec<String>>,
    /// `fer.input_size`.
    pub input_size: Option<usize>,
    /// `fer.color`.
    pub color: Option<ColorMode>,
    /// `fer.resize`.
    pub resize: Option<ResizeMethod>,
    /// `fer.mean`.
    pub mean: Option<Vec<f32>>,
    /// `fer.std`.
    pub std: Option<Vec<f32>>,
    /// `fer.temperature`.
    pub temperature: Option<f64>,
    /// `fer.crop`.
    pub crop: Option<FaceCrop>,
}

/// Parses `key` when present; `quote` wraps plain strings (colour, resize) for JSON.
fn parse<T: DeserializeOwned>(
    props: &BTreeMap<String, String>,
    key: &str,
    quote: bool,
    errors: &mut Vec<MetaError>,
) -> Option<T> {
    let raw = props.get(key)?;
    let text = if quote { format!("\"{raw}\"") } else { raw.clone() };
    serde_json::from_str(&text)
        .map_err(|e| {
            errors.push(MetaError { key: key.into(), msg: format!("{raw:?} does not parse ({e})") })
        })
        .ok()
}

impl MetaProps {
    /// The pairs of `meta` (every key [`MetaProps::decode`] reads, plus the informative
    /// `fer.arch`, `fer.num_classes` and `fer.in_channels`).
    pub fn encode(meta: &ModelMeta) -> BTreeMap<String, String> {
        let json = |v: &dyn erased::Json| v.json();
        let p = &meta.preprocess;
        let (tk, tv) = temperature_prop(meta.temperature);
        let pairs = [
            (keys::SCHEMA_VERSION, META_SCHEMA_VERSION.to_string()),
            (keys::ARCH, meta.arch.arch.id().to_string()),
            (keys::ARCH_CONFIG, json(&meta.arch)),
            (keys::LABELS, json(&meta.labels)),
            (keys::NUM_CLASSES, meta.labels.len().to_string()),
            (keys::INPUT_SIZE, p.input_size.to_string()),
            (keys::IN_CHANNELS, p.channels().to_string()),
            (keys::COLOR, json(&p.color).trim_matches('"').to_string()),
            (keys::RESIZE, json(&p.resize).trim_matches('"').to_string()),
            (keys::MEAN, json(&p.mean)),
            (keys::STD, json(&p.std)),
            (tk, tv),
        ];
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// Reads every key that is present, collecting the problems of all of them: values that do
    /// not parse, a schema newer than this toolkit's, a bad `fer.crop`. Absent keys are `None`
    /// here; [`MetaProps::require`] or the caller decides which must be there.
    pub fn decode_all(props: &BTreeMap<String, String>) -> (MetaProps, Vec<MetaError>) {
        let mut errors = Vec::new();
        let e = &mut errors;
        let schema_version: Option<u32> = parse(props, keys::SCHEMA_VERSION, false, e);
        if let Some(v) = schema_version.filter(|v| *v > META_SCHEMA_VERSION) {
            e.push(MetaError {
                key: keys::SCHEMA_VERSION.into(),
                msg: format!("{v} is newer than this toolkit's {META_SCHEMA_VERSION}"),
            });
        }
        let crop = props.get(keys::CROP).and_then(|raw| match FaceCrop::from_prop(raw) {
            Ok(c) => Some(c),
            Err(err) => {
                e.push(err);
                None
            }
        });
        let m = MetaProps {
            schema_version,
            arch: parse(props, keys::ARCH_CONFIG, false, e),
            labels: parse(props, keys::LABELS, false, e),
            input_size: parse(props, keys::INPUT_SIZE, false, e),
            color: parse(props, keys::COLOR, true, e),
            resize: parse(props, keys::RESIZE, true, e),
            mean: parse(props, keys::MEAN, false, e),
            std: parse(props, keys::STD, false, e),
            temperature: parse(props, keys::TEMPERATURE, false, e),
            crop,
        };
        (m, errors)
    }

    /// [`MetaProps::decode_all`], failing with every problem found.
    pub fn decode(props: &BTreeMap<String, String>) -> Result<MetaProps, MetaErrors> {
        match MetaProps::decode_all(props) {
            (m, errors) if errors.is_empty() => Ok(m),
            (_, errors) => Err(MetaErrors(errors)),
        }
    }

    /// The complete [`ModelMeta`]: every key it needs must be present (all missing ones are
    /// named in the one error), with one mean and one std per channel and a positive
    /// temperature.
    pub fn require(self) -> Result<ModelMeta, MetaErrors> {
        let mut absent = Vec::new();
        fn need<T>(v: Option<T>, key: &'static str, absent: &mut Vec<&'static str>) -> Option<T> {
            if v.is_none() {
                absent.push(key);
            }
            v
        }
        let a = &mut absent;
        let version = need(self.schema_version, keys::SCHEMA_VERSION, a);
        let arch = need(self.arch, keys::ARCH_CONFIG, a);
        let labels = need(self.labels, keys::LABELS, a);
        let input_size = need(self.input_size, keys::INPUT_SIZE, a);
        let color = need(self.color, keys::COLOR, a);
        let resize = need(self.resize, keys::RESIZE, a);
        let mean = need(self.mean, keys::MEAN, a);
        let std = need(self.std, keys::STD, a);
        let temperature = need(self.temperature, keys::TEMPERATURE, a);
        let (
            Some(_),
            Some(arch),
            Some(labels),
            Some(input_size),
            Some(color),
            Some(resize),
            Some(mean),
            Some(std),
            Some(temperature),
        ) = (version, arch, labels, input_size, color, resize, mean, std, temperature)
        else {
            return Err(MetaErrors::missing(absent));
        };
        let meta = ModelMeta {
            arch,
            labels,
            preprocess: Preprocess { input_size, color, resize, mean, std },
            temperature,
        };
        let bad = |key: &str, msg: String| MetaErrors::from(MetaError { key: key.into(), msg });
        let c = meta.preprocess.channels();
        if meta.preprocess.mean.len() != c || meta.preprocess.std.len() != c {
            return Err(bad(keys::MEAN, "one mean and one std per input channel expected".into()));
        }
        if meta.temperature.is_nan() || meta.temperature <= 0.0 {
            return Err(bad(keys::TEMPERATURE, format!("{} is not positive", meta.temperature)));
        }
        Ok(meta)
    }

    /// Decodes and requires, with the parse problems and the missing keys in one error.
    pub fn decode_required(props: &BTreeMap<String, String>) -> Result<ModelMeta, MetaErrors> {
        let (m, mut errors) = MetaProps::decode_all(props);
        match m.require() {
            Ok(meta) if errors.is_empty() => Ok(meta),
            Ok(_) => Err(MetaErrors(errors)),
            Err(more) => {
                let bad: Vec<String> = errors.iter().map(|e| e.key.clone()).collect();
                errors.extend(more.0.into_iter().filter(|e| !bad.contains(&e.key)));
                Err(MetaErrors(errors))
            }
        }
    }
}

/// The `fer.temperature` pair for `t` (what [`MetaProps::encode`] writes, and what
/// `fer-infer calibrate` puts into a calibrated file).
pub fn temperature_prop(t: f64) -> (&'static str, String) {
    (keys::TEMPERATURE, format!("{t}"))
}

mod erased {
    /// Object-safe JSON serialisation for the metadata writer.
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}
