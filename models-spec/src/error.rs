//! Errors raised while building or checking a graph.

/// Everything that can go wrong while building an architecture's graph.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// An option is out of the range the architecture supports.
    #[error("{arch}: {field} = {value} is not supported ({reason})")]
    BadOption {
        /// Architecture id, for example `inception_v3`.
        arch: String,
        /// Option name, for example `input_size`.
        field: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused and what is allowed.
        reason: String,
    },
    /// An op received inputs whose shapes it cannot combine.
    #[error("node `{node}`: {msg} (input shapes {inputs:?})")]
    Shape {
        /// Name of the node being added.
        node: String,
        /// What does not fit.
        msg: String,
        /// The shapes of its inputs.
        inputs: Vec<Vec<usize>>,
    },
    /// Two parameters or nodes were given the same name.
    #[error("duplicate name `{0}` in the graph")]
    DuplicateName(String),
    /// An architecture id that models-spec does not define.
    #[error("unknown architecture `{0}` (known: {known})", known = crate::Arch::ALL_IDS.join(", "))]
    UnknownArch(String),
}

/// Result alias of this crate.
pub type Result<T, E = SpecError> = std::result::Result<T, E>;
