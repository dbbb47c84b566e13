//! The protocol seam: what the slot driver ([`super::drive`]) asks of a protocol. A *link* is
//! what one slot sends on: HTTP/1.1's is its own connection; HTTP/2's is a handle on a
//! connection that N slots share. The driver owns the plan, the deadline, the unfinished-request
//! accounting and the reconnect/re-send policy; an [`Exchange`] opens links and sends one
//! request on one, recording its response. HTTP/1.1's is [`Http1`] (`exchange.rs`,
//! `http1.rs`); HTTP/2's is `h2.rs`.

use std::io;
use std::pin::Pin;

use tokio::time::Sleep;

use super::connect::Connector;
use super::exchange::{self, Slot, Times};
use super::hooks::Hooks;
use super::http1::ResponseReader;
use super::unfinished::Out;
use super::{Next, ThreadCtx};

/// One protocol's side of a slot: opening links and exchanging one request on one.
#[allow(async_fn_in_trait)]
pub(crate) trait Exchange {
    /// What the slot sends on.
    type Link;
    /// Opens a link to `ctx.addr` (the driver bounds it by `--timeout`).
    async fn open(&mut self, ctx: &ThreadCtx) -> io::Result<Self::Link>;
    /// The slot starts on a fresh link (opened now, or before the run).
    fn fresh(&mut self);
    /// The slot's connection leaves the run for now (`--conn-stages`): the driver drops its
    /// link; a protocol whose links share a connection lets that connection close too.
    fn leave(&mut self) {}
    /// Sends one request of `slot` on `link` and reads its response(s), recording each and
    /// handing each to the script; `timer` is the slot's deadline timer, set to `*timer_ns`
    /// (see `exchange::before`). Returns what to do next and how many slots of the plan the
    /// request used (0 for `Next::Resend`, which keeps its slot).
    #[allow(clippy::too_many_arguments)]
    async fn exchange<H: Hooks>(
        &mut self,
        ctx: &ThreadCtx,
        link: &mut Self::Link,
        hooks: &mut H,
        timer: Pin<&mut Sleep>,
        timer_ns: &mut u64,
        slot: Slot,
        times: &mut Times,
        out: &mut Out,
    ) -> (Next, u64);
}

/// HTTP/1.1: a link is a connection of its own, with its response reader.
pub struct Http1<C> {
    /// Opens the connections.
    pub connector: C,
    /// The connection's response buffer, reused across reconnects.
    pub reader: ResponseReader,
}

impl<C> Http1<C> {
    /// HTTP/1.1 over the connections `connector` opens.
    pub fn new(connector: C) -> Http1<C> {
        Http1 {
            connector,
            reader: ResponseReader::new(),
        }
    }
}

impl<C: Connector> Exchange for Http1<C> {
    type Link = C::Stream;

    #[inline]
    async fn open(&mut self, ctx: &ThreadCtx) -> io::Result<C::Stream> {
        let (s, o) = self.connector.connect(ctx.addr).await?;
        ctx.stats
            .borrow_mut()
            .record_connect(o.connect_ns, o.tls_ns);
        Ok(s)
    }

    #[inline]
    fn fresh(&mut self) {
        self.reader.clear();
    }

    #[inline]
    async fn exchange<H: Hooks>(
        &mut self,
        ctx: &ThreadCtx,
        link: &mut C::Stream,
        hooks: &mut H,
        timer: Pin<&mut Sleep>,
        timer_ns: &mut u64,
        slot: Slot,
        times: &mut Times,
        out: &mut Out,
    ) -> (Next, u64) {
        exchange::exchange(
            ctx,
            link,
            &mut self.reader,
            hooks,
            timer,
            timer_ns,
            slot,
            times,
            out,
        )
        .await
    }
}
