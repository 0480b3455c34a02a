//! The composition root of the HTTP server: settings, telemetry, and `Application::build`, which
//! wires the Redis adapters into the use cases and the use cases into the routes. Kept in a library
//! so the end-to-end tests start the very same application on port 0.

mod application;
mod settings;
mod telemetry;

pub use application::Application;
pub use settings::{
    AuthSettings, BatchSettings, FeaturesSettings, LakeSettings, LogFormat, LogSettings,
    ServerSettings, Settings, WorkerSettings,
};
pub use telemetry::init_telemetry;
