//! Runs exported FER models: ONNX Runtime or tract behind one [`backend::Backend`] trait.
//!
//! An ONNX file is read once ([`OnnxFile`]); its `metadata_props` give the labels,
//! preprocessing and temperature ([`InferMeta`]), or the user supplies them
//! ([`MetaOverrides`]). [`Model`] ties a backend to that metadata and classifies images with
//! the preprocessing shared with training (`fer_data::preprocess`). [`parity`] compares the
//! runtimes on the same inputs and [`bench`] measures their latency.
//!
//! ```no_run
//! use fer_infer::{BackendOptions, MetaOverrides, Model};
//! let mut model = Model::open(
//!     "model.onnx".as_ref(),
//!     &BackendOptions::ort_cpu(),
//!     &MetaOverrides::default(),
//! )?;
//! let img = fer_infer::predict::load_image("face.png".as_ref())?;
//! let pred = model.predict(&[img], &[], 3)?;
//! println!("{} {:.3}", pred[0].top[0].label, pred[0].top[0].prob);
//! # Ok::<(), fer_infer::Error>(())
//! ```

pub mod assets;
pub mod backend;
pub mod bench;
pub mod calibrate;
pub mod error;
pub mod eval;
pub mod face;
pub mod meta;
pub mod model;
pub mod onnx_file;
pub mod parity;
pub mod photo;
pub mod predict;
pub mod report;

pub use backend::{Backend, BackendKind, BackendOptions, ExecutionProvider, Outputs};
pub use error::{Error, Result};
pub use meta::{InferMeta, MetaOverrides};
pub use model::Model;
pub use onnx_file::OnnxFile;
