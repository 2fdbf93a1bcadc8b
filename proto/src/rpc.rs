//! The logger's tarpc contract, served on port 5001 with JSON framing over TCP.

use serde::{Deserialize, Serialize};

/// Why the logger refused or failed an RPC log call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogRpcError {
    /// The entry breaks a bound (empty or oversized name, oversized data).
    InvalidArgument(String),
    /// The logger could not store the entry.
    Unavailable(String),
}

impl std::fmt::Display for LogRpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Self::Unavailable(m) => write!(f, "unavailable: {m}"),
        }
    }
}

impl std::error::Error for LogRpcError {}

/// Writes one log entry. On success the answer is
/// `"Processed payload via RPC: <name>"`. `id` (24 hex digits, an ObjectId)
/// makes the write idempotent: a retried call with the same id stores the
/// entry once. `None`: the logger makes an id.
#[tarpc::service]
pub trait LogService {
    async fn log_info(
        name: String,
        data: String,
        id: Option<String>,
    ) -> Result<String, LogRpcError>;
}

/// The JSON framing both ends speak, as tarpc's own `Json` codec writes
/// it, except that each frame is read as one slice: tokio-serde's codec
/// reads a frame through `io::Read`, a byte at a time, which on the
/// broker cost more than the rest of decoding an answer.
pub struct Json<Item, SinkItem>(std::marker::PhantomData<Directions<Item, SinkItem>>);

/// What [`Json`] reads and what it writes, owning neither.
type Directions<Item, SinkItem> = (fn() -> Item, fn(&SinkItem));

impl<Item, SinkItem> Default for Json<Item, SinkItem> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<Item: serde::de::DeserializeOwned, SinkItem> tarpc::tokio_serde::Deserializer<Item>
    for Json<Item, SinkItem>
{
    type Error = serde_json::Error;

    fn deserialize(
        self: std::pin::Pin<&mut Self>,
        src: &bytes::BytesMut,
    ) -> Result<Item, Self::Error> {
        serde_json::from_slice(src)
    }
}

impl<Item, SinkItem: Serialize> tarpc::tokio_serde::Serializer<SinkItem> for Json<Item, SinkItem> {
    type Error = serde_json::Error;

    fn serialize(
        self: std::pin::Pin<&mut Self>,
        item: &SinkItem,
    ) -> Result<bytes::Bytes, Self::Error> {
        serde_json::to_vec(item).map(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;

    use tarpc::tokio_serde::{Deserializer, Serializer};

    use super::*;

    #[test]
    fn a_frame_reads_back_as_tokio_serde_json_writes_it() {
        type Codec = Json<LogServiceResponse, LogServiceResponse>;
        let answer =
            LogServiceResponse::LogInfo(Err(LogRpcError::Unavailable("down \"now\"".into())));
        let mut theirs =
            tarpc::tokio_serde::formats::Json::<LogServiceResponse, LogServiceResponse>::default();
        let frame = Pin::new(&mut theirs).serialize(&answer).unwrap();
        let mut ours = Codec::default();
        assert_eq!(Pin::new(&mut ours).serialize(&answer).unwrap(), frame);
        let read = Pin::new(&mut ours)
            .deserialize(&bytes::BytesMut::from(&frame[..]))
            .unwrap();
        assert_eq!(format!("{read:?}"), format!("{answer:?}"));
        assert!(
            Pin::new(&mut ours)
                .deserialize(&bytes::BytesMut::from(&b"{\"LogInfo\":"[..]))
                .is_err()
        );
    }
}
