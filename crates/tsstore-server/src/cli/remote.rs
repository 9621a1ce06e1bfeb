//! `tsstore import --url`: a running server as the import's target. It
//! asks the server for the store's type, newest record and schema, checks
//! records here the way the store would, and sends them in NDJSON batches
//! to `POST /api/stores/{store}/data/batch`.

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use tsstore::{DataType, Field, Schema};

use super::CliError;
use super::target::Target;
use crate::dump::push_ndjson;
use crate::net::HttpClient;
use crate::records::encode::DataEncoding;

/// Records and payload bytes per request: under the server's default
/// body limit (1 MiB) even when base64 makes binary payloads 4/3 larger.
const REMOTE_BATCH: (usize, usize) = (2000, 512 * 1024);
/// One request, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Where the key comes from when `--api-key` is not given (keeps it out
/// of the process list and shell history).
pub(super) const KEY_ENV: &str = "TSSTORE_API_KEY";

pub(super) struct Remote {
    runtime: tokio::runtime::Runtime,
    client: HttpClient,
    /// `{url}/api/stores/{store}`
    base: String,
    key: String,
    data_type: DataType,
    newest: i64,
    schema: Option<Schema>,
    max_object: u64,
}

#[derive(serde::Deserialize)]
struct Stats {
    data_type: DataType,
    newest_timestamp: Option<i64>,
    num_blocks: u32,
    data_block_size: u32,
}

#[derive(serde::Deserialize)]
struct SchemaOut {
    version: u32,
    fields: Vec<Field>,
}

impl Remote {
    pub(super) fn connect(url: &str, store: &str, key: Option<&str>) -> Result<Remote, CliError> {
        tsstore::validate_store_name(store)?;
        let url = url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(CliError::Usage(format!(
                "--url {url}: give the server's address, e.g. http://127.0.0.1:21080"
            )));
        }
        let key = match key {
            Some(k) => k.to_string(),
            None => std::env::var(KEY_ENV).map_err(|_| {
                CliError::Usage(format!(
                    "--url needs the store's API key: set {KEY_ENV} (or pass --api-key)"
                ))
            })?,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Remote(format!("cannot start the HTTP client: {e}")))?;
        let tls = crate::net::client_tls(None)
            .map_err(|e| CliError::Remote(format!("cannot start the HTTP client: {e}")))?;
        let client = HttpClient::new(tls, REQUEST_TIMEOUT);
        let mut remote = Remote {
            runtime,
            client,
            base: format!("{url}/api/stores/{store}"),
            key,
            data_type: DataType::Json,
            newest: 0,
            schema: None,
            max_object: 0,
        };
        let stats: Stats = remote.get("stats")?;
        remote.data_type = stats.data_type;
        remote.newest = stats.newest_timestamp.unwrap_or(0);
        remote.max_object =
            tsstore::layout::max_object_len(stats.num_blocks, stats.data_block_size);
        if stats.data_type == DataType::Schema {
            let doc: SchemaOut = remote.get("schema")?;
            if doc.version > 0 {
                remote.schema = Some(
                    Schema::new(doc.version, doc.fields)
                        .map_err(|e| CliError::Remote(format!("the store's schema: {e}")))?,
                );
            }
        }
        Ok(remote)
    }

    fn get<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, CliError> {
        let url = format!("{}/{what}", self.base);
        let body = self.send(Method::GET, &url, None, Bytes::new())?;
        serde_json::from_slice(&body)
            .map_err(|e| CliError::Remote(format!("GET {url}: unexpected answer: {e}")))
    }
}

impl Remote {
    /// One request with the store's key; the body of a 2xx answer,
    /// otherwise the server's own message.
    fn send(
        &self,
        method: Method,
        url: &str,
        content_type: Option<&'static str>,
        body: Bytes,
    ) -> Result<Vec<u8>, CliError> {
        let mut headers = HeaderMap::new();
        let key = HeaderValue::from_str(&self.key)
            .map_err(|_| CliError::Usage("the API key holds characters a header cannot".into()))?;
        headers.insert("x-api-key", key);
        if let Some(content_type) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        let answer = self
            .runtime
            .block_on(self.client.send(method, url, &headers, body))
            .map_err(|e| CliError::Remote(format!("cannot reach {url}: {e}")))?;
        if answer.status.is_success() {
            return Ok(answer.body.to_vec());
        }
        #[derive(serde::Deserialize)]
        struct ErrorBody {
            error: String,
        }
        let message = serde_json::from_slice::<ErrorBody>(&answer.body)
            .map(|b| b.error)
            .unwrap_or_else(|_| {
                String::from_utf8_lossy(&answer.body)
                    .chars()
                    .take(200)
                    .collect()
            });
        Err(CliError::Remote(format!(
            "the server answered {}: {message}",
            answer.status
        )))
    }
}

impl Target for Remote {
    fn data_type(&self) -> DataType {
        self.data_type
    }

    fn newest(&self) -> i64 {
        self.newest
    }

    fn check(&self, payload: &[u8]) -> Result<(), tsstore::Error> {
        let schema = self.schema.as_ref();
        tsstore::check_payload(self.data_type, schema, self.max_object, payload).map(drop)
    }

    fn batch_limit(&self) -> (usize, usize) {
        REMOTE_BATCH
    }

    fn put(&mut self, batch: &[(i64, Vec<u8>)]) -> Result<(), CliError> {
        let enc = DataEncoding {
            data_type: self.data_type,
            trusted: true,
            stamps: crate::records::encode::Stamps::Numbers,
        };
        let mut body = Vec::with_capacity(batch.iter().map(|(_, p)| p.len() + 40).sum());
        for (ts, payload) in batch {
            push_ndjson(&mut body, *ts, payload, enc);
        }
        let url = format!("{}/data/batch", self.base);
        self.send(
            Method::POST,
            &url,
            Some("application/x-ndjson"),
            body.into(),
        )?;
        Ok(())
    }
}
