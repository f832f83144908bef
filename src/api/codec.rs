//! The protobuf codec of every roleplay.v1 service: prost's, with a smaller
//! encode buffer.
//!
//! tonic gives each response stream its own encode buffer and keeps it for
//! the stream's life. Its default is 8 KiB, sized for large messages; a
//! reply's events are tens of bytes each, so at thousands of live replies the
//! default held about 8 KiB per reply that carried nothing. The buffer grows
//! when a message needs more, so large messages (a page of characters) still
//! encode whole.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// What a stream's encode buffer starts at (and grows by).
const ENCODE_BUFFER: usize = 1024;
/// Encoded messages are sent once this much is buffered (tonic's default).
const YIELD_THRESHOLD: usize = 32 * 1024;

/// [`ProstCodec`] with a 1 KiB encode buffer; decoding is prost's own.
#[derive(Debug, Clone)]
pub struct LeanCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for LeanCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for LeanCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::new(ENCODE_BUFFER, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(BufferSettings::default())
    }
}
