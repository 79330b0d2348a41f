//! Training on libtorch.
