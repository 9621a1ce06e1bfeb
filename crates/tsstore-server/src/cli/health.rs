//! `tsstore health`: asks the local server for `/health` (container
//! health checks; a scratch image has no curl).

use std::path::Path;

use super::{CliError, HealthArgs, settings_with};
use crate::config::Overrides;

pub(super) fn health(config: Option<&Path>, args: &HealthArgs) -> Result<String, CliError> {
    let flags = Overrides {
        port: args.port,
        ..Overrides::default()
    };
    let settings = settings_with(config, flags)?;
    if settings.tls.is_some() {
        return Err(CliError::Usage(
            "the server speaks HTTPS only (server.tls): `tsstore health` asks over plain HTTP"
                .into(),
        ));
    }
    // A server listening on every address answers on loopback.
    let host = match settings.host.as_str() {
        "0.0.0.0" | "" => "127.0.0.1",
        "::" | "[::]" => "::1",
        other => other,
    };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let timeout = std::time::Duration::from_secs(args.timeout.max(1));
    Ok(crate::probe::health(&host, settings.port, timeout)?)
}
