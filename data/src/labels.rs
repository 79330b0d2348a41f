//! The canonical emotion labels and each dataset's id map.
//!
//! Every reader reports its classes as [`Emotion`]s, whatever the dataset calls them
//! (`angry` or `anger`, `happy` or `happiness`, numeric ids that differ per dataset).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The eight basic emotions; the declaration order is the canonical index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Emotion {
    /// No expression.
    Neutral,
    /// Happy.
    Happiness,
    /// Surprised.
    Surprise,
    /// Sad.
    Sadness,
    /// Angry.
    Anger,
    /// Disgusted.
    Disgust,
    /// Fearful.
    Fear,
    /// Contempt (in CK+, FER+ and AffectNet, not in FER-2013 or RAF-DB).
    Contempt,
}

impl Emotion {
    /// All eight, in canonical order.
    pub const ALL: [Emotion; 8] = [
        Emotion::Neutral,
        Emotion::Happiness,
        Emotion::Surprise,
        Emotion::Sadness,
        Emotion::Anger,
        Emotion::Disgust,
        Emotion::Fear,
        Emotion::Contempt,
    ];

    /// Parses any dataset's spelling, case-insensitively: `neutral`, `happy`/`happiness`,
    /// `surprise`/`surprised`, `sad`/`sadness`, `angry`/`anger`, `disgust`/`disgusted`,
    /// `fear`/`fearful`, `contempt`.
    pub fn parse(name: &str) -> Option<Emotion> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "neutral" => Emotion::Neutral,
            "happy" | "happiness" => Emotion::Happiness,
            "surprise" | "surprised" => Emotion::Surprise,
            "sad" | "sadness" => Emotion::Sadness,
            "angry" | "anger" => Emotion::Anger,
            "disgust" | "disgusted" => Emotion::Disgust,
            "fear" | "fearful" => Emotion::Fear,
            "contempt" => Emotion::Contempt,
            _ => return None,
        })
    }

    /// The canonical lowercase name (`happiness`, `anger`, …), as in model metadata.
    pub fn name(self) -> &'static str {
        match self {
            Emotion::Neutral => "neutral",
            Emotion::Happiness => "happiness",
            Emotion::Surprise => "surprise",
            Emotion::Sadness => "sadness",
            Emotion::Anger => "anger",
            Emotion::Disgust => "disgust",
            Emotion::Fear => "fear",
            Emotion::Contempt => "contempt",
        }
    }

    /// The canonical index (position in [`Emotion::ALL`]).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The spellings [`Emotion::parse`] accepts, for error messages.
    pub fn known_names() -> Vec<String> {
        [
            "neutral",
            "happy",
            "happiness",
            "surprise",
            "surprised",
            "sad",
            "sadness",
            "angry",
            "anger",
            "disgust",
            "disgusted",
            "fear",
            "fearful",
            "contempt",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

impl fmt::Display for Emotion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Emotion {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        Emotion::parse(s).ok_or_else(|| {
            crate::Error::invalid(
                "emotion",
                format!("`{s}` (known: {})", Emotion::known_names().join(", ")),
            )
        })
    }
}

/// FER-2013 `emotion` ids 0–6: angry, disgust, fear, happy, sad, surprise, neutral.
pub const FER2013: [Emotion; 7] = [
    Emotion::Anger,
    Emotion::Disgust,
    Emotion::Fear,
    Emotion::Happiness,
    Emotion::Sadness,
    Emotion::Surprise,
    Emotion::Neutral,
];

/// RAF-DB basic-emotion labels 1–7 (index = label − 1): surprise, fear, disgust, happiness,
/// sadness, anger, neutral.
pub const RAFDB: [Emotion; 7] = [
    Emotion::Surprise,
    Emotion::Fear,
    Emotion::Disgust,
    Emotion::Happiness,
    Emotion::Sadness,
    Emotion::Anger,
    Emotion::Neutral,
];

/// AffectNet `expression` ids 0–7: neutral, happy, sad, surprise, fear, disgust, anger,
/// contempt. Ids 8 (none), 9 (uncertain) and 10 (non-face) are not emotions and are excluded.
pub const AFFECTNET: [Emotion; 8] = [
    Emotion::Neutral,
    Emotion::Happiness,
    Emotion::Sadness,
    Emotion::Surprise,
    Emotion::Fear,
    Emotion::Disgust,
    Emotion::Anger,
    Emotion::Contempt,
];

/// Names of AffectNet's non-emotion ids 8, 9 and 10.
pub const AFFECTNET_EXCLUDED: [&str; 3] = ["none", "uncertain", "non-face"];

/// FER+ vote columns after `Image name`: the eight emotions, in this order, then `unknown`
/// and `NF` (not a face).
pub const FERPLUS: [Emotion; 8] = [
    Emotion::Neutral,
    Emotion::Happiness,
    Emotion::Surprise,
    Emotion::Sadness,
    Emotion::Anger,
    Emotion::Disgust,
    Emotion::Fear,
    Emotion::Contempt,
];

/// The classes a model and a dataset have in common, for cross-dataset evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedClasses {
    /// Classes both know, in the model's order.
    pub shared: Vec<Emotion>,
    /// For each shared class, its index among the model's outputs.
    pub model_indices: Vec<usize>,
    /// For each shared class, its index among the dataset's classes.
    pub data_indices: Vec<usize>,
    /// Model classes the dataset has no samples of (their logits are ignored).
    pub dropped_from_model: Vec<Emotion>,
    /// Dataset classes the model cannot predict (their samples are left out).
    pub dropped_from_data: Vec<Emotion>,
}

impl SharedClasses {
    /// A sentence for the user when classes were dropped, `None` when the sets are equal.
    pub fn reason(&self) -> Option<String> {
        let list = |v: &[Emotion]| v.iter().map(|e| e.name()).collect::<Vec<_>>().join(", ");
        let mut parts = Vec::new();
        if !self.dropped_from_model.is_empty() {
            parts.push(format!(
                "the model's classes {} are not in the dataset; their outputs are ignored",
                list(&self.dropped_from_model)
            ));
        }
        if !self.dropped_from_data.is_empty() {
            parts.push(format!(
                "the dataset's classes {} are not predicted by the model; their samples are left out",
                list(&self.dropped_from_data)
            ));
        }
        if parts.is_empty() {
            None
        } else {
            Some(format!(
                "evaluating on the {} shared classes ({}): {}",
                self.shared.len(),
                list(&self.shared),
                parts.join("; ")
            ))
        }
    }
}

/// Matches a model's classes with a dataset's classes by [`Emotion`], for evaluating a model
/// on a dataset it was not trained on (for example a FER-2013 model on CK+, which has
/// contempt and no neutral).
pub fn shared_classes(model: &[Emotion], data: &[Emotion]) -> SharedClasses {
    let mut out = SharedClasses {
        shared: Vec::new(),
        model_indices: Vec::new(),
        data_indices: Vec::new(),
        dropped_from_model: Vec::new(),
        dropped_from_data: Vec::new(),
    };
    for (mi, e) in model.iter().enumerate() {
        match data.iter().position(|d| d == e) {
            Some(di) => {
                out.shared.push(*e);
                out.model_indices.push(mi);
                out.data_indices.push(di);
            }
            None => out.dropped_from_model.push(*e),
        }
    }
    out.dropped_from_data = data.iter().filter(|d| !model.contains(d)).copied().collect();
    out
}
