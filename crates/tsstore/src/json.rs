//! serde helpers: store and read values of any `Serialize` type as JSON.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::record::ObjectHandle;
use crate::store::Store;

impl Store {
    /// Serializes `value` as JSON and inserts it (at `timestamp`, or now).
    pub fn put_json<T: Serialize>(
        &self,
        timestamp: Option<i64>,
        value: &T,
    ) -> Result<ObjectHandle> {
        let bytes = serde_json::to_vec(value)?;
        match timestamp {
            Some(ts) => self.put(ts, &bytes),
            None => self.put_now(&bytes),
        }
    }

    /// Reads the object at `timestamp` and deserializes it from JSON.
    pub fn get_json<T: DeserializeOwned>(&self, timestamp: i64) -> Result<T> {
        let rec = self.get_by_time(timestamp)?;
        Ok(serde_json::from_slice(&rec.data)?)
    }
}
