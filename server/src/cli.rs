//! The command line: `muster [serve] [--demo]`. The `muster` binary is only a call to
//! [`main`]; the test suite builds the same entry point as its own binary, so that it can
//! kill and restart real server processes.

use anyhow::{Context, bail};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::Config;

const USAGE: &str = "usage: muster [serve] [--demo]
       muster create-admin LOGIN NAME

  serve         run the server (the default)
  --demo        seed sample people (one of each role) and a dozen sample incidents
                (same as MUSTER_DEMO=1)
  create-admin  create an administrator account in the database; the password is read
                from MUSTER_ADMIN_PASSWORD if set, otherwise from the first line of
                standard input (at least 12 characters)

Environment: MUSTER_ADDR, DATABASE_URL, MUSTER_SITE_ROOT, MUSTER_DEMO, MUSTER_PUBLIC_URL,
MUSTER_SESSION_DAYS, RUST_LOG.";

/// Whatever `RUST_LOG` asks for, no debug or trace events from Automerge: at those levels
/// it logs the values it inserts, which are report text (names, what happened).
fn no_document_contents<S: tracing::Subscriber>() -> impl tracing_subscriber::Layer<S> {
    tracing_subscriber::filter::filter_fn(|meta| {
        !(meta.target().starts_with("automerge") && *meta.level() > tracing::Level::INFO)
    })
}

/// Reads configuration and arguments, then serves until SIGTERM or Ctrl-C.
pub async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        )
        .finish()
        .with(no_document_contents())
        .init();
    let mut config = Config::from_env(|k| std::env::var(k).ok())?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("create-admin") {
        let [_, login, name] = args.as_slice() else {
            bail!("create-admin needs a login and a name\n{USAGE}");
        };
        return create_admin(&config, login, name).await;
    }
    for arg in args {
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

/// `muster create-admin LOGIN NAME`: the first administrator (or another one).
async fn create_admin(config: &Config, login: &str, name: &str) -> anyhow::Result<()> {
    let password = match std::env::var("MUSTER_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            eprintln!(
                "password for {login} (at least {} characters):",
                crate::accounts::MIN_PASSWORD_CHARS
            );
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let store = crate::db::Store::open(&config.database_url)
        .await
        .context("opening the database")?;
    let user = crate::accounts::NewUser {
        login: login.to_owned(),
        name: name.to_owned(),
        role: app::domain::access::Role::Admin,
        password,
        teams: Vec::new(),
    };
    let id = store
        .create_user(user, crate::clock::Clock::now(&crate::clock::SystemClock))
        .await
        .context("creating the administrator")?;
    store.close().await;
    println!("created administrator {login} ({id})");
    Ok(())
}
