//! Muster's integration tests, one binary: a real server on port 0 (or as a process) with a
//! real database, SQLite and PostgreSQL, driven by simulated devices that run the app's
//! own sync engine. One module per story. The PostgreSQL restart is its own binary
//! (`pg_restart.rs`), because it restarts the cluster every other test shares.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod attacks;
mod corpus;
mod drills;
mod faults;
mod feed;
mod migrations;
mod photos;
mod policy;
mod security;
mod site;
mod sync;
