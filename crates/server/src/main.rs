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
        Some(Command::Serve(args)) => (args.log_format, Command::Serve(args)),
        Some(other) => (LogFormat::Pretty, other),
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
            let store = tidesync::db::connect(
                &db.database_url,
                &tidesync::db::DbOptions::from_database(&db),
            )
            .await?;
            store.migrate().await.context("applying migrations")?;
            store.close().await;
            tracing::info!(backend = store.backend().name(), "migrations applied");
        }
        Command::Gc(gc) => {
            let store = tidesync::db::connect(
                &gc.database.database_url,
                &tidesync::db::DbOptions::from_database(&gc.database),
            )
            .await?;
            store.migrate().await.context("applying migrations")?;
            let now = tidesync_protocol::time::now_millis();
            let report = store
                .collect_garbage(gc.retention.horizon(now))
                .await
                .context("collecting history")?;
            store.close().await;
            tracing::info!(
                tombstones = report.tombstones,
                log_rows = report.log_rows,
                revoked_tokens = report.revoked_tokens,
                "history collected"
            );
        }
        Command::Backup(b) => {
            let db = sqlite_only(&b.database.database_url, "backup")?;
            let bytes = tidesync::db::backup(&db, &b.file)?;
            tracing::info!(file = %b.file.display(), bytes, "backup written");
        }
        Command::Restore(b) => {
            let db = sqlite_only(&b.database.database_url, "restore")?;
            tidesync::db::restore(&b.file, &db)?;
            tracing::info!(from = %b.file.display(), to = %db.display(), "database restored; start the server");
        }
        Command::ForgetCursors(db) => {
            let store = tidesync::db::connect(
                &db.database_url,
                &tidesync::db::DbOptions::from_database(&db),
            )
            .await?;
            store.migrate().await.context("applying migrations")?;
            let scopes = store.forget_cursors().await.context("forgetting cursors")?;
            store.close().await;
            tracing::info!(scopes, "every device will resync once");
        }
        Command::Import(tidesync::config::ImportArgs {
            source: tidesync::config::ImportSource::Mongo(args),
        }) => {
            let summary = tidesync::import::mongo(&args).await?;
            print!("{summary}");
        }
        Command::Serve(args) => {
            if let Some(addr) = args.metrics_addr {
                tidesync::telemetry::serve_metrics(addr)
                    .await
                    .with_context(|| format!("cannot serve metrics on {addr}"))?;
            }
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

/// The SQLite file a URL names; PostgreSQL has its own tools.
fn sqlite_only(url: &str, what: &str) -> anyhow::Result<std::path::PathBuf> {
    tidesync_store::sqlite_file(url).ok_or_else(|| {
        anyhow::anyhow!(
            "`tidesync {what}` is for SQLite; for PostgreSQL use pg_dump / pg_restore (docs/OPERATIONS.md)"
        )
    })
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::fmt::format::FmtSpan;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Spans close with their duration only when debug is on, to show where
    // a request's time went: at `info` the request span's close would be a
    // second line per request (and cost about a tenth of a small round trip).
    let debug = filter
        .max_level_hint()
        .is_none_or(|l| l >= tracing_subscriber::filter::LevelFilter::DEBUG);
    let span_events = if debug { FmtSpan::CLOSE } else { FmtSpan::NONE };
    // Colours only on a terminal: log files and collectors get plain text.
    let fmt = tracing_subscriber::fmt::layer()
        .with_span_events(span_events)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let fmt = match format {
        LogFormat::Json => fmt.json().boxed(),
        LogFormat::Pretty => fmt.boxed(),
    };
    let registry = tracing_subscriber::registry().with(filter).with(fmt);
    #[cfg(feature = "otel")]
    let registry = registry.with(otel::layer());
    registry.init();
}

/// OpenTelemetry export of the spans, when built with `otel` and
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set (OTLP over HTTP).
#[cfg(feature = "otel")]
mod otel {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::Layer;

    pub fn layer<S>() -> Option<Box<dyn Layer<S> + Send + Sync>>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
    {
        std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT")?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|e| eprintln!("OpenTelemetry export off: {e}"))
            .ok()?;
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name("tidesync")
                    .build(),
            )
            .build();
        let tracer = provider.tracer("tidesync");
        opentelemetry::global::set_tracer_provider(provider);
        Some(tracing_opentelemetry::layer().with_tracer(tracer).boxed())
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
