//! Logging (`tracing`, text or JSON) and metrics (a process-wide Prometheus
//! recorder rendered by the runner's `/metrics`).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};
use crate::dispatch::InvocationOutcome;
use crate::event::EventDef;
use crate::event::EventId;
use crate::registry::Registry;

/// Buckets (seconds) of the duration histograms.
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
];

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide metrics recorder, installed on first use.
///
/// Every runner in the process (tests start several) shares it, so figures
/// are process totals.
pub(crate) fn metrics() -> &'static PrometheusHandle {
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

/// How often histogram samples are folded into their buckets when nobody
/// scrapes `/metrics`. Samples wait in the recorder until then, 8 bytes per
/// task: at 40,000 tasks/s a second of them is 0.3 MiB.
pub(crate) const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Folds recorded histogram samples into their buckets every
/// [`METRICS_UPKEEP_INTERVAL`] until `stop` is cancelled. The recorder keeps
/// every sample until it is rendered or upkept: without this, a runner that
/// is never scraped grows by every task it serves.
pub(crate) fn spawn_metrics_upkeep(stop: tokio_util::sync::CancellationToken) {
    let handle = metrics().clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(METRICS_UPKEEP_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => handle.run_upkeep(),
                () = stop.cancelled() => return,
            }
        }
    });
}

/// Installs the global `tracing` subscriber: text or JSON, filtered by
/// `RUST_LOG` when set, else by `log.level`. Does nothing if one is installed.
pub(crate) fn init_logging(config: &LogConfig) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let app_log = config.app_log.then_some(crate::app_log::AppLogLayer);
    let registry = tracing_subscriber::registry().with(filter).with(app_log);
    // Colours only on a terminal: a log file or collector gets plain text.
    let ansi = std::io::stderr().is_terminal();
    let _ = match config.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
}

/// Metric handles of one registered handler, made once at startup so that
/// recording an invocation allocates nothing.
struct HandlerMetrics {
    /// Indexed by [`outcome_index`].
    invocations: [metrics::Counter; 4],
    duration: metrics::Histogram,
}

fn outcome_index(outcome: InvocationOutcome) -> Option<usize> {
    match outcome {
        InvocationOutcome::Ok => Some(0),
        InvocationOutcome::Error => Some(1),
        InvocationOutcome::Timeout => Some(2),
        InvocationOutcome::Panic => Some(3),
        InvocationOutcome::NoHandler | InvocationOutcome::UnknownEvent => None,
    }
}

/// The invocation counters and duration histograms of every registered
/// handler (labels: provider, event, target, outcome: a bounded set).
pub(crate) struct InvocationMetrics {
    by_handler: HashMap<EventId, HashMap<String, HandlerMetrics>>,
}

impl InvocationMetrics {
    /// Handles for every registered (event id, target).
    pub(crate) fn new(registry: &Registry) -> Self {
        metrics();
        let mut by_handler: HashMap<EventId, HashMap<String, HandlerMetrics>> = HashMap::new();
        for h in registry.handlers() {
            let base = [
                ("provider", h.provider.clone()),
                ("event", h.event.clone()),
                ("target", h.target.clone()),
            ];
            let counter = |outcome: InvocationOutcome| {
                let mut labels = base.to_vec();
                labels.push(("outcome", outcome.as_str().to_owned()));
                metrics::counter!("coderunner_invocations_total", &labels)
            };
            let m = HandlerMetrics {
                invocations: [
                    counter(InvocationOutcome::Ok),
                    counter(InvocationOutcome::Error),
                    counter(InvocationOutcome::Timeout),
                    counter(InvocationOutcome::Panic),
                ],
                duration: metrics::histogram!("coderunner_invocation_duration_seconds", &base),
            };
            by_handler
                .entry(h.event_id)
                .or_default()
                .insert(h.target, m);
        }
        Self { by_handler }
    }

    /// Records one invocation of a registered handler.
    pub(crate) fn record(
        &self,
        event: &EventDef,
        target: &str,
        outcome: InvocationOutcome,
        elapsed: Duration,
    ) {
        let cached = self.by_handler.get(&event.id).and_then(|m| m.get(target));
        match (cached, outcome_index(outcome)) {
            (Some(m), Some(i)) => {
                m.invocations[i].increment(1);
                m.duration.record(elapsed.as_secs_f64());
            }
            _ => record_uncached(
                event.provider.as_str(),
                event.name,
                target,
                outcome,
                elapsed,
            ),
        }
    }

    /// Records a task that found no handler (the target is not a label:
    /// it is whatever the sender wrote).
    pub(crate) fn record_unroutable(
        &self,
        event: Option<&EventDef>,
        outcome: InvocationOutcome,
        elapsed: Duration,
    ) {
        let (provider, name) =
            event.map_or(("unknown", "unknown"), |e| (e.provider.as_str(), e.name));
        record_uncached(provider, name, "unregistered", outcome, elapsed);
    }
}

fn record_uncached(
    provider: &str,
    event: &str,
    target: &str,
    outcome: InvocationOutcome,
    elapsed: Duration,
) {
    let labels = [
        ("provider", provider.to_owned()),
        ("event", event.to_owned()),
        ("target", target.to_owned()),
        ("outcome", outcome.as_str().to_owned()),
    ];
    metrics::counter!("coderunner_invocations_total", &labels).increment(1);
    metrics::histogram!("coderunner_invocation_duration_seconds", &labels[..3])
        .record(elapsed.as_secs_f64());
}
