//! Matching the model's labels with the dataset's classes, for cross-dataset evaluation.
//!
//! Both sides go through the canonical [`Emotion`] map: each model label is parsed with
//! [`Emotion::parse`] (`happy` and `happiness` are one class), and the dataset's classes are
//! already `Emotion`s. A model label that is not an emotion (`class3`, `thumbs_up`) can then
//! only match a dataset class of exactly the same name (case-insensitive), which in practice
//! means it matches nothing and is dropped from the model.
//!
//! Evaluation runs over the shared classes only: samples of dataset classes the model cannot
//! predict are left out, and the model's probabilities are restricted to the shared classes
//! and renormalised (equivalently: softmax over the shared classes' logits only). So a model
//! is neither rewarded nor punished for classes the dataset cannot test.

use std::path::Path;

use fer_data::Emotion;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How the model's outputs and the dataset's classes line up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMap {
    /// The model's labels, in logit order (`fer.labels`).
    pub model_labels: Vec<String>,
    /// The dataset's classes, in its class-index order.
    pub data_classes: Vec<String>,
    /// The classes evaluated, named by the model's labels, in the model's order.
    pub shared: Vec<String>,
    /// For each shared class, its logit index.
    pub model_indices: Vec<usize>,
    /// For each shared class, its dataset class index.
    pub data_indices: Vec<usize>,
    /// Model labels with no samples in the dataset: their probabilities are removed and the
    /// rest renormalised.
    pub dropped_from_model: Vec<String>,
    /// Dataset classes the model cannot predict: their samples are left out.
    pub dropped_from_data: Vec<String>,
    /// Model labels that are not emotions (matched by exact name only).
    pub non_emotion_labels: Vec<String>,
}

impl ClassMap {
    /// Matches `labels` (of the model at `model`) with `classes` (of the dataset at `data`).
    /// Fails with a sentence naming both when nothing is shared.
    pub fn new(model: &Path, labels: &[String], data: &Path, classes: &[Emotion]) -> Result<Self> {
        let parsed: Vec<Option<Emotion>> = labels.iter().map(|l| Emotion::parse(l)).collect();
        let mut map = ClassMap {
            model_labels: labels.to_vec(),
            data_classes: classes.iter().map(|e| e.name().to_string()).collect(),
            shared: Vec::new(),
            model_indices: Vec::new(),
            data_indices: Vec::new(),
            dropped_from_model: Vec::new(),
            dropped_from_data: Vec::new(),
            non_emotion_labels: labels
                .iter()
                .zip(&parsed)
                .filter(|(_, p)| p.is_none())
                .map(|(l, _)| l.clone())
                .collect(),
        };
        for (mi, (label, emotion)) in labels.iter().zip(&parsed).enumerate() {
            let hit = classes.iter().position(|c| match emotion {
                Some(e) => e == c,
                None => label.trim().eq_ignore_ascii_case(c.name()),
            });
            match hit {
                Some(di) if !map.data_indices.contains(&di) => {
                    map.shared.push(label.clone());
                    map.model_indices.push(mi);
                    map.data_indices.push(di);
                }
                _ => map.dropped_from_model.push(label.clone()),
            }
        }
        map.dropped_from_data = (0..classes.len())
            .filter(|di| !map.data_indices.contains(di))
            .map(|di| classes[di].name().to_string())
            .collect();
        if map.shared.is_empty() {
            let not_emotions = if map.non_emotion_labels.is_empty() {
                String::new()
            } else {
                format!(
                    "; the labels {} are not emotions (known: {})",
                    quote(&map.non_emotion_labels),
                    Emotion::known_names().join(", ")
                )
            };
            return Err(Error::Classes {
                msg: format!(
                    "{}: no class of the model's fer.labels [{}] is among the classes of dataset \
                     {} [{}]{not_emotions}; nothing can be evaluated",
                    model.display(),
                    labels.join(", "),
                    data.display(),
                    map.data_classes.join(", "),
                ),
            });
        }
        Ok(map)
    }

    /// Number of classes evaluated.
    pub fn k(&self) -> usize {
        self.shared.len()
    }

    /// Whether classes were dropped on either side.
    pub fn is_partial(&self) -> bool {
        !self.dropped_from_model.is_empty() || !self.dropped_from_data.is_empty()
    }

    /// The shared class index of dataset class `data_class`, `None` when it is dropped.
    pub fn shared_index(&self, data_class: usize) -> Option<usize> {
        self.data_indices.iter().position(|d| *d == data_class)
    }

    /// Sentences for the user about what was dropped (empty when the classes are equal).
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.non_emotion_labels.is_empty() {
            out.push(format!(
                "model labels {} are not emotions; they were matched by exact name only",
                quote(&self.non_emotion_labels)
            ));
        }
        if self.is_partial() {
            out.push(format!(
                "evaluating on the {} shared classes: {}",
                self.k(),
                self.shared.join(", ")
            ));
        }
        if !self.dropped_from_model.is_empty() {
            out.push(format!(
                "dropped from the model: {} (not in the dataset; their probabilities are removed \
                 and the rest renormalised)",
                self.dropped_from_model.join(", ")
            ));
        }
        if !self.dropped_from_data.is_empty() {
            out.push(format!(
                "dropped from the data: {} (the model cannot predict them; their samples are left \
                 out)",
                self.dropped_from_data.join(", ")
            ));
        }
        out
    }

    /// Probabilities `[N, K_shared]` from logits `[N, K_model]`: softmax of `logits / t`
    /// restricted to the shared classes and renormalised (the same as a softmax over the
    /// shared logits only).
    pub fn probabilities(&self, logits: &[f32], t: f64) -> Vec<f32> {
        let km = self.model_labels.len();
        let mut shared = Vec::with_capacity(logits.len() / km * self.k());
        for row in logits.chunks_exact(km) {
            shared.extend(self.model_indices.iter().map(|&i| row[i]));
        }
        fer_metrics::softmax(&shared, self.k(), t)
    }
}

fn quote(v: &[String]) -> String {
    v.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn fer_model_on_ckplus_drops_neutral_and_contempt() {
        use Emotion::*;
        let model = s(&["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]);
        // CK+ folder order: anger contempt disgust fear happy sadness surprise.
        let data = [Anger, Contempt, Disgust, Fear, Happiness, Sadness, Surprise];
        let m = ClassMap::new("m.onnx".as_ref(), &model, "ck".as_ref(), &data).unwrap();
        assert_eq!(m.shared, s(&["angry", "disgust", "fear", "happy", "sad", "surprise"]));
        assert_eq!(m.model_indices, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(m.data_indices, vec![0, 2, 3, 4, 5, 6]);
        assert_eq!(m.dropped_from_model, s(&["neutral"]));
        assert_eq!(m.dropped_from_data, s(&["contempt"]));
        assert_eq!(m.shared_index(1), None);
        assert_eq!(m.shared_index(2), Some(1));
        let notes = m.notes().join("\n");
        assert!(notes.contains("dropped from the model: neutral"), "{notes}");
        assert!(notes.contains("dropped from the data: contempt"), "{notes}");
    }

    #[test]
    fn restricted_probabilities_renormalise() {
        let m = ClassMap::new(
            "m.onnx".as_ref(),
            &s(&["happy", "neutral", "sad"]),
            "d".as_ref(),
            &[Emotion::Sadness, Emotion::Happiness],
        )
        .unwrap();
        let p = m.probabilities(&[1.0, 5.0, 2.0], 1.0);
        let e = (1.0f64.exp(), 2.0f64.exp());
        assert!((p[0] as f64 - e.0 / (e.0 + e.1)).abs() < 1e-6);
        assert!((p[1] as f64 - e.1 / (e.0 + e.1)).abs() < 1e-6);
    }

    #[test]
    fn non_emotion_labels_share_nothing_and_say_so() {
        let e = ClassMap::new(
            "m.onnx".as_ref(),
            &s(&["cat", "dog"]),
            "data/pets".as_ref(),
            &[Emotion::Happiness],
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("m.onnx: no class of the model's fer.labels [cat, dog]"), "{e}");
        assert!(e.contains("data/pets [happiness]"), "{e}");
        assert!(e.contains("`cat`, `dog` are not emotions"), "{e}");
    }
}
