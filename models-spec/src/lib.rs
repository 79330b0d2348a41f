//! Every network of the FER toolkit, defined once as data.
//!
//! A [`Graph`] is a topologically ordered list of [`Node`]s, each applying one [`Op`] of a closed
//! set. Parameter and buffer names are exactly torchvision's `state_dict` keys, so torchvision
//! checkpoints load by name. `train` lowers a graph to libtorch (tch), `export` to ONNX; neither
//! defines a network of its own.
//!
//! ```
//! use fer_models_spec::{spec, Arch, ArchConfig};
//! let g = spec(&ArchConfig::new(Arch::Resnet18, 1000)).unwrap();
//! assert_eq!(g.num_trainable(), 11_689_512);
//! assert_eq!(g.num_classes(), 1000);
//! ```

pub mod arch;
pub mod builder;
pub mod crop;
pub mod error;
pub mod graph;
pub mod ops;

pub use arch::{Arch, ArchConfig, make_divisible, spec};
pub use crop::FaceCrop;
pub use error::{Result, SpecError};
pub use graph::{EMBEDDING_TAP, Graph, Node, NodeId, Op, ParamInfo, ParamKind, Shape};
pub mod meta;
pub use meta::{ColorMode, MetaError, MetaErrors, MetaProps, ModelMeta, Preprocess, ResizeMethod};
