//! Workspace-level tests live in `tests/`; this crate has no code of its own. The
//! README's Rust examples are its doc tests, so that the README shows code that compiles.

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct Readme;
