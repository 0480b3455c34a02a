//! The `larder` command's library: `replay` streams event files into the API, `generate` writes
//! iFood-shaped data at any scale, `jobs` queues and follows worker jobs, `training_set` builds a
//! point-in-time training set in process. A library so the end-to-end tests drive them in process.

pub mod generate;
pub mod jobs;
pub mod replay;
pub mod training_set;
