//! The process's metrics, kept by the `metrics` crate and rendered in Prometheus text by
//! `metrics-exporter-prometheus` (`GET /metrics`, see `http::metrics`). One recorder per
//! process, installed on first use; the names recorded here and in `http::metrics` are listed
//! in the README's "Metrics".

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Upper bounds of the request latency histogram, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

pub const REQUESTS: &str = "skiff_http_requests_total";
pub const LATENCY: &str = "skiff_http_request_duration_seconds";
pub const BYTES_IN: &str = "skiff_http_request_body_bytes_total";
pub const BYTES_OUT: &str = "skiff_http_response_body_bytes_total";
const STORAGE_BYTES: &str = "skiff_storage_blob_bytes";
const STORAGE_BLOBS: &str = "skiff_storage_blobs";
const GC_RUNS: &str = "skiff_gc_runs_total";
const GC_LAST_SECONDS: &str = "skiff_gc_last_duration_seconds";
const GC_FREED: &str = "skiff_gc_freed_bytes_total";
const UPLOADS: &str = "skiff_uploads_in_flight";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The recorder's handle, installing the recorder on first use. Should another recorder hold
/// the global slot, metrics are not kept and `/metrics` shows the delegate counters only.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = match builder.set_buckets(LATENCY_BUCKETS) {
            Ok(b) => b,
            Err(e) => {
                log::warn!("metrics: latency buckets refused ({e}): histograms become summaries");
                PrometheusBuilder::new()
            }
        };
        let handle = match builder.install_recorder() {
            Ok(h) => h,
            Err(e) => {
                log::warn!("metrics: cannot install the recorder: {e}");
                PrometheusBuilder::new().build_recorder().handle()
            }
        };
        describe();
        handle
    })
}

fn describe() {
    describe_counter!(
        REQUESTS,
        "HTTP requests answered, by route pattern, method and status code."
    );
    describe_histogram!(
        LATENCY,
        Unit::Seconds,
        "Time to the response head, by route pattern, method and status class."
    );
    describe_counter!(
        BYTES_IN,
        Unit::Bytes,
        "Request body bytes read by handlers, by route pattern."
    );
    describe_counter!(
        BYTES_OUT,
        Unit::Bytes,
        "Response body bytes of sized responses (a range: its length), by route pattern."
    );
    describe_gauge!(
        STORAGE_BYTES,
        Unit::Bytes,
        "Bytes of every stored blob, refreshed every few minutes and after each garbage collection."
    );
    describe_gauge!(STORAGE_BLOBS, "Stored blobs, refreshed with skiff_storage_blob_bytes.");
    describe_counter!(GC_RUNS, "Garbage collections that finished, by result (ok, failed).");
    describe_gauge!(
        GC_LAST_SECONDS,
        Unit::Seconds,
        "How long the last garbage collection took."
    );
    describe_counter!(GC_FREED, Unit::Bytes, "Blob bytes garbage collection removed.");
    describe_gauge!(UPLOADS, "Upload bodies being received now (v1 layers, v2 blob chunks).");
}

/// A finished garbage collection (previews included: they cost the same scan).
pub fn gc_finished(seconds: f64, freed_bytes: Option<u64>) {
    let result = if freed_bytes.is_some() { "ok" } else { "failed" };
    counter!(GC_RUNS, "result" => result).increment(1);
    gauge!(GC_LAST_SECONDS).set(seconds);
    counter!(GC_FREED).increment(freed_bytes.unwrap_or(0));
}

/// What storage holds now.
pub fn storage(blobs: u64, bytes: u64) {
    gauge!(STORAGE_BLOBS).set(blobs as f64);
    gauge!(STORAGE_BYTES).set(bytes as f64);
}

/// One time: the request latency of a route.
pub fn request(route: &str, method: &'static str, status: u16, seconds: f64) {
    let class = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    counter!(REQUESTS, "route" => route.to_string(), "method" => method, "status" => status.to_string()).increment(1);
    histogram!(LATENCY, "route" => route.to_string(), "method" => method, "class" => class).record(seconds);
}

/// An upload body being received: counted in `skiff_uploads_in_flight` until dropped.
pub struct UploadInFlight(());

impl UploadInFlight {
    pub fn start() -> UploadInFlight {
        gauge!(UPLOADS).increment(1.0);
        UploadInFlight(())
    }
}

impl Drop for UploadInFlight {
    fn drop(&mut self) {
        gauge!(UPLOADS).decrement(1.0);
    }
}
