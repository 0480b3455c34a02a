use larder_api::{Application, Settings, init_telemetry};

// mimalloc returns freed memory to the system: glibc's malloc kept the API at ≈200 MB after
// load (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    init_telemetry(&settings.log);
    Application::build(&settings)?.run_until_stopped().await?;
    Ok(())
}
