//! The `muster` binary.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    server::cli::main().await
}
