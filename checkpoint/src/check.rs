//! Checking weights against a model spec before any of them is used.

use std::collections::BTreeSet;
use std::fmt;

use fer_models_spec::Graph;

use crate::error::{Error, Result};
use crate::tensor::TensorMap;

/// How strictly [`check_against`] compares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Ignore the classifier's parameters ([`classifier_params`]) on both sides: for fine-tuning
    /// pretrained weights on another number of classes, the head is re-initialised anyway.
    pub skip_classifier: bool,
}

/// One tensor whose shape differs from the spec's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrongShape {
    /// Tensor name.
    pub name: String,
    /// Shape the spec expects.
    pub expected: Vec<usize>,
    /// Shape in the weights.
    pub got: Vec<usize>,
}

/// Every difference between a set of weights and a spec, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mismatch {
    /// In the spec, not in the weights: `(name, expected shape)`, in module order.
    pub missing: Vec<(String, Vec<usize>)>,
    /// In the weights, not in the spec: `(name, shape)`, sorted by name.
    pub unexpected: Vec<(String, Vec<usize>)>,
    /// In both, with different shapes, in module order.
    pub wrong_shape: Vec<WrongShape>,
    /// Whether every wrong-shaped tensor belongs to the classifier (another number of classes).
    pub only_classifier_differs: bool,
}

/// Lines shown per group of [`Mismatch`]'s `Display` before "… and N more".
pub const MAX_LINES_PER_GROUP: usize = 20;

impl Mismatch {
    /// Whether there is no difference at all.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.wrong_shape.is_empty()
    }
}

fn group<T>(
    f: &mut fmt::Formatter<'_>,
    title: &str,
    items: &[T],
    line: impl Fn(&T) -> String,
) -> fmt::Result {
    if items.is_empty() {
        return Ok(());
    }
    write!(f, "\n{title} ({}):", items.len())?;
    for it in items.iter().take(MAX_LINES_PER_GROUP) {
        write!(f, "\n  {}", line(it))?;
    }
    if items.len() > MAX_LINES_PER_GROUP {
        write!(f, "\n  ... and {} more", items.len() - MAX_LINES_PER_GROUP)?;
    }
    Ok(())
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "weights do not match the model: {} missing, {} unexpected, {} with the wrong shape",
            self.missing.len(),
            self.unexpected.len(),
            self.wrong_shape.len()
        )?;
        group(f, "missing", &self.missing, |(n, s)| format!("{n} (expected shape {s:?})"))?;
        group(f, "unexpected", &self.unexpected, |(n, s)| format!("{n} (shape {s:?})"))?;
        group(f, "wrong shape", &self.wrong_shape, |w| {
            format!("{}: expected {:?}, got {:?}", w.name, w.expected, w.got)
        })?;
        if self.only_classifier_differs {
            write!(
                f,
                "\nonly the classifier differs (another number of classes?): skip the classifier \
                 to fine-tune from these weights"
            )?;
        }
        Ok(())
    }
}

/// Names of the parameters of the classifier, the final Linear layer (the node
/// [`Graph::output`]), in module order. Empty if the output node has no parameters.
pub fn classifier_params(graph: &Graph) -> Vec<String> {
    graph.node(graph.output).params().into_iter().map(|p| p.name).collect()
}

/// Compares the names and shapes of `weights` with `graph`'s parameters and buffers.
///
/// Returns one [`Error::Mismatch`] listing every missing, unexpected and wrong-shaped tensor.
/// Scalars such as `num_batches_tracked` have the empty shape `[]`; element types are not
/// compared (readers convert floats to f32 and integers to i64).
pub fn check_against(graph: &Graph, weights: &TensorMap, opts: &CheckOptions) -> Result<()> {
    let head: BTreeSet<String> = classifier_params(graph).into_iter().collect();
    let skip = |name: &str| opts.skip_classifier && head.contains(name);
    let mut m = Mismatch::default();
    let mut known = BTreeSet::new();
    for p in graph.params() {
        known.insert(p.name.clone());
        if skip(&p.name) {
            continue;
        }
        match weights.get(&p.name) {
            None => m.missing.push((p.name, p.shape)),
            Some(t) if t.shape != p.shape => m.wrong_shape.push(WrongShape {
                name: p.name,
                expected: p.shape,
                got: t.shape.clone(),
            }),
            Some(_) => {}
        }
    }
    for (name, t) in weights {
        if !known.contains(name) && !skip(name) {
            m.unexpected.push((name.clone(), t.shape.clone()));
        }
    }
    if m.is_empty() {
        return Ok(());
    }
    m.only_classifier_differs = m.missing.is_empty()
        && m.unexpected.is_empty()
        && m.wrong_shape.iter().all(|w| head.contains(&w.name));
    Err(Error::Mismatch(Box::new(m)))
}

#[cfg(test)]
mod tests {
    use fer_models_spec::{Arch, ArchConfig, spec};

    use super::*;
    use crate::tensor::HostTensor;

    fn zeros_for(graph: &Graph) -> TensorMap {
        graph
            .params()
            .into_iter()
            .map(|p| {
                let n = p.shape.iter().product();
                (p.name, HostTensor::f32(p.shape, vec![0.0; n]))
            })
            .collect()
    }

    #[test]
    fn weights_made_from_the_spec_pass() {
        let g = spec(&ArchConfig::new(Arch::MobilenetV3Small, 7)).unwrap();
        check_against(&g, &zeros_for(&g), &CheckOptions::default()).unwrap();
    }

    #[test]
    fn mismatch_lists_each_group_by_name_and_caps_long_groups() {
        let g = spec(&ArchConfig::new(Arch::Resnet18, 7)).unwrap();
        let mut w = zeros_for(&g);
        for i in 0..25 {
            w.insert(format!("extra.{i:02}"), HostTensor::f32(vec![1], vec![0.0]));
        }
        w.remove("layer1.0.bn1.num_batches_tracked");
        w.insert("conv1.weight".into(), HostTensor::f32(vec![64, 1, 7, 7], vec![0.0; 64 * 49]));
        let Err(Error::Mismatch(m)) = check_against(&g, &w, &CheckOptions::default()) else {
            panic!("expected a mismatch");
        };
        assert_eq!(m.missing, vec![("layer1.0.bn1.num_batches_tracked".to_string(), vec![])]);
        assert_eq!(m.unexpected.len(), 25);
        assert_eq!(m.wrong_shape.len(), 1);
        assert!(!m.only_classifier_differs);
        let text = m.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "weights do not match the model: 1 missing, 25 unexpected, 1 with the wrong shape"
        );
        assert!(lines.contains(&"  layer1.0.bn1.num_batches_tracked (expected shape [])"));
        assert!(lines.contains(&"  extra.19 (shape [1])"));
        assert!(!lines.contains(&"  extra.20 (shape [1])"));
        assert!(lines.contains(&"  ... and 5 more"));
        assert!(lines.contains(&"  conv1.weight: expected [64, 3, 7, 7], got [64, 1, 7, 7]"));
    }

    #[test]
    fn classifier_params_are_the_output_linear() {
        let g = spec(&ArchConfig::new(Arch::Resnet18, 7)).unwrap();
        assert_eq!(classifier_params(&g), ["fc.weight", "fc.bias"]);
    }
}
