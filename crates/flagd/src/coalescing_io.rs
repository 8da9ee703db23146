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

/// The most bytes buffered: a write beyond it is taken in part (a short write, which its
/// writer continues), and a full buffer goes out before more is taken, so a snapshot of a
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
    /// The most bytes buffered since the buffer was last given back (see `KEPT_CAPACITY`):
    /// `BytesMut::capacity` says only what is left past the bytes already written.
    peak: usize,
    /// How many times the current flush has given way, and how much was buffered the last
    /// time: it gives way again while the streams keep adding frames.
    yields: usize,
    buffered_at_yield: usize,
}

impl<T> CoalescingIo<T> {
    pub(crate) fn new(inner: T) -> Self {
        CoalescingIo { inner, buffered: BytesMut::new(), peak: 0, yields: 0, buffered_at_yield: 0 }
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
        if self.peak > KEPT_CAPACITY {
            self.buffered = BytesMut::new();
            self.peak = 0;
        }
        Poll::Ready(Ok(()))
    }

    /// Buffers as much of `bufs` as fits; how much that was.
    fn take<'a>(&mut self, bufs: impl IntoIterator<Item = &'a [u8]>) -> usize {
        let mut taken = 0;
        for buf in bufs {
            let room = MAX_BUFFERED - self.buffered.len();
            let part = &buf[..buf.len().min(room)];
            self.buffered.extend_from_slice(part);
            taken += part.len();
            if part.len() < buf.len() {
                break;
            }
        }
        self.peak = self.peak.max(self.buffered.len());
        taken
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
        Poll::Ready(Ok(self.take([buf])))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_room(cx))?;
        Poll::Ready(Ok(self.take(bufs.iter().map(|buf| &**buf))))
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
    async fn a_write_larger_than_the_buffer_is_taken_in_pieces_and_arrives_whole() {
        let (near, mut far) = tokio::io::duplex(64 * 1024);
        let big: Vec<u8> = (0..3 * MAX_BUFFERED).map(|n| n as u8).collect();
        let reader = tokio::spawn(async move {
            let mut read = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut far, &mut read).await.unwrap();
            read
        });
        let mut io = CoalescingIo::new(near);
        let taken = io.write(&big).await.unwrap();
        assert_eq!(taken, MAX_BUFFERED, "one write takes at most a buffer's worth");
        io.write_all(&big[taken..]).await.unwrap();
        io.shutdown().await.unwrap();
        drop(io);
        assert_eq!(reader.await.unwrap(), big);
    }

    #[tokio::test]
    async fn a_buffer_grown_by_a_large_write_is_given_back_once_drained() {
        let (near, mut far) = tokio::io::duplex(4 * MAX_BUFFERED);
        let mut io = CoalescingIo::new(near);
        io.write_all(&vec![7; MAX_BUFFERED]).await.unwrap();
        io.flush().await.unwrap();
        let mut read = vec![0; MAX_BUFFERED];
        tokio::io::AsyncReadExt::read_exact(&mut far, &mut read).await.unwrap();
        io.write_all(b"small").await.unwrap();
        assert!(io.buffered.capacity() < KEPT_CAPACITY, "kept {} bytes", io.buffered.capacity());
    }

    /// `poll_flush` once, as the connection's task would.
    async fn flush_once(io: &mut CoalescingIo<tokio::io::DuplexStream>) -> Poll<io::Result<()>> {
        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *io).poll_flush(cx))).await
    }

    #[tokio::test]
    async fn a_flush_gives_way_while_turns_add_bytes_and_at_most_max_yields_times() {
        let (near, _far) = tokio::io::duplex(1 << 20);
        let mut io = CoalescingIo::new(near);
        io.write_all(b"first").await.unwrap();
        assert!(flush_once(&mut io).await.is_pending(), "new bytes: one turn for the other streams");
        assert!(matches!(flush_once(&mut io).await, Poll::Ready(Ok(()))), "a turn added nothing: written");
        assert!(io.buffered.is_empty());
        // Bytes added at every turn: it still writes after `MAX_YIELDS` turns.
        let mut pending = 0;
        loop {
            io.write_all(b"more").await.unwrap();
            match flush_once(&mut io).await {
                Poll::Pending => pending += 1,
                Poll::Ready(written) => break written.unwrap(),
            }
        }
        assert_eq!(pending, MAX_YIELDS);
    }
}
