use tracing_subscriber::{EnvFilter, fmt};

use crate::{LogFormat, LogSettings};

/// Installs the global subscriber once: pretty for people, JSON for log pipelines.
/// `RUST_LOG` overrides `log.level`. Libraries only emit events; they never log bodies,
/// personal fields (cpf, names, phones) or tokens.
pub fn init_telemetry(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter);
    // A second call (tests) finds a subscriber installed and leaves it.
    let _ = match settings.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
