//! Pre-encoded `WatchResponse` frames and the codec that sends them as they are.
//!
//! A change is encoded once into a [`WatchFrame`] and the same reference-counted bytes are
//! written to every stream, instead of tonic's default of encoding per stream.

use bytes::{Buf, BufMut, Bytes};
use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::v1::{WatchRequest, WatchResponse};

/// An encoded `flags.v1.WatchResponse`, cheap to clone and share between streams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchFrame(Bytes);

impl WatchFrame {
    /// Encodes a response once.
    pub fn encode(response: &WatchResponse) -> Self {
        WatchFrame(response.encode_to_vec().into())
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// Decodes the frame (tests and diagnostics; clients decode with the generated client).
    pub fn decode(&self) -> Result<WatchResponse, prost::DecodeError> {
        WatchResponse::decode(self.0.clone())
    }
}

/// The buffers a stream starts with, each way. tonic's default (8 KiB each) was most of an
/// idle stream's memory, and a server holds tens of thousands of idle streams; requests are
/// acknowledgements of a few bytes, and a frame larger than this only grows the buffer.
pub(crate) fn stream_buffer() -> BufferSettings {
    // tonic's default yield threshold: how much a stream encodes before it gives way.
    BufferSettings::new(512, 32 * 1024)
}

/// Writes [`WatchFrame`]s verbatim and decodes `WatchRequest`s with prost.
#[derive(Debug, Default, Clone, Copy)]
pub struct FrameCodec;

impl Codec for FrameCodec {
    type Encode = WatchFrame;
    type Decode = WatchRequest;
    type Encoder = FrameEncoder;
    type Decoder = RequestDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        FrameEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder
    }
}

/// The encoding half of [`FrameCodec`].
#[derive(Debug, Default, Clone, Copy)]
pub struct FrameEncoder;

impl Encoder for FrameEncoder {
    type Item = WatchFrame;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put_slice(&item.0);
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        stream_buffer()
    }
}

/// The decoding half of [`FrameCodec`].
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestDecoder;

impl Decoder for RequestDecoder {
    type Item = WatchRequest;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        let request = WatchRequest::decode(src.copy_to_bytes(src.remaining()))
            .map_err(|e| Status::invalid_argument(format!("malformed WatchRequest: {e}")))?;
        Ok(Some(request))
    }

    fn buffer_settings(&self) -> BufferSettings {
        stream_buffer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{Heartbeat, watch_response};

    #[test]
    fn a_frame_decodes_to_the_response_it_encodes() {
        let response = WatchResponse {
            kind: Some(watch_response::Kind::Heartbeat(Heartbeat { revision: 7, interval_ms: 5000 })),
        };
        let frame = WatchFrame::encode(&response);
        assert_eq!(frame.decode().unwrap(), response);
        assert_eq!(frame.bytes().len(), response.encoded_len());
    }
}
