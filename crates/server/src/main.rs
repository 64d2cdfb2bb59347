use anyhow::Context;
use clap::Parser;
use tidesync::config::{Cli, Command, LogFormat};
use tidesync::App;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A missing .env is normal; a malformed one is worth a warning.
    let dotenv = dotenvy::dotenv();
    let cli = Cli::parse();
    let (log_format, command) = match cli.command {
        Some(Command::Migrate(db)) => (LogFormat::Pretty, Command::Migrate(db)),
        Some(Command::Serve(args)) => (args.log_format, Command::Serve(args)),
        None => (cli.serve.log_format, Command::Serve(cli.serve)),
    };
    init_tracing(log_format);
    if let Err(e) = &dotenv {
        if !e.not_found() {
            tracing::warn!(error = %e, "could not read .env");
        }
    }
    match command {
        Command::Migrate(db) => {
            let store =
                tidesync::db::connect(&db.database_url, &tidesync::db::DbOptions::default())
                    .await?;
            store.migrate().await.context("applying migrations")?;
            store.close().await;
            tracing::info!(backend = store.backend().name(), "migrations applied");
        }
        Command::Serve(args) => {
            let app = App::build(&args).await.context("starting tidesync")?;
            let addr = format!("{}:{}", args.host, args.port);
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            tracing::info!(
                address = %listener.local_addr()?,
                version = env!("CARGO_PKG_VERSION"),
                "tidesync listening"
            );
            app.serve(listener, shutdown_signal()).await?;
            tracing::info!("stopped");
        }
    }
    Ok(())
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
}
