//! The `muster` binary: read configuration, start the server.

use anyhow::{Context, bail};
use server::Config;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: muster [serve] [--demo]

  serve    run the server (the default)
  --demo   seed a dozen sample incidents (same as MUSTER_DEMO=1)

Environment: MUSTER_ADDR, DATABASE_URL, MUSTER_SITE_ROOT, MUSTER_DEMO, RUST_LOG.";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        )
        .init();
    let mut config = Config::from_env(|k| std::env::var(k).ok())?;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "serve" => {}
            "--demo" => config.demo = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    tracing::info!(?config, "starting");
    let muster = server::build(&config).await.context("starting Muster")?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("listening on {}", config.addr))?;
    tracing::info!("Muster is running on http://{}", listener.local_addr()?);
    server::serve(listener, muster.router).await.context("serving")?;
    Ok(())
}
