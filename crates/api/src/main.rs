use larder_api::{Application, Settings, init_telemetry};

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    init_telemetry(&settings.log);
    Application::build(&settings)?.run_until_stopped().await?;
    Ok(())
}
