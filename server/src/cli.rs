//! The command line: `muster [serve] [--demo]`. The `muster` binary is only a call to
//! [`main`]; the test suite builds the same entry point as its own binary, so that it can
//! kill and restart real server processes.

use anyhow::{Context, bail};
use tracing_subscriber::EnvFilter;

use crate::Config;

const USAGE: &str = "usage: muster [serve] [--demo]

  serve    run the server (the default)
  --demo   seed a dozen sample incidents (same as MUSTER_DEMO=1)

Environment: MUSTER_ADDR, DATABASE_URL, MUSTER_SITE_ROOT, MUSTER_DEMO, RUST_LOG.";

/// Reads configuration and arguments, then serves until SIGTERM or Ctrl-C.
pub async fn main() -> anyhow::Result<()> {
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
    let muster = crate::build(&config).await.context("starting Muster")?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("listening on {}", config.addr))?;
    // Tests and scripts read this line to learn the port when MUSTER_ADDR asks for port 0.
    println!("listening on http://{}", listener.local_addr()?);
    tracing::info!("Muster is running on http://{}", listener.local_addr()?);
    crate::serve(listener, muster.router).await.context("serving")?;
    muster.store.close().await;
    tracing::info!("stopped");
    Ok(())
}
