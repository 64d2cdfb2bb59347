//! Prometheus metrics: every name in one place, recorded through the
//! `metrics` facade (a no-op until a recorder is installed), exposed at
//! `http://METRICS_ADDR/metrics` by `serve_metrics` when configured.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::Method;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tidesync_protocol::sync::Ack;

/// Latency buckets, in seconds: 0.5 ms to 30 s.
const LATENCY: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Installs the process-wide recorder (once, in the binary) and serves the
/// exposition at `addr` until the process ends.
pub async fn serve_metrics(addr: SocketAddr) -> std::io::Result<()> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY)
        .map_err(std::io::Error::other)?
        .install_recorder()
        .map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(address = %listener.local_addr()?, "metrics at /metrics");
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || render(handle.clone())),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics listener failed");
        }
    });
    Ok(())
}

async fn render(handle: PrometheusHandle) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
}

/// One request: by route (`router::route_label`), method and status; its latency
/// by route. Every label comes from a closed set, so no client can add
/// series: the route is one the router serves (else `unmatched`), the
/// method a standard one (else `other`), the status a number below 1000.
/// Unknown paths are counted, not timed: their latency says nothing of the
/// service, and a histogram is a kilobyte of exposition a scanner would add.
pub fn request(route: &'static str, method: &Method, status: u16, latency: Duration) {
    counter!("tidesync_http_requests_total", "route" => route, "method" => method_label(method),
             "status" => status.to_string())
    .increment(1);
    if route != UNMATCHED {
        histogram!("tidesync_http_request_duration_seconds", "route" => route)
            .record(latency.as_secs_f64());
    }
}

/// The route label of a path the router does not serve
/// (`router::route_label`).
pub const UNMATCHED: &str = "unmatched";

/// The method's name if it is one of HTTP's standard methods.
pub fn method_label(method: &Method) -> &'static str {
    const STANDARD: &[Method] = &[
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    STANDARD
        .iter()
        .find(|m| *m == method)
        .map_or("other", Method::as_str)
}

/// The outcome of every operation of a push.
pub fn acks(acks: &[Ack]) {
    for a in acks {
        let outcome = match (&a.error, a.duplicate, a.conflict) {
            (Some(e), _, _) => {
                let code = serde_json::to_value(e.code)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                counter!("tidesync_push_operations_total", "outcome" => "rejected", "code" => code)
                    .increment(1);
                continue;
            }
            (None, true, _) => "duplicate",
            (None, false, true) => "conflict",
            (None, false, false) => "applied",
        };
        counter!("tidesync_push_operations_total", "outcome" => outcome, "code" => "").increment(1);
    }
}

/// Records and bytes of record text a page sent.
pub fn pulled(records: usize, bytes: usize) {
    counter!("tidesync_pulled_records_total").increment(records as u64);
    counter!("tidesync_pulled_bytes_total").increment(bytes as u64);
}

/// Counts an open event stream while it lives.
pub struct OpenStream;

impl OpenStream {
    pub fn open() -> OpenStream {
        gauge!("tidesync_event_streams_open").increment(1.0);
        OpenStream
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        gauge!("tidesync_event_streams_open").decrement(1.0);
    }
}

pub fn pokes_sent(n: usize) {
    counter!("tidesync_pokes_sent_total").increment(n as u64);
}

/// `general` (per user or IP), `auth` (login and register) or `health`.
pub fn rate_limited(limit: &'static str) {
    counter!("tidesync_rate_limited_total", "limit" => limit).increment(1);
}

pub fn sign_in_failed() {
    counter!("tidesync_sign_in_failures_total").increment(1);
}

/// A database failure answered to a client, by class: `unavailable`,
/// `busy`, `internal`, `corrupt`.
pub fn database_error(class: &'static str) {
    counter!("tidesync_database_errors_total", "class" => class).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_come_from_a_closed_set() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let invented = Method::from_bytes(b"FROBNICATE").unwrap();
        assert_eq!(method_label(&invented), "other");
    }
}
