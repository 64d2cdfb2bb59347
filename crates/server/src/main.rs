use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tidesync::commands;
use tidesync::config::{Cli, Command, LogFormat, SchemaCommand};
use tidesync::App;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        // One line an operator can act on: what failed and why, the causes
        // joined, never a backtrace or a debug dump.
        Err(e) => {
            let line = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
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
        Command::Migrate(db) => commands::migrate(&db).await?,
        Command::Gc(gc) => commands::gc(&gc).await?,
        Command::Backup(b) => commands::backup(&b).await?,
        Command::Restore(b) => commands::restore(&b).await?,
        Command::ForgetCursors(db) => commands::forget_cursors(&db).await?,
        Command::Import(tidesync::config::ImportArgs {
            source: tidesync::config::ImportSource::Mongo(args),
        }) => {
            let summary = tidesync::import::mongo(&args).await?;
            print!("{summary}");
        }
        Command::Schema(SchemaCommand::Check { file }) => commands::schema_check(&file)?,
        Command::Schema(SchemaCommand::Print { schema }) => {
            commands::schema_print(schema.as_deref())?
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
