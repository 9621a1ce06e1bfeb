//! The `tsstore` server crate. The binary (`src/main.rs`) is a thin
//! wrapper over `cli::run`.
//!
//! How it fits together, from the bottom up:
//!
//! * `config`: settings from the file, the environment and flags, in that
//!   order of precedence (`ConfigError`).
//! * `keys`, `auth`: store API keys (hash-only `keys.json`) and the admin
//!   key (`KeyError`, `AuthError`, `AdminKeyError`). They check keys; how a
//!   key travels is each transport's business.
//! * `provision`: the one way a store comes to exist, with its first key
//!   (CLI and server alike).
//! * `guard`: the front door: connection slots in all and per client
//!   address, the failed-authentication throttle, and incidents (counted
//!   by reason, logged as summaries). Transport-neutral.
//! * `store_settings`: a store's own server settings (`settings.json`:
//!   the timestamp guard's skew), set at create.
//! * `registry`: the stores a server has open, opened lazily, deleted
//!   safely (`RegistryError`).
//! * `records`: everything about records that is not a transport: intake
//!   (what a client sent → items a store takes), read options and the read
//!   spec, the read pipeline (expand once, filter, aggregate), encoders, and
//!   the budget that moves long reads off the async workers
//!   (`RecordError`). Every transport goes through it.
//! * `dump`: the export file format (NDJSON with a header line, CSV) that
//!   `tsstore export` writes and `tsstore import` reads.
//! * `consumers`: durable live readers, a cursor on disk per store and
//!   consumer name, one connection each (a new one takes over).
//! * `cursor_file`: a resume point on disk, rewritten in place on every
//!   acknowledgement (push connections, durable live readers, pulls).
//! * `json_file`: the server's small JSON files, read and parsed in one
//!   step (`JsonFileError`).
//! * `json_int`: whole JSON numbers (`3` or `3.0`) wherever a body carries
//!   an integer.
//! * `metrics`: per-store and per-route counters, rendered for Prometheus.
//! * `shutdown`: the one stop signal (`Shutdown`) that every listener and
//!   background task holds; `limits`: the bounds of one request.
//! * `app`: what the transports share (`App`: registry, admin key, limits,
//!   metrics, guard, outbound connections, shutdown). Nothing below the
//!   transports uses it: outbound connections and alerts are handed the
//!   pieces they need.
//! * `http`: the REST adapter, the only module that knows HTTP statuses
//!   (`http::error` maps every layer's errors in one place; `http::openapi`
//!   documents them from that same mapping).
//! * `net`: what everything the server dials shares: header checks, the
//!   client TLS configuration, and a small HTTP client (webhooks,
//!   `import --url`).
//! * `outbound`: connections the server dials: push a store's records
//!   (a live feed) or pull records in; persisted and restored.
//! * `alerts`: the alert rules of push connections, evaluated off the
//!   data path through bounded queues, and their webhooks.
//! * `unixsock`: the Unix-socket line protocol (a transport over
//!   `records`, like `http`).
//! * `serve`: wiring only: runtime, listener, connection bound, signals,
//!   and the stop sequence (stop accepting → tasks end → stores close).
//! * `probe`: `tsstore health`, a plain GET of `/health` for container
//!   health checks.
//! * `cli`: the commands (`create`, `key`, `status`, `calc`, `serve`,
//!   `health`, `version`).
//!
//! Invariants (see docs/ARCHITECTURE.md): no module outside `http/` uses
//! axum or knows a status code; every background task is started through
//! `Shutdown::spawn` and ends within a bound once it is cancelled; every
//! buffer, queue and connection count has a named bound.

pub mod alerts;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod consumers;
pub mod cursor_file;
pub mod dump;
pub mod guard;
pub mod http;
pub mod json_file;
pub mod json_int;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod net;
pub mod outbound;
pub mod probe;
pub mod provision;
pub mod records;
pub mod registry;
pub mod serve;
pub mod shutdown;
pub mod store_settings;
pub mod unixsock;
