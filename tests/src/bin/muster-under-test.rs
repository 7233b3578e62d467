//! The server's own entry point ([`server::cli::main`]), built inside the test package so
//! that integration tests can start it as a process, SIGKILL it and restart it.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    server::cli::main().await
}
