//! A connection's writes held back for one turn of the scheduler, so a change fanned out to
//! many streams of one HTTP/2 connection leaves in one socket write instead of one per stream.
//!
//! hyper runs each stream's response body on a task of its own and the connection's I/O on
//! another. A stream that sends a frame wakes the connection task, and tokio runs a task
//! woken by the running one next (its "LIFO slot"): the connection wrote each stream's frame
//! with a syscall of its own before the next stream was polled. Here bytes written are only
//! buffered, and a flush with new bytes yields (wakes itself and returns `Pending`, which puts
//! the connection task at the back of the run queue). The other streams' tasks, already
//! woken by the same change, run first and queue their frames; a flush writes once a turn
//! added nothing (or after `MAX_YIELDS` turns). A yield is one trip through the run queue:
//! microseconds when it is short, and when it is long, it is long with the very frames worth
//! waiting for. 200 streams on one connection took 166 writes per change without this, and
//! 2–5 with it.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// Beyond this many buffered bytes a write goes out before more are taken: a snapshot of a
/// large environment streams through in pieces of this size rather than being copied whole.
const MAX_BUFFERED: usize = 256 * 1024;

/// The most turns a flush gives way: a connection whose streams never stop adding frames
/// still writes after this many.
const MAX_YIELDS: usize = 8;

/// The buffer capacity an idle connection keeps: a change frame fits; a snapshot's worth is
/// given back, since thousands of idle connections would otherwise each hold their largest.
const KEPT_CAPACITY: usize = 8 * 1024;

/// An I/O stream whose writes are coalesced as the module says.
#[derive(Debug)]
pub(crate) struct CoalescingIo<T> {
    inner: T,
    buffered: BytesMut,
    /// How many times the current flush has given way, and how much was buffered the last
    /// time: it gives way again while the streams keep adding frames.
    yields: usize,
    buffered_at_yield: usize,
}

impl<T> CoalescingIo<T> {
    pub(crate) fn new(inner: T) -> Self {
        CoalescingIo { inner, buffered: BytesMut::new(), yields: 0, buffered_at_yield: 0 }
    }
}

impl<T: AsyncWrite + Unpin> CoalescingIo<T> {
    /// Writes out everything buffered.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.buffered.is_empty() {
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buffered))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.buffered.advance(written);
        }
        if self.buffered.capacity() > KEPT_CAPACITY {
            self.buffered = BytesMut::new();
        }
        Poll::Ready(Ok(()))
    }

    /// Room for more bytes: drains first when the buffer is full.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buffered.len() >= MAX_BUFFERED {
            ready!(self.poll_drain(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CoalescingIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_room(cx))?;
        self.buffered.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_room(cx))?;
        let mut taken = 0;
        for buf in bufs {
            self.buffered.extend_from_slice(buf);
            taken += buf.len();
        }
        Poll::Ready(Ok(taken))
    }

    fn is_write_vectored(&self) -> bool {
        // Slices are gathered into the buffer, so taking them all at once is cheapest.
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.buffered.is_empty() {
            if self.yields < MAX_YIELDS && self.buffered.len() != self.buffered_at_yield {
                self.yields += 1;
                self.buffered_at_yield = self.buffered.len();
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            ready!(self.poll_drain(cx))?;
        }
        (self.yields, self.buffered_at_yield) = (0, 0);
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CoalescingIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: Connected> Connected for CoalescingIo<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn bytes_written_reach_the_peer_in_order_once_flushed() {
        let (near, mut far) = tokio::io::duplex(1 << 20);
        let mut io = CoalescingIo::new(near);
        io.write_all(b"one ").await.unwrap();
        let taken = io.write_vectored(&[IoSlice::new(b"two "), IoSlice::new(b"three")]).await.unwrap();
        assert_eq!(taken, 9, "every slice is taken at once");
        io.flush().await.unwrap();
        let mut read = vec![0; 13];
        tokio::io::AsyncReadExt::read_exact(&mut far, &mut read).await.unwrap();
        assert_eq!(read, b"one two three");
    }

    #[tokio::test]
    async fn a_write_larger_than_the_buffer_goes_out_whole_in_pieces() {
        let (near, mut far) = tokio::io::duplex(64 * 1024);
        let big: Vec<u8> = (0..3 * MAX_BUFFERED).map(|n| n as u8).collect();
        let reader = tokio::spawn(async move {
            let mut read = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut far, &mut read).await.unwrap();
            read
        });
        let mut io = CoalescingIo::new(near);
        io.write_all(&big).await.unwrap();
        io.shutdown().await.unwrap();
        drop(io);
        assert_eq!(reader.await.unwrap(), big);
    }
}
