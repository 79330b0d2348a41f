//! The file's `metadata_props`: [`ModelMeta::to_props`] plus what the exporter knows, under
//! the keys of the one codec ([`fer_models_spec::meta::props`]).

use std::collections::BTreeMap;

use fer_checkpoint::{TensorMap, sha256_of_tensors};
use fer_models_spec::meta::keys;
use fer_models_spec::{FaceCrop, ModelMeta};

/// Key of the hash of the source weights ([`fer_checkpoint::sha256_of_tensors`]).
pub const KEY_WEIGHTS_SHA256: &str = keys::WEIGHTS_SHA256;
/// Key of the toolkit version that wrote the file.
pub const KEY_TOOLKIT_VERSION: &str = keys::TOOLKIT_VERSION;
/// Key of the JSON list of output names.
pub const KEY_OUTPUTS: &str = keys::OUTPUTS;
/// Key recording whether BatchNorms were folded into convolutions (`true`/`false`).
pub const KEY_BN_FOLDED: &str = keys::BN_FOLDED;

/// All metadata pairs of an exported file.
pub(crate) fn metadata(
    meta: &ModelMeta,
    weights: &TensorMap,
    outputs: &[&str],
    bn_folded: bool,
    crop: Option<FaceCrop>,
) -> BTreeMap<String, String> {
    let mut props = meta.to_props();
    props.insert(KEY_WEIGHTS_SHA256.into(), sha256_of_tensors(weights));
    props.insert(KEY_TOOLKIT_VERSION.into(), env!("CARGO_PKG_VERSION").into());
    props
        .insert(KEY_OUTPUTS.into(), serde_json::to_string(outputs).unwrap_or_else(|_| "[]".into()));
    props.insert(KEY_BN_FOLDED.into(), bn_folded.to_string());
    if let Some(c) = crop {
        props.insert(keys::CROP.into(), c.to_prop());
    }
    props
}
