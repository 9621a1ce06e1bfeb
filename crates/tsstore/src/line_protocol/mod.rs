//! The InfluxDB line protocol (`weather,site=roof temp=21.5,hum=40i 1733…`):
//! its lines and points (`parse`), points as records of a store
//! (`record`), and records as lines again (`encode`). Pure logic, so that library users read and write it as the
//! server does; the server adds HTTP, authentication and partial writes.

mod encode;
mod parse;
mod record;

pub use encode::{EncodeError, LineOptions, SEPARATOR, encode_record};
pub use parse::{FieldValue, LineError, Lines, Point, lines, parse_line, parse_line_into};
pub use record::{PointRefused, RESERVED, RecordBuilder, Target};

#[cfg(test)]
mod tests;
