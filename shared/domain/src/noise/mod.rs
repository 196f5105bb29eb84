//! Noise: flap damping ([`flapping`]) and alert storms ([`storms`]).
//! Silences are their own capability (`crate::silences`). See
//! docs/NOISE.md.

pub mod flapping;
pub mod storms;
