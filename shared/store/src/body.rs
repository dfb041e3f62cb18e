//! The size rule of [`ObjectStore::put_stream`](crate::ObjectStore::put_stream), kept in one
//! place for both backends: exactly the declared bytes, then the end of the stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::ObjectChunks;

/// An object's chunks with the number of bytes still owed. It yields an error instead of a
/// chunk that would pass the declared size, and instead of an end that comes before it, so a
/// backend that stops at the first error never stores a short or long object.
#[derive(Debug)]
pub(crate) struct SizedChunks {
    chunks: ObjectChunks,
    remaining: u64,
}

impl SizedChunks {
    /// `chunks`, which must deliver exactly `size` bytes.
    pub(crate) fn new(chunks: ObjectChunks, size: u64) -> Self {
        Self {
            chunks,
            remaining: size,
        }
    }

    /// The next chunk, waiting for it; `None` once the declared bytes came and the sender
    /// closed the channel.
    pub(crate) async fn next(&mut self) -> Option<io::Result<Bytes>> {
        std::future::poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// [`SizedChunks::next`] for a blocking thread.
    pub(crate) fn blocking_next(&mut self) -> Option<io::Result<Bytes>> {
        let received = self.chunks.blocking_recv();
        self.check(received)
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        let received = ready!(self.chunks.poll_recv(cx));
        Poll::Ready(self.check(received))
    }

    fn check(&mut self, received: Option<io::Result<Bytes>>) -> Option<io::Result<Bytes>> {
        match received {
            Some(Ok(chunk)) if chunk.len() as u64 > self.remaining => {
                self.remaining = 0;
                Some(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the stream holds more bytes than the object's declared size",
                )))
            }
            Some(Ok(chunk)) => {
                self.remaining -= chunk.len() as u64;
                Some(Ok(chunk))
            }
            Some(Err(error)) => Some(Err(error)),
            None if self.remaining == 0 => None,
            None => Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the stream ended {} bytes before the object's declared size",
                    self.remaining
                ),
            ))),
        }
    }
}

/// The request body of an upload: the SDK reads the declared size from `size_hint`, and the
/// request fails (so S3 stores nothing) at the first error.
impl Body for SizedChunks {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        this.poll_chunk(cx)
            .map(|chunk| chunk.map(|chunk| chunk.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;

    async fn drain(chunks: &[&'static [u8]], size: u64) -> Vec<io::Result<Bytes>> {
        let (sender, receiver) = mpsc::channel(chunks.len().max(1));
        for chunk in chunks {
            sender.send(Ok(Bytes::from_static(chunk))).await.unwrap();
        }
        drop(sender);
        let mut sized = SizedChunks::new(receiver, size);
        let mut out = Vec::new();
        while let Some(item) = sized.next().await {
            let failed = item.is_err();
            out.push(item);
            if failed {
                break;
            }
        }
        out
    }

    #[tokio::test]
    async fn exactly_the_declared_bytes_pass() {
        let out = drain(&[b"ab", b"cd"], 4).await;
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(Result::is_ok));
    }

    #[tokio::test]
    async fn an_early_end_is_an_error() {
        let out = drain(&[b"ab"], 4).await;
        let error = out.last().unwrap().as_ref().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn a_byte_too_many_is_an_error() {
        let out = drain(&[b"ab", b"cde"], 4).await;
        let error = out.last().unwrap().as_ref().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn the_size_hint_counts_down() {
        let (sender, receiver) = mpsc::channel(1);
        let mut sized = SizedChunks::new(receiver, 4);
        assert_eq!(sized.size_hint().exact(), Some(4));
        sender.send(Ok(Bytes::from_static(b"abc"))).await.unwrap();
        sized.next().await.unwrap().unwrap();
        assert_eq!(sized.size_hint().exact(), Some(1));
    }
}
