//! `GET /metrics`: Prometheus text, written by hand (a handful of counters needs no crate).
//! Served in every mode and never behind auth, like `_ping`: it holds counts, no names.

use crate::auth::remote::DelegateStats;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use std::fmt::Write;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics));
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let s = state.gate.stats();
    let get = DelegateStats::get;
    let mut out = String::new();
    for (name, help, value) in [
        (
            "skiff_delegate_cache_hits_total",
            "Delegated token checks answered from the cache (standalone = false).",
            get(&s.hits),
        ),
        (
            "skiff_delegate_cache_misses_total",
            "Delegated token checks sent to the external index (standalone = false).",
            get(&s.misses),
        ),
        (
            "skiff_delegate_failures_total",
            "Delegated token checks the external index did not answer usably: refused with 503.",
            get(&s.failures),
        ),
        (
            "skiff_delegate_denials_total",
            "Delegated token checks the external index refused (401/403).",
            get(&s.denials),
        ),
    ] {
        counter(&mut out, name, help, &[("", value)]);
    }
    counter(
        &mut out,
        "skiff_index_token_checks_total",
        "Token checks this index answered for registries (PUT /v1/repositories/{repo}/auth).",
        &[
            ("result=\"granted\"", get(&s.index_granted)),
            ("result=\"refused\"", get(&s.index_refused)),
        ],
    );
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header(("Cache-Control", "no-cache"))
        .body(out)
}

fn counter(out: &mut String, name: &str, help: &str, values: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    for (labels, v) in values {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}
