//! Frames: the inputs of the entry being computed on this thread, innermost on top.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::{EntryGraph, Input};

/// The inputs read so far by one computation, for the graph of one manager.
pub(crate) struct Frame {
    graph: Arc<EntryGraph>,
    inputs: Vec<Input>,
}

thread_local! {
    static STACK: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// Whether a computation is recording on this thread: a bit of the word a hit reads anyway to
/// count itself (`stats.rs`), kept in step with the stack, readable without a `RefCell` borrow.
#[inline]
pub(crate) fn recording() -> bool {
    crate::stats::recording()
}

fn push(frame: Frame) {
    STACK.with_borrow_mut(|stack| {
        stack.push(frame);
        set_depth(stack.len());
    });
}

fn pop() -> Option<Frame> {
    STACK.with_borrow_mut(|stack| {
        let frame = stack.pop();
        set_depth(stack.len());
        frame
    })
}

fn set_depth(depth: usize) {
    crate::stats::set_recording(depth > 0);
}

/// Adds `input` to the innermost frame if that frame records for `graph` (a read of another
/// manager's cache is not an input).
pub(crate) fn record(graph: &EntryGraph, input: Input) {
    STACK.with_borrow_mut(|stack| {
        if let Some(top) = stack.last_mut()
            && std::ptr::eq(Arc::as_ptr(&top.graph), graph)
        {
            top.inputs.push(input);
        }
    });
}

/// The graph of the innermost frame, if any (for inputs that are not cache entries).
pub(crate) fn current_graph() -> Option<Arc<EntryGraph>> {
    if !recording() {
        return None;
    }
    STACK.with_borrow(|stack| stack.last().map(|top| Arc::clone(&top.graph)))
}

impl Frame {
    pub(crate) fn new(graph: Arc<EntryGraph>) -> Self {
        Frame {
            graph,
            inputs: Vec::new(),
        }
    }

    /// Opens this frame on the current thread until the guard is closed or dropped (a body
    /// that panics or fails leaves no frame behind).
    pub(crate) fn open(self) -> OpenFrame {
        push(self);
        OpenFrame { closed: false }
    }

    /// The inputs, each once, in a stable order.
    pub(crate) fn into_inputs(self) -> Vec<Input> {
        let mut inputs = self.inputs;
        inputs.sort_unstable();
        inputs.dedup();
        inputs
    }
}

/// A frame open on this thread.
pub(crate) struct OpenFrame {
    closed: bool,
}

impl OpenFrame {
    /// Takes the frame off the thread, with what it recorded.
    pub(crate) fn close(mut self) -> Frame {
        self.closed = true;
        pop().expect("an open frame is on its thread's stack")
    }
}

impl Drop for OpenFrame {
    fn drop(&mut self) {
        if !self.closed {
            pop();
        }
    }
}

/// A future computing an entry: its frame is open on whichever thread polls it, for the
/// length of each poll, so that reads made by the future are recorded even when it moves
/// between threads. The inner future is boxed so that no unsafe pin projection is needed.
pub(crate) struct Recording<F: Future> {
    frame: Option<Frame>,
    future: Pin<Box<F>>,
}

impl<F: Future> Recording<F> {
    pub(crate) fn new(frame: Frame, future: F) -> Self {
        Recording {
            frame: Some(frame),
            future: Box::pin(future),
        }
    }
}

impl<F: Future> Future for Recording<F> {
    type Output = (F::Output, Frame);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(frame) = this.frame.take() else {
            return Poll::Pending; // polled after completion: never ready again
        };
        let open = frame.open();
        let polled = this.future.as_mut().poll(cx);
        let frame = open.close();
        match polled {
            Poll::Ready(output) => Poll::Ready((output, frame)),
            Poll::Pending => {
                this.frame = Some(frame);
                Poll::Pending
            }
        }
    }
}
