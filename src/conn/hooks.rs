//! The seam between a connection's driver and a script: what the driver asks of a script per
//! request (the request to send, the think time before it, what to do with the response) and
//! the no-script implementation [`NoHooks`], whose methods are empty and inlined so the plain
//! path compiles to the same code as if the seam were not there.

use std::time::Duration;

use super::http1::{Discard, ResponseSink};
use crate::request::Request;

/// The connection must stop: the script called `thread:stop()` or raised an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop;

/// Per-connection script hooks, called by [`super::drive`].
pub trait Hooks {
    /// Receives each response's head and body (when the script wants them).
    type Sink: ResponseSink;
    /// The request to send next, or `None` to send the thread's prebuilt request.
    fn request(&mut self) -> Result<Option<&Request>, Stop>;
    /// The request `request()` last returned, to send again unchanged on a new connection
    /// (`None`: the thread's prebuilt one).
    fn last_request(&self) -> Option<&Request>;
    /// Think time before the next request (`delay()`), if the script has one.
    fn delay(&mut self) -> Result<Option<Duration>, Stop>;
    /// Where the response reader puts the head and body of the response being read.
    fn sink(&mut self) -> &mut Self::Sink;
    /// Called after each complete response (already recorded), with the sink filled.
    fn response(&mut self) -> Result<(), Stop>;
    /// Whether this connection's thread was stopped.
    fn stopped(&self) -> bool;
}

/// No script: the prebuilt request, no think time, responses discarded unseen.
pub struct NoHooks(pub Discard);

impl Hooks for NoHooks {
    type Sink = Discard;
    #[inline(always)]
    fn request(&mut self) -> Result<Option<&Request>, Stop> {
        Ok(None)
    }
    #[inline(always)]
    fn last_request(&self) -> Option<&Request> {
        None
    }
    #[inline(always)]
    fn delay(&mut self) -> Result<Option<Duration>, Stop> {
        Ok(None)
    }
    #[inline(always)]
    fn sink(&mut self) -> &mut Discard {
        &mut self.0
    }
    #[inline(always)]
    fn response(&mut self) -> Result<(), Stop> {
        Ok(())
    }
    #[inline(always)]
    fn stopped(&self) -> bool {
        false
    }
}
