//! One integration-test binary: every test talks HTTP to real `skiff` processes.

mod common;

mod access;
mod architecture;
mod audit;
mod backup;
mod check;
mod cli;
mod community;
mod delegated;
mod durability;
mod gc;
mod hardening;
mod install;
mod manage;
mod metrics;
mod privacy;
mod retention;
mod revocation;
mod s3;
mod scaleout;
mod sessions;
mod slow_clients;
mod tags_api;
mod tokens;
mod ui;
mod usage;
mod v1_errors;
mod v1_flows;
mod v1_layout;
mod v2;
mod webhooks;
