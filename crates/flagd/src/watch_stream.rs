//! The response stream of one `Watch` call: frames from the stream's task, then, if the task
//! ends the stream on purpose, one closing status the client can act on.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use flag_proto::WatchFrame;
use tokio::sync::{mpsc, oneshot};
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
    pub(crate) frames: mpsc::Sender<WatchFrame>,
    closing: oneshot::Sender<Status>,
}

/// A stream buffering up to `buffer` frames.
pub(crate) fn watch_stream(buffer: usize) -> (WatchSink, WatchStream) {
    let (frames_tx, frames) = mpsc::channel(buffer);
    let (closing_tx, closing) = oneshot::channel();
    (WatchSink { frames: frames_tx, closing: closing_tx }, WatchStream { frames, closing: Some(closing) })
}

impl WatchSink {
    /// Ends the stream with `status` once the client has read the frames before it.
    pub(crate) fn close_with(self, status: Status) {
        let WatchSink { frames, closing } = self;
        // The status is delivered after the buffered frames, when the frame channel closes.
        let _ = closing.send(status);
        drop(frames);
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchFrame, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.frames.poll_recv(cx) {
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
