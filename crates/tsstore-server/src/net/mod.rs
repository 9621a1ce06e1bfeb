//! What everything the server dials shares: header checks (`headers`),
//! the client TLS configuration (`tls`: rustls on ring, the system's roots
//! plus an optional CA file), and a small HTTP/1.1 client (`client`, on
//! hyper) for webhooks and `tsstore import --url`. Outbound connections,
//! alert webhooks and the CLI all set up their network here, so a header
//! is checked, a CA file read and a redirect refused the same way
//! everywhere.

pub mod client;
pub mod headers;
pub mod tls;

pub use client::{HttpClient, HttpError, HttpResponse};
pub use headers::{HeaderError, MAX_HEADERS, check_headers, header_map};
pub use tls::{TlsError, ca_certificates, check_ca_file, client_tls};
