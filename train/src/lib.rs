//! Training on libtorch (tch): the lowering of models-spec graphs, losses, the trainer.

pub mod amp;
pub mod config;
pub mod cuda_graph;
pub mod device;
pub mod dist;
pub mod error;
pub mod extras;
pub mod init;
pub mod losses;
pub mod lower;
pub mod sweep;
pub mod trainer;
pub mod weights;

pub use error::{Error, Result};
pub use lower::{Forward, TchModel, WeightInit};
