//! `larder`: the command-line tool. `larder replay` streams event files into a running API;
//! `larder generate` writes iFood-shaped data at any scale.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};
use larder_cli::{
    generate::{self, DEFAULT_ORDERS, GenerateOptions},
    replay::{self, Display, ReplayOptions},
};
use larder_s3::S3Settings;

// mimalloc: faster than glibc's malloc for Polars' many allocations, and it returns freed
// memory to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: its place in the v3 header's `mi_option_e` (the sys
/// crate names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Stops mimalloc handing freed pages back to the system, for a command that runs once and
/// exits: a training set frees and allocates gigabytes, and taking pages back and faulting them
/// in again cost a tenth of its time (1 M rows: 9.6 s against 7.9–8.8 s, 0.1 GB more RSS).
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // SAFETY: sets one of mimalloc's options; any value is valid, -1 means never purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

#[derive(Parser)]
#[command(name = "larder", version, about = "larder feature store tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stream event files (local or s3://) into POST /v1/events/{source}.
    Replay(ReplayArgs),
    /// Write order.json.gz, status.json.gz, restaurant.csv.gz and consumer.csv.gz.
    Generate(GenerateArgs),
    /// Queue and follow worker jobs (lake-flush, simple_feature, feature-history, compact-bronze,
    /// materialize).
    Jobs(JobsArgs),
    /// Build a point-in-time training set here, from the configured lake's gold tables.
    TrainingSet(TrainingSetArgs),
}

#[derive(clap::Args)]
struct TrainingSetArgs {
    /// Entity table (.parquet or .csv; local or s3://): the views' key columns, an
    /// `event_timestamp` column, and any labels (kept).
    #[arg(long)]
    entities: String,
    /// `view:feature` names or whole views, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    features: Vec<String>,
    /// Output Parquet file (local or s3://).
    #[arg(long)]
    out: String,
    /// The output's compression: snappy, zstd (smallest, slowest to write), lz4 or none (a
    /// Parquet entity table's own columns are copied as it stores them).
    #[arg(long, default_value = "snappy")]
    compression: larder_usecases::SetCompression,
}

#[derive(clap::Args)]
struct JobsArgs {
    #[arg(
        long,
        env = "LARDER_URL",
        default_value = "http://127.0.0.1:8000",
        global = true
    )]
    url: String,
    #[arg(long, env = "LARDER_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: JobsCommand,
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Queue a run; prints its record.
    Run {
        /// lake-flush, simple_feature, feature-history, compact-bronze or materialize.
        name: String,
        /// Wait for the run to finish, at most this many seconds.
        #[arg(long)]
        wait: Option<u64>,
    },
    /// Print a run's record.
    Status { id: String },
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// The API, e.g. http://127.0.0.1:8000.
    #[arg(long, env = "LARDER_URL", default_value = "http://127.0.0.1:8000")]
    url: String,
    /// Bearer token with the write scope (when the API has auth on).
    #[arg(long, env = "LARDER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Events per request (the API accepts up to server.max_batch_events).
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// At most this many events per second, all sources together.
    #[arg(long)]
    rate: Option<f64>,
    /// Merge the sources by event time (each file must be in event-time order) instead of
    /// sending restaurants and consumers first, then orders, then statuses.
    #[arg(long)]
    by_event_time: bool,
    /// Record progress in this file (per input, events known delivered).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Skip what the checkpoint says was delivered.
    #[arg(long, requires = "checkpoint")]
    resume: bool,
    /// Attempts per batch before giving up (connection errors, 429, 5xx are retried).
    #[arg(long, default_value_t = 30)]
    max_attempts: u32,
    /// Progress display.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    progress: ProgressArg,
    /// S3 endpoint for s3:// inputs (MinIO, moto…); AWS_ENDPOINT_URL and the usual AWS
    /// variables apply when unset.
    #[arg(long, env = "LARDER__S3__ENDPOINT")]
    s3_endpoint: Option<String>,
    #[arg(long, env = "LARDER__S3__REGION")]
    s3_region: Option<String>,
    /// Path-style S3 addressing (local servers need it).
    #[arg(long, env = "LARDER__S3__PATH_STYLE")]
    s3_path_style: bool,
    /// Files, directories holding them, or s3://bucket/key or s3://bucket/prefix/.
    #[arg(required = true)]
    paths: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProgressArg {
    Auto,
    Bars,
    Log,
    Quiet,
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// Directory to write the four files into.
    #[arg(long)]
    out: PathBuf,
    /// Number of orders (restaurants and consumers scale with it).
    #[arg(long, default_value_t = DEFAULT_ORDERS)]
    orders: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("larder: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Replay(args) => {
            let options = ReplayOptions {
                url: args.url,
                token: args.token,
                batch_size: args.batch_size,
                concurrency: args.concurrency,
                rate: args.rate,
                by_event_time: args.by_event_time,
                checkpoint: args.checkpoint,
                resume: args.resume,
                max_attempts: args.max_attempts,
                s3: S3Settings {
                    endpoint: args.s3_endpoint.unwrap_or_default(),
                    region: args.s3_region.unwrap_or_default(),
                    path_style: args.s3_path_style,
                    ..S3Settings::default()
                },
                display: match args.progress {
                    ProgressArg::Auto => Display::Auto,
                    ProgressArg::Bars => Display::Bars,
                    ProgressArg::Log => Display::Log,
                    ProgressArg::Quiet => Display::Quiet,
                },
            };
            let report = replay::run(options, &args.paths).await?;
            print!("{}", report.render());
            Ok(if report.success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Jobs(args) => {
            let token = args.token.as_deref();
            let record = match args.command {
                JobsCommand::Run { name, wait } => {
                    larder_cli::jobs::run(
                        &args.url,
                        token,
                        &name,
                        wait.map(std::time::Duration::from_secs),
                    )
                    .await?
                }
                JobsCommand::Status { id } => {
                    larder_cli::jobs::status_of(&args.url, token, &id).await?
                }
            };
            println!("{}", serde_json::to_string_pretty(&record)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::TrainingSet(args) => {
            keep_freed_memory();
            let summary = larder_cli::training_set::run(
                &args.entities,
                args.features,
                &args.out,
                args.compression,
            )
            .await?;
            println!(
                "wrote {} rows × {} features to {} in {:.2} s",
                summary.rows, summary.feature_columns, args.out, summary.seconds
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Generate(args) => {
            let options = GenerateOptions {
                out: args.out,
                orders: args.orders,
                seed: args.seed,
            };
            let summary = tokio::task::spawn_blocking(move || generate::run(&options)).await??;
            println!(
                "wrote {} orders, {} statuses (+{} duplicate rows), {} restaurants, {} consumers in {:.1} s",
                summary.orders,
                summary.statuses,
                summary.status_duplicates,
                summary.restaurants,
                summary.consumers,
                summary.elapsed.as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[allow(unsafe_code)]
    fn the_purge_delay_option_is_the_one_whose_default_is_a_second() {
        // The only option of mimalloc v3 that defaults to 1000 (ms): a wrong index fails here.
        // SAFETY: reads an option.
        let default = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(default, 1000);
    }
}
