//! The `larder` command's library: `replay` streams event files into the API, `generate` writes
//! iFood-shaped data at any scale. A library so the end-to-end tests drive them in process.

pub mod generate;
pub mod replay;
