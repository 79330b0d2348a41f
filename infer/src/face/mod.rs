//! Faces in camera frames: detection with BlazeFace ([`blazeface`]) on ONNX Runtime or tract.

pub mod blazeface;
pub mod raw;

pub use blazeface::{BlazeFace, Face, Range};
