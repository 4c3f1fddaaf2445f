//! # quartier-guide
//!
//! The printable neighbourhood guide (`docs/standards.md`, "The printed guide").
