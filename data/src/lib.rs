//! FER datasets: readers, label map, preprocessing, augmentation, loader, synthetic set.
//!
//! Every reader implements [`dataset::Dataset`]; [`formats::open`] picks one by
//! [`formats::Format`]. Class indices of a reader index into [`dataset::Dataset::classes`],
//! which names canonical [`labels::Emotion`]s, so sets with different label ids can be
//! compared through [`labels::shared_classes`].

pub mod augment;
pub mod cache;
pub mod dataset;
pub mod error;
pub mod face_crop;
pub mod formats;
pub mod image_file;
pub mod inspect;
pub mod labels;
pub mod loader;
pub mod pixels;
pub mod preprocess;
pub mod split;
pub mod synth;

pub use dataset::{Dataset, Sample, SplitName, Target};
pub use error::{Error, Result};
pub use image_file::decode_image;
pub use labels::Emotion;
