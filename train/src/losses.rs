//! Loss terms (cross-entropy, Hinton KD, RKD distance and angle).
