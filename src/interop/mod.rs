//! Plans to and from other tools' formats.

pub mod asr;
