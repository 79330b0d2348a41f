//! The `[model]` (the network trained) and `[preprocess]` sections.

use std::path::PathBuf;
use std::sync::OnceLock;

use fer_models_spec::ArchConfig;
use fer_models_spec::meta::{ColorMode, Preprocess, ResizeMethod};
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::lower::WeightInit;

/// The `[model]` section: the network and how its weights start.
///
/// In the file the section is one flat table: [`ArchConfig`]'s fields (`arch`, `num_classes`,
/// `in_channels`, `input_size`, `width_mult`, `dropout`, with their names, defaults and checks
/// owned by models-spec) beside `init`, `weight_init` and `zero_init_residual`. It is read
/// without `#[serde(flatten)]` (which would lose the field's path and line in error messages):
/// the [`Deserialize`] impl below hands `ArchConfig`'s derived reader the table's keys one by
/// one and keeps its own three for itself, so an error still names `model.width_mult` and its
/// line.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// The network: architecture (required: `mobilenet_v3_small`, `mobilenet_v3_large`,
    /// `efficientnet_b0`, `resnet18`, `resnet50` or `inception_v3`), classifier outputs
    /// (required; must equal the dataset's number of classes), input channels, input size,
    /// width multiplier and dropout, with models-spec's defaults.
    pub net: ArchConfig,
    /// Weights to start from (`init`). Default: none (fresh initialisation).
    pub init: Option<InitConfig>,
    /// How fresh weights are drawn (`weight_init`): `torchvision` (the architecture's own
    /// scheme) or `kaiming` (Kaiming-normal convolutions, as for ResNets; Inception-v3 from
    /// scratch needs it). Default `torchvision`.
    pub weight_init: WeightInit,
    /// `zero_init_residual`: every residual block starts as the identity, the batch norm that
    /// ends its branch scaled by zero (Goyal et al. 2017; torchvision's option of the same name
    /// for ResNets, here for every architecture with residual blocks). Applies to fresh
    /// weights. Default false.
    pub zero_init_residual: bool,
}

/// The keys of `[model]` that are not [`ArchConfig`]'s.
const OWN_FIELDS: [&str; 3] = ["init", "weight_init", "zero_init_residual"];

/// Every key of `[model]`, in the order error messages list them: [`ArchConfig`]'s (as its
/// derived `Deserialize` declares them), then [`OWN_FIELDS`].
fn model_fields() -> &'static [&'static str] {
    static FIELDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    FIELDS.get_or_init(|| {
        let mut fields = struct_fields::<ArchConfig>().to_vec();
        fields.extend(OWN_FIELDS);
        fields
    })
}

/// The field names a derived `Deserialize` of a struct passes to `deserialize_struct` (read
/// with a deserializer that only records them), so they are not written out a second time.
fn struct_fields<T: de::DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("only structs are probed"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("probed"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

impl<'de> Deserialize<'de> for ModelConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct("ModelConfig", model_fields(), ModelVisitor)
    }
}

struct ModelVisitor;

impl<'de> Visitor<'de> for ModelVisitor {
    type Value = ModelConfig;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("struct ModelConfig")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ModelConfig, A::Error> {
        let mut keys = NetKeys { map, init: None, weight_init: None, zero_init_residual: None };
        let net = ArchConfig::deserialize(MapAccessDeserializer::new(&mut keys))?;
        Ok(ModelConfig {
            net,
            init: keys.init.flatten(),
            weight_init: keys.weight_init.unwrap_or_default(),
            zero_init_residual: keys.zero_init_residual.unwrap_or(false),
        })
    }
}

/// The `[model]` table as [`ArchConfig`]'s reader sees it: its own keys only. [`OWN_FIELDS`]
/// are read on the way into their slots. Keys and values are read through the table's own
/// `MapAccess`, so the path of a failing field (and its line) is what it would be for a plain
/// struct.
struct NetKeys<A> {
    map: A,
    init: Option<Option<InitConfig>>,
    weight_init: Option<WeightInit>,
    zero_init_residual: Option<bool>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for NetKeys<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            match self.map.next_key_seed(KeyName)? {
                None => return Ok(None),
                Some(Key::Init) if self.init.is_some() => {
                    return Err(de::Error::duplicate_field("init"));
                }
                Some(Key::Init) => self.init = Some(self.map.next_value()?),
                Some(Key::WeightInit) if self.weight_init.is_some() => {
                    return Err(de::Error::duplicate_field("weight_init"));
                }
                Some(Key::WeightInit) => self.weight_init = Some(self.map.next_value()?),
                Some(Key::ZeroInitResidual) if self.zero_init_residual.is_some() => {
                    return Err(de::Error::duplicate_field("zero_init_residual"));
                }
                Some(Key::ZeroInitResidual) => {
                    self.zero_init_residual = Some(self.map.next_value()?);
                }
                Some(Key::Net(name)) => {
                    return seed.deserialize(name.into_deserializer()).map(Some);
                }
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// A key of `[model]`: one of [`OWN_FIELDS`] or one of [`ArchConfig`]'s. Any other key is the
/// "unknown field" error listing every key of the table, raised while the key is read (so the
/// error's path ends with the unknown key).
enum Key {
    Init,
    WeightInit,
    ZeroInitResidual,
    Net(&'static str),
}

struct KeyName;

impl<'de> DeserializeSeed<'de> for KeyName {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for KeyName {
    type Value = Key;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("field identifier")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        match v {
            "init" => Ok(Key::Init),
            "weight_init" => Ok(Key::WeightInit),
            "zero_init_residual" => Ok(Key::ZeroInitResidual),
            _ => match model_fields().iter().find(|f| **f == v) {
                Some(name) => Ok(Key::Net(name)),
                None => Err(E::unknown_field(v, model_fields())),
            },
        }
    }
}

impl Serialize for ModelConfig {
    /// The same flat table the file holds (`config.resolved.toml`, `--set`).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Flat<'a> {
            #[serde(flatten)]
            net: &'a ArchConfig,
            init: &'a Option<InitConfig>,
            weight_init: WeightInit,
            zero_init_residual: bool,
        }
        Flat {
            net: &self.net,
            init: &self.init,
            weight_init: self.weight_init,
            zero_init_residual: self.zero_init_residual,
        }
        .serialize(s)
    }
}

/// `model.init`: weights the student starts from instead of a fresh initialisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitConfig {
    /// A torchvision `state_dict` (`.pth`), a `.safetensors` file or one of our checkpoints
    /// (required). Relative to the config file's folder. `{fold}` is replaced by `data.fold`.
    pub weights: PathBuf,
    /// Keep the final classifier freshly initialised (fine-tuning ImageNet weights to the
    /// dataset's classes). Default false: every parameter must be in the file with its shape.
    #[serde(default)]
    pub skip_classifier: bool,
}

/// The `[preprocess]` section: overrides of the preprocessing the model is trained (and later
/// deployed) with. Absent fields take ImageNet normalisation at the model's input size.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreprocessOverrides {
    /// `gray` (1 input channel) or `rgb` (3). Default: from `model.in_channels`.
    #[serde(default)]
    pub color: Option<ColorMode>,
    /// `bilinear` (antialiased when shrinking) or `nearest`. Default `bilinear`.
    #[serde(default)]
    pub resize: Option<ResizeMethod>,
    /// Per-channel mean on the `[0, 1]` scale, one value per input channel. Default: ImageNet's
    /// (`[0.485, 0.456, 0.406]`; `[0.449]` for one channel).
    #[serde(default)]
    pub mean: Option<Vec<f64>>,
    /// Per-channel standard deviation on the `[0, 1]` scale, each `> 0`. Default: ImageNet's
    /// (`[0.229, 0.224, 0.225]`; `[0.226]` for one channel).
    #[serde(default)]
    pub std: Option<Vec<f64>>,
}

impl PreprocessOverrides {
    /// The preprocessing of `model`: ImageNet defaults with these overrides applied.
    pub fn resolve(&self, model: &ModelConfig) -> Preprocess {
        let mut p = Preprocess::imagenet(model.net.input_size(), model.net.in_channels);
        if let Some(c) = self.color {
            p.color = c;
        }
        if let Some(r) = self.resize {
            p.resize = r;
        }
        if let Some(m) = &self.mean {
            p.mean = m.iter().map(|&v| v as f32).collect();
        }
        if let Some(s) = &self.std {
            p.std = s.iter().map(|&v| v as f32).collect();
        }
        p
    }

    /// The same overrides with every field filled in from [`Self::resolve`].
    pub fn filled(&self, model: &ModelConfig) -> Self {
        let p = self.resolve(model);
        PreprocessOverrides {
            color: Some(p.color),
            resize: Some(p.resize),
            mean: Some(p.mean.iter().map(|&v| decimal(v)).collect()),
            std: Some(p.std.iter().map(|&v| decimal(v)).collect()),
        }
    }
}

/// The `f64` with the shortest decimal form of `v` (0.485, not 0.48500001430511475), which
/// converts back to exactly `v`.
fn decimal(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}
