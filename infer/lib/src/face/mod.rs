//! Faces in images: detection with BlazeFace ([`blazeface`]) on the runners of
//! [`crate::backend`] (ONNX Runtime or tract), and the
//! choice between its short- and full-range models for photos ([`finder`]).

pub mod align;
pub mod blazeface;
pub mod finder;

pub use blazeface::{BlazeFace, Face, Range};
pub use finder::{FaceFinder, FinderOptions, Found, RangeChoice};
