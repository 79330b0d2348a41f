//! Random weights for a models-spec graph (shared by the tests, the criterion bench and the
//! `random_model` example through `#[path]`).

use fer_checkpoint::{HostTensor, TensorMap};
use fer_models_spec::{Graph, ParamKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// [`random_weights_with_gain`] with gain 1 (fine for ResNets and for timing).
#[allow(dead_code)]
pub fn random_weights(graph: &Graph, seed: u64) -> TensorMap {
    random_weights_with_gain(graph, seed, 1.0)
}

/// Random weights: conv and linear weights uniform in `±sqrt(3 · gain / fan_in)` (variance
/// `gain / fan_in`), BatchNorm scales in [0.5, 1.5], shifts and running means in ±0.1, running
/// variances in [0.5, 1.5].
///
/// With `gain` 1 the signal dies out in deep MobileNetV3/EfficientNet stacks (hard-swish and
/// squeeze-excitation shrink it at every block), so every input gets the same logits; about
/// 2 keeps their outputs input-dependent without chaotic growth, while ResNets need 1.
pub fn random_weights_with_gain(graph: &Graph, seed: u64, gain: f32) -> TensorMap {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut map = TensorMap::new();
    for p in graph.params() {
        let n: usize = p.shape.iter().product();
        let t = match p.kind {
            ParamKind::Counter => HostTensor::i64(p.shape.clone(), vec![0; n]),
            _ => {
                let (lo, hi) = if p.name.ends_with("running_var") {
                    (0.5, 1.5)
                } else if p.shape.len() >= 2 {
                    let fan_in: usize = p.shape[1..].iter().product();
                    let a = (3.0 * gain / fan_in as f32).sqrt();
                    (-a, a)
                } else if p.name.ends_with(".weight") {
                    (0.5, 1.5)
                } else {
                    (-0.1, 0.1)
                };
                let v = (0..n).map(|_| rng.gen_range(lo..hi)).collect();
                HostTensor::f32(p.shape.clone(), v)
            }
        };
        map.insert(p.name, t);
    }
    map
}
