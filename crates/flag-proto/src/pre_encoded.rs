//! A message encoded once and sent as the same bytes on every stream that carries it, and the
//! codec that writes it verbatim. The OpenFeature sync stream sends a whole environment after
//! every change; encoding it per stream would cost each stream the environment's size in
//! encoding work.

use std::marker::PhantomData;

use bytes::{Buf, BufMut, Bytes};
use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// An encoded protobuf message, cheap to clone and share between streams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreEncoded(Bytes);

impl PreEncoded {
    /// Encodes a message once.
    pub fn encode(message: &impl Message) -> Self {
        PreEncoded(message.encode_to_vec().into())
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }
}

/// Writes [`PreEncoded`] messages verbatim and decodes requests of type `D` with prost.
#[derive(Debug)]
pub struct PreEncodedCodec<D>(PhantomData<fn() -> D>);

impl<D> Default for PreEncodedCodec<D> {
    fn default() -> Self {
        PreEncodedCodec(PhantomData)
    }
}

impl<D: Message + Default + Send + 'static> Codec for PreEncodedCodec<D> {
    type Encode = PreEncoded;
    type Decode = D;
    type Encoder = PreEncodedEncoder;
    type Decoder = ProstDecoder<D>;

    fn encoder(&mut self) -> Self::Encoder {
        PreEncodedEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder(PhantomData)
    }
}

/// The encoding half of [`PreEncodedCodec`].
#[derive(Debug, Default, Clone, Copy)]
pub struct PreEncodedEncoder;

impl Encoder for PreEncodedEncoder {
    type Item = PreEncoded;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put_slice(&item.0);
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        crate::frame::stream_buffer()
    }
}

/// The decoding half of [`PreEncodedCodec`].
#[derive(Debug)]
pub struct ProstDecoder<D>(PhantomData<fn() -> D>);

impl<D: Message + Default> Decoder for ProstDecoder<D> {
    type Item = D;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        let message = D::decode(src.copy_to_bytes(src.remaining()))
            .map_err(|e| Status::invalid_argument(format!("malformed request: {e}")))?;
        Ok(Some(message))
    }

    fn buffer_settings(&self) -> BufferSettings {
        crate::frame::stream_buffer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flagd::sync::v1::SyncFlagsResponse;

    #[test]
    fn pre_encoded_bytes_are_the_message_encoding() {
        let response = SyncFlagsResponse { flag_configuration: "{\"flags\":{}}".into(), sync_context: None };
        let encoded = PreEncoded::encode(&response);
        assert_eq!(SyncFlagsResponse::decode(encoded.bytes().clone()).unwrap(), response);
    }
}
