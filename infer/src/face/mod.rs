//! Faces in images: detection with BlazeFace ([`blazeface`]) on ONNX Runtime or tract, and the
//! choice between its short- and full-range models for photos ([`finder`]).

pub mod blazeface;
pub mod finder;
pub mod raw;

pub use blazeface::{BlazeFace, Face, Range};
pub use finder::{FaceFinder, FinderOptions, Found, RangeChoice};
