//! What every part of the server shares (`App`): the store registry, the
//! admin key, limits, metrics, the front door's guard, the outbound
//! connections, and the one shutdown signal (`shutdown::Shutdown`).
//! Parts below it (outbound connections, alerts) are handed only the
//! pieces they use, so none of them depends on this module.

use std::sync::Arc;
use std::time::Instant;

use crate::auth::AdminKey;
use crate::guard::Guard;
use crate::limits::Limits;
use crate::metrics::{HttpMetrics, TransportMetrics};
use crate::outbound::Outbound;
use crate::registry::Registry;
use crate::shutdown::Shutdown;

#[derive(Debug)]
pub struct AppInner {
    pub registry: Registry,
    pub admin: AdminKey,
    pub limits: Limits,
    /// Geometry of stores created without one.
    pub store_defaults: tsstore::Config,
    /// Rollups of stores created without `rollups`.
    pub store_rollups: Vec<tsstore::RollupConfig>,
    pub http: HttpMetrics,
    pub transports: TransportMetrics,
    pub outbound: Arc<Outbound>,
    /// Connection bounds, the auth throttle, and their incidents.
    pub guard: Guard,
    pub started: Instant,
    pub shutdown: Shutdown,
    /// Which stores get their own series in `/metrics`.
    pub metrics_stores: crate::metrics::StoreSeries,
}

pub type App = Arc<AppInner>;
