//! Logging (`tracing`, text or JSON) and metrics (a process-wide Prometheus
//! recorder rendered by the runner's `/metrics`).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Buckets (seconds) of the duration histograms.
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
];

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide metrics recorder, installed on first use.
///
/// Every runner in the process (tests start several) shares it, so figures
/// are process totals.
pub fn metrics() -> &'static PrometheusHandle {
    PROMETHEUS.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("duration_seconds".to_owned()),
                DURATION_BUCKETS,
            )
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (e.g. by an embedding
        // application); the handle then renders only what we recorded.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Installs the global `tracing` subscriber: text or JSON, filtered by
/// `RUST_LOG` when set, else by `log.level`. Does nothing if one is installed.
pub fn init_logging(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
