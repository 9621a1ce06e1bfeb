//! Dialling a WebSocket peer (push and pull alike): the connection's URL
//! (a pull's `{last_timestamp}` filled in), its headers and its TLS trust,
//! within `DIAL_TIMEOUT`; and the frames a session sends, from the
//! transport-neutral `Outgoing`.

use std::sync::Arc;
use std::time::Duration;

use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::connection::SessionError;
use super::spec::ConnectionSpec;
use crate::net::header_map;
use crate::records::session::Outgoing;

/// Longest a dial may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Pings a peer may leave unanswered before it is taken as gone.
pub(super) const MISSED_PINGS: u32 = 3;

pub(super) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Dials the connection's URL (a pull's resuming after `cursor`) with
/// its headers.
pub(super) async fn dial(spec: &ConnectionSpec, cursor: i64) -> Result<Socket, SessionError> {
    let mut request = spec.dial_url(cursor).into_client_request()?;
    request.headers_mut().extend(header_map(&spec.headers)?);
    let connector = if spec.url.starts_with("wss://") {
        let config = spec.tls_config()?;
        Some(tokio_tungstenite::Connector::Rustls(Arc::new(config)))
    } else {
        None
    };
    // Small messages go out at once instead of waiting for Nagle.
    let dialing = tokio_tungstenite::connect_async_tls_with_config(request, None, true, connector);
    match tokio::time::timeout(DIAL_TIMEOUT, dialing).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(e)) => Err(SessionError::WebSocket(e)),
        Err(_) => Err(SessionError::DialTimeout(DIAL_TIMEOUT)),
    }
}

pub(super) fn to_message(o: Outgoing) -> Message {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    match o {
        Outgoing::Text(t) => Message::Text(t.into()),
        Outgoing::Binary(b) => Message::Binary(b.into()),
        Outgoing::Ping => Message::Ping(Default::default()),
        Outgoing::Mark(c) => Message::Ping(c.to_le_bytes().to_vec().into()),
        Outgoing::Close { code, reason } => Message::Close(Some(CloseFrame {
            code: code.into(),
            reason: reason.into(),
        })),
    }
}
