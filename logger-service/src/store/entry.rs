//! What an entry is: [`NewLog`], checked once, and the document it is
//! stored as.

use chrono::{SecondsFormat, Utc};
use mongodb::bson::DateTime;
use mongodb::bson::oid::ObjectId;
use proto::http::LogEntry;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// A log entry that passed validation, ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLog {
    pub(super) id: Option<ObjectId>,
    pub(super) name: String,
    pub(super) data: String,
}

impl NewLog {
    /// `name` must be non-blank and at most [`proto::MAX_LOG_NAME_BYTES`] bytes;
    /// `data` at most [`proto::MAX_LOG_DATA_BYTES`] bytes (it may be empty). Both
    /// are stored as given.
    pub fn new(name: String, data: String) -> Result<Self, StoreError> {
        proto::check_log_entry(&name, &data).map_err(StoreError::InvalidArgument)?;
        Ok(Self {
            id: None,
            name,
            data,
        })
    }

    /// The entry's id as the caller gave it (24 hex digits); none or empty:
    /// the store makes one. An entry written twice with the same id is
    /// stored once.
    pub fn with_id(mut self, id: Option<&str>) -> Result<Self, StoreError> {
        self.id = match id {
            None | Some("") => None,
            Some(id) => Some(parse_id(id)?),
        };
        Ok(self)
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// An entry as stored in MongoDB.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct LogDocument {
    #[serde(rename = "_id")]
    pub(super) id: ObjectId,
    pub(super) name: String,
    #[serde(default)]
    pub(super) data: String,
    pub(super) created_at: DateTime,
    pub(super) updated_at: DateTime,
}

impl From<LogDocument> for LogEntry {
    fn from(doc: LogDocument) -> Self {
        LogEntry {
            id: doc.id.to_hex(),
            name: doc.name,
            data: doc.data,
            created_at: rfc3339(doc.created_at),
            updated_at: rfc3339(doc.updated_at),
        }
    }
}

/// RFC 3339 in UTC with milliseconds, e.g. `2024-05-01T12:00:00.123Z`.
pub(super) fn rfc3339(time: DateTime) -> String {
    chrono::DateTime::<Utc>::from_timestamp_millis(time.timestamp_millis())
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An entry id by the one rule of docs/contracts.md §4
/// ([`proto::check_entry_id`]).
pub(super) fn parse_id(id: &str) -> Result<ObjectId, StoreError> {
    proto::check_entry_id(id).map_err(StoreError::InvalidArgument)?;
    ObjectId::parse_str(id)
        .map_err(|e| StoreError::Internal(anyhow::Error::new(e).context("a checked id")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{MAX_LOG_DATA_BYTES, MAX_LOG_NAME_BYTES};

    fn invalid(name: &str, data: &str) -> bool {
        matches!(
            NewLog::new(name.into(), data.into()),
            Err(StoreError::InvalidArgument(_))
        )
    }

    #[test]
    fn names_must_be_present_and_bounded() {
        assert!(invalid("", "x"));
        assert!(invalid(" \t\n", "x"));
        assert!(invalid(&"n".repeat(MAX_LOG_NAME_BYTES + 1), "x"));
        // Bytes, not characters: 129 two-byte characters are 258 bytes.
        assert!(invalid(&"é".repeat(129), "x"));
        assert!(!invalid(&"n".repeat(MAX_LOG_NAME_BYTES), "x"));
        assert!(!invalid(" event ", ""));
    }

    #[test]
    fn data_is_bounded() {
        assert!(invalid("event", &"d".repeat(MAX_LOG_DATA_BYTES + 1)));
        assert!(!invalid("event", &"d".repeat(MAX_LOG_DATA_BYTES)));
    }

    #[test]
    fn ids_are_hex_object_ids() {
        assert!(matches!(
            parse_id("nope"),
            Err(StoreError::InvalidArgument(_))
        ));
        let oid = ObjectId::new();
        assert_eq!(parse_id(&oid.to_hex()).unwrap(), oid);
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let time = DateTime::from_millis(1_714_564_800_123);
        assert_eq!(rfc3339(time), "2024-05-01T12:00:00.123Z");
    }
}
