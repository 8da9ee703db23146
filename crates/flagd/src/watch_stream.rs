//! The response stream of one `Watch` call: frames from the stream's task, then, if the task
//! ends the stream on purpose, one closing status the client can act on.
//!
//! The frames go through `futures-channel`'s bounded channel, which allocates per queued
//! frame rather than a block of slots up front: an idle stream (most of a fleet, most of
//! the time) holds no buffer at all.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use flag_proto::WatchFrame;
use futures_channel::mpsc;
use tokio::sync::oneshot;
use tokio_stream::Stream;
use tonic::Status;

/// Frames as the stream task sends them; ends with the task's closing status, if any.
#[derive(Debug)]
pub(crate) struct WatchStream {
    frames: mpsc::Receiver<WatchFrame>,
    closing: Option<oneshot::Receiver<Status>>,
}

/// The task's end of a [`WatchStream`].
#[derive(Debug)]
pub(crate) struct WatchSink {
    frames: FrameSender,
    closing: oneshot::Sender<Status>,
}

/// Sends frames to a [`WatchStream`]; cloned for replies sent from other tasks.
#[derive(Clone, Debug)]
pub(crate) struct FrameSender(mpsc::Sender<WatchFrame>);

/// Why a frame was not sent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotSent {
    /// The client is gone.
    Closed,
    /// The buffer is full; the frame comes back.
    Full(WatchFrame),
    /// The buffer stayed full for the whole wait.
    TimedOut,
}

/// A stream buffering up to `buffer` frames (at least one).
pub(crate) fn watch_stream(buffer: usize) -> (WatchSink, WatchStream) {
    // The channel holds its buffer plus one frame per sender, and the sink is one.
    let (frames_tx, frames) = mpsc::channel(buffer.saturating_sub(1));
    let (closing_tx, closing) = oneshot::channel();
    let sink = WatchSink { frames: FrameSender(frames_tx), closing: closing_tx };
    (sink, WatchStream { frames, closing: Some(closing) })
}

impl WatchSink {
    /// The sender of frames.
    pub(crate) fn frames(&mut self) -> &mut FrameSender {
        &mut self.frames
    }

    /// Ends the stream with `status` once the client has read the frames before it.
    pub(crate) fn close_with(self, status: Status) {
        let WatchSink { frames, closing } = self;
        // The status is delivered after the buffered frames, when the frame channel closes.
        let _ = closing.send(status);
        drop(frames);
    }
}

impl FrameSender {
    /// Queues `frame` if there is room.
    pub(crate) fn try_send(&mut self, frame: WatchFrame) -> Result<(), NotSent> {
        self.0.try_send(frame).map_err(|refused| match refused.is_disconnected() {
            true => NotSent::Closed,
            false => NotSent::Full(refused.into_inner()),
        })
    }

    /// Queues `frame` once there is room, waiting at most `timeout`.
    pub(crate) async fn send_timeout(&mut self, frame: WatchFrame, timeout: Duration) -> Result<(), NotSent> {
        let sender = &mut self.0;
        match tokio::time::timeout(timeout, poll_fn(|cx| sender.poll_ready(cx))).await {
            Err(_) => Err(NotSent::TimedOut),
            Ok(Err(_)) => Err(NotSent::Closed),
            Ok(Ok(())) => sender.start_send(frame).map_err(|_| NotSent::Closed),
        }
    }

    /// Whether the client is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchFrame, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.frames).poll_next(cx) {
            Poll::Ready(Some(frame)) => Poll::Ready(Some(Ok(frame))),
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                let Some(closing) = self.closing.as_mut() else {
                    return Poll::Ready(None);
                };
                let status = match Pin::new(closing).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(status) => status.ok(),
                };
                self.closing = None;
                Poll::Ready(status.map(Err))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio_stream::StreamExt;

    use super::*;

    fn frame(revision: u64) -> WatchFrame {
        flag_proto::heartbeat_frame(revision, Duration::from_secs(1))
    }

    #[tokio::test]
    async fn a_full_buffer_refuses_then_takes_a_frame_once_the_client_reads() {
        let (mut sink, mut stream) = watch_stream(2);
        assert_eq!(sink.frames().try_send(frame(1)), Ok(()));
        assert_eq!(sink.frames().try_send(frame(2)), Ok(()));
        assert_eq!(sink.frames().try_send(frame(3)), Err(NotSent::Full(frame(3))), "two frames queued");
        let waited = sink.frames().send_timeout(frame(3), Duration::from_millis(20)).await;
        assert_eq!(waited, Err(NotSent::TimedOut));
        assert_eq!(stream.next().await.unwrap().unwrap(), frame(1));
        sink.frames().send_timeout(frame(3), Duration::from_secs(5)).await.unwrap();
        sink.close_with(Status::not_found("gone"));
        let rest: Vec<_> = stream.collect().await;
        assert_eq!(rest.len(), 3, "{rest:?}");
        assert_eq!((rest[0].as_ref().ok(), rest[1].as_ref().ok()), (Some(&frame(2)), Some(&frame(3))));
        assert_eq!(rest[2].as_ref().unwrap_err().message(), "gone", "the status comes after the frames");
    }

    #[tokio::test]
    async fn a_gone_client_closes_the_sender() {
        let (mut sink, stream) = watch_stream(4);
        drop(stream);
        assert_eq!(sink.frames().try_send(frame(1)), Err(NotSent::Closed));
    }
}
