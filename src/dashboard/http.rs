//! The dashboard's HTTP side: hyper (HTTP/1.1) on a current-thread runtime of its own thread.
//!
//! - `GET /`: the report page ([`html::page`]) with the latest snapshot embedded, so it draws
//!   at once, and a script that renders every later snapshot from `/events`;
//! - `GET /events`: server-sent events, one `data:` line of JSON per snapshot, the latest at
//!   once on connecting, then each new one; the final report comes as `event: final`, and the
//!   stream ends after it;
//! - `GET /data.json`: the latest snapshot (for `curl` and scripts).
//!
//! A slow client never holds anything up: each stream only ever sends the newest snapshot
//! (a watch channel), skipping those it was too slow for.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, watch};

use super::Snapshot;
use crate::report::html;

/// Receives new snapshots and renders each; closes the stream after the final one (else
/// the browser would reconnect to a server that has gone).
const LIVE_SCRIPT: &str = "(function(){if(!window.EventSource)return;\
var es=new EventSource('events');\
function show(e){window.loadgen.render(JSON.parse(e.data));}\
es.onmessage=show;\
es.addEventListener('final',function(e){es.close();show(e);});})();";

type Body = BoxBody<Bytes, Infallible>;

/// Serves `listener` until the process ends.
pub fn serve(listener: std::net::TcpListener, rx: watch::Receiver<Arc<Snapshot>>) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        eprintln!("loadgen: the dashboard could not start its runtime");
        return;
    };
    rt.block_on(async move {
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            eprintln!("loadgen: the dashboard could not use its socket");
            return;
        };
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let rx = rx.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let rx = rx.clone();
                    async move { Ok::<_, Infallible>(route(&req, rx)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
}

fn full(status: StatusCode, kind: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn route(req: &Request<Incoming>, rx: watch::Receiver<Arc<Snapshot>>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return full(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
    }
    match req.uri().path() {
        "/" | "/index.html" => {
            let s = rx.borrow().clone();
            full(
                StatusCode::OK,
                "text/html; charset=utf-8",
                html::page(&s.data, LIVE_SCRIPT),
            )
        }
        "/data.json" => {
            let s = rx.borrow().clone();
            full(StatusCode::OK, "application/json", s.json.clone())
        }
        "/events" => {
            let (tx, body) = mpsc::channel(2);
            tokio::spawn(feed(rx, tx));
            let mut r = full(StatusCode::OK, "text/event-stream", Bytes::new());
            *r.body_mut() = Events(body).boxed();
            r
        }
        _ => full(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

/// One SSE event of `s`.
fn event(s: &Snapshot) -> Bytes {
    let kind = if s.last { "event: final\n" } else { "" };
    Bytes::from(format!("id: {}\n{kind}data: {}\n\n", s.id, s.json))
}

/// Sends the latest snapshot, then each new one, until the final one or the client goes.
async fn feed(mut rx: watch::Receiver<Arc<Snapshot>>, tx: mpsc::Sender<Bytes>) {
    loop {
        let s = rx.borrow_and_update().clone();
        if tx.send(event(&s)).await.is_err() || s.last {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// The body of an event stream: what [`feed`] sends.
struct Events(mpsc::Receiver<Bytes>);

impl hyper::body::Body for Events {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}
