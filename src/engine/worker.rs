//! One worker thread of the engine: its runtime and `LocalSet`, its script state, the
//! connections it opens before the run (`preopen`), its connection or stream-slot tasks (one
//! `conn::drive` each), the wait for the common start and the stop, and what it hands back.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{drain_period, DRAIN_BACKSTOP};
use crate::config::{Config, HttpVersion};
use crate::conn::connect::{Connector, Opened};
use crate::conn::h2::{H2Slot, H2Thread};
use crate::conn::hooks::NoHooks;
use crate::conn::http1::Discard;
use crate::conn::proto::Http1;
use crate::conn::{self, Abandon, Pace, ThreadCtx};
use crate::conn_profile::Turns;
use crate::error::{Error, Result};
use crate::live::{Msg, ThreadDone};
use crate::pacer::policy::Follow;
use crate::record::Stats;
use crate::request::Request;
use crate::schedule::{connections_of_thread, Plan};
use crate::script::site::Site;
use crate::script::thread::ThreadSeed;
use crate::script::value::Portable;
use crate::script::worker::ThreadScript;

/// What each worker needs from the engine.
pub(super) struct WorkerArgs<C> {
    pub(super) index: usize,
    pub(super) connector: C,
    pub(super) addr: SocketAddr,
    pub(super) request: Request,
    pub(super) config: Config,
    pub(super) core: Option<core_affinity::CoreId>,
    pub(super) seed: Option<ThreadSeed>,
    pub(super) site: Arc<Site>,
    pub(super) failure: tokio::sync::mpsc::UnboundedSender<String>,
    pub(super) ready: tokio::sync::mpsc::UnboundedSender<Result<()>>,
    /// Told the thread's index when the worker ends, however it ends ([`Ended`]).
    pub(super) ended: tokio::sync::mpsc::UnboundedSender<usize>,
    pub(super) start: watch::Receiver<Option<Instant>>,
    pub(super) stop: watch::Receiver<bool>,
    /// Where the thread's ticker sends its closed seconds, when there is a live view.
    pub(super) live: Option<mpsc::Sender<Msg>>,
}

/// Sends its worker's index to the engine when dropped, however the worker ends (a panic
/// too): the engine waits on these instead of polling the threads.
pub(super) struct Ended(tokio::sync::mpsc::UnboundedSender<usize>, usize);

impl Drop for Ended {
    fn drop(&mut self) {
        let _ = self.0.send(self.1);
    }
}

/// What a worker hands back: its statistics and, with a script, its globals at the end.
pub(super) struct WorkerOut {
    pub(super) stats: Stats,
    pub(super) globals: Option<Vec<(String, Portable)>>,
}

impl WorkerOut {
    /// The hand-back of a worker that never ran.
    pub(super) fn empty() -> WorkerOut {
        WorkerOut {
            stats: Stats::new(),
            globals: None,
        }
    }
}

/// How long opening the connections before the run may go without one of them opening: then
/// the run starts without the rest, and their drivers open them at their first slots. A
/// listener whose accept queue is full drops SYNs silently, so its connects would otherwise
/// hold the start back by a whole `--timeout`, outside the run's reported time.
const PREOPEN_STALL: Duration = Duration::from_millis(250);

/// Opens `n` connections to `addr` concurrently, each within `timeout`, and returns those
/// that opened (in order, with how long opening took; `None` for the others) once all have
/// ended or none has opened for [`PREOPEN_STALL`]; the attempts still pending then are
/// dropped.
async fn preopen<C: Connector>(
    connector: &C,
    addr: SocketAddr,
    n: usize,
    timeout: Duration,
) -> Vec<Option<(C::Stream, Opened)>> {
    let mut set = tokio::task::JoinSet::new();
    for j in 0..n {
        let c = connector.clone();
        set.spawn_local(async move {
            let s = tokio::time::timeout(timeout, c.connect(addr)).await;
            (j, s.ok().and_then(|s| s.ok()))
        });
    }
    let mut streams: Vec<Option<(C::Stream, Opened)>> =
        std::iter::repeat_with(|| None).take(n).collect();
    loop {
        tokio::select! {
            r = set.join_next() => match r {
                Some(Ok((j, s))) => streams[j] = s,
                Some(Err(_)) => {}
                None => break,
            },
            _ = tokio::time::sleep(PREOPEN_STALL) => break,
        }
    }
    set.abort_all();
    streams
}

/// Most a precise sleep may end before its slot, to make up for the thread's wake-up latency:
/// half the thread's slot spacing (so slots are never bunched together), at most
/// 50 µs. 0 with coarse pacing or closed loop.
fn max_early(c: &Config) -> u64 {
    match c.peak_rate() {
        Some(r) if c.pacing == crate::config::Pacing::Precise => {
            let gap = c.threads as f64 * 1e9 / r;
            ((gap / 2.0) as u64).min(MAX_EARLY_NS)
        }
        _ => 0,
    }
}

/// Upper bound of [`max_early`].
const MAX_EARLY_NS: u64 = 50_000;

/// Busy-wait budget per request for this run: `conn::LOW_RATE_SPIN_NS` when each thread's
/// slots are at least `conn::LOW_RATE_GAP_NS` apart (so spinning costs a few percent of a CPU
/// at most) and pacing is precise; else 0.
fn low_rate_spin(c: &Config) -> u64 {
    match c.peak_rate() {
        Some(r) if c.pacing == crate::config::Pacing::Precise => {
            let gap = c.threads as f64 * 1e9 / r;
            if gap >= conn::LOW_RATE_GAP_NS as f64 {
                conn::LOW_RATE_SPIN_NS
            } else {
                0
            }
        }
        _ => 0,
    }
}

/// One worker thread: build its script state (`init`), open its connections, report ready,
/// wait for the common start, drive the connections until told to stop (or until the script
/// stops the thread), and hand back the thread's statistics.
pub(super) fn worker<C: Connector>(a: WorkerArgs<C>) -> WorkerOut {
    // Declared first, so dropped last: the engine hears of the end after everything else.
    let _ended = Ended(a.ended.clone(), a.index);
    let _done = a.live.clone().map(|tx| ThreadDone(tx, a.index));
    if let Some(core) = a.core {
        core_affinity::set_for_current(core);
    }
    let script = match &a.seed {
        None => None,
        Some(seed) => {
            let tx = a.failure.clone();
            let fail = Box::new(move |m| drop(tx.send(m)));
            match ThreadScript::new(&a.config, seed, fail, a.site.clone()) {
                Ok(s) => Some(s),
                Err(e) => {
                    let _ = a.ready.send(Err(e));
                    return WorkerOut::empty();
                }
            }
        }
    };
    let (request, addr) = match &script {
        Some(s) => (s.static_request.clone(), s.addr),
        None => (a.request.clone(), a.addr),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = a.ready.send(Err(Error::Runtime(format!(
                "cannot start worker thread {}: {e}",
                a.index
            ))));
            return WorkerOut::empty();
        }
    };
    let local = tokio::task::LocalSet::new();
    let conns = connections_of_thread(a.index, a.config.threads, a.config.connections);
    let cpu_at_start = std::cell::Cell::new(0);
    let ctx = local.block_on(&rt, async {
        // The pacer's timer first: a process out of file descriptors fails here, with one
        // line, rather than after opening its connections.
        let timer = if a.config.pacing.ticks() && a.config.rate.is_some() {
            crate::pacer::Pacer::ticked(a.index, a.config.threads, a.config.tick.as_nanos() as u64)
                .map(|p| (p, true))
        } else {
            // At low per-thread rates, wake early and spin the last stretch before each slot
            // (see `conn::LOW_RATE_SPIN_NS`).
            crate::pacer::Pacer::new(low_rate_spin(&a.config), max_early(&a.config))
                .map(|p| (p, false))
        };
        let (pacer, ticked) = match timer {
            Ok(p) => p,
            Err(e) => {
                let _ = a.ready.send(Err(Error::Runtime(format!(
                    "cannot create the pacing timer of thread {}: {e}",
                    a.index
                ))));
                return None;
            }
        };
        // HTTP/2: the request in HTTP/2 form, parsed once.
        let h2t = match a.config.http {
            HttpVersion::Http2 => {
                let scheme = a.config.target.scheme.as_str();
                let authority = a.config.target.host_header();
                match crate::conn::h2::H2Request::parse(&request.bytes, scheme, &authority) {
                    Ok(r) => Some(Rc::new(H2Thread::new(a.config.streams, r))),
                    Err(e) => {
                        let _ = a
                            .ready
                            .send(Err(Error::Usage(format!("HTTP/2 request: {e}"))));
                        return None;
                    }
                }
            }
            _ => None,
        };
        // With `--conn-stages`, when each connection is in use; a connection never in use is
        // never started, and only those in use from the start are opened before it.
        let turns: Vec<Option<Turns>> = conns
            .iter()
            .map(|&i| a.config.conn_profile.as_ref().map(|p| p.turns(i)))
            .collect();
        let at_start: Vec<bool> = turns
            .iter()
            .map(|t| t.as_ref().is_none_or(Turns::at_start))
            .collect();
        // Open this thread's connections concurrently; failures are retried by the drivers.
        let first = at_start.iter().filter(|&&b| b).count();
        let mut opened = preopen(&a.connector, addr, first, a.config.timeout)
            .await
            .into_iter();
        let opened: Vec<_> = at_start
            .iter()
            .map(|&b| if b { opened.next().flatten() } else { None })
            .collect();
        // Connections opened before the run count in the timing breakdown too (recorded once
        // the thread's stats exist, below).
        let preopened: Vec<Opened> = opened.iter().flatten().map(|&(_, o)| o).collect();
        let mut streams: Vec<Option<C::Stream>> =
            opened.into_iter().map(|s| s.map(|(s, _)| s)).collect();
        let h2conns = match &h2t {
            Some(t) => conn::h2::start_all(&a.connector, t, std::mem::take(&mut streams)).await,
            None => Vec::new(),
        };
        let _ = a.ready.send(Ok(()));
        // The engine gone before the start (it failed): there is no run.
        let t0 = match a.start.clone().wait_for(|s| s.is_some()).await {
            Ok(v) => v.expect("checked by wait_for"),
            Err(_) => return None,
        };
        // The generator's load is its CPU from here on: setting up (the script's state,
        // opening the connections) is not part of the run it is compared with.
        cpu_at_start.set(crate::sys::thread_cpu_ns());
        // The plan's start on CLOCK_MONOTONIC (the clock behind `Instant` on Linux).
        let (now_i, now_m) = (Instant::now(), crate::pacer::mono_ns());
        let t0_mono = if t0 >= now_i {
            now_m + (t0 - now_i).as_nanos() as u64
        } else {
            now_m - (now_i - t0).as_nanos() as u64
        };
        let drain = drain_period(&a.config);
        if ticked {
            // Adaptive pacing follows this thread's share of the rate of the moment.
            let follow = match (&a.config.rate, a.config.pacing) {
                (Some(r), crate::config::Pacing::Adaptive) => Some(Follow::new(
                    r.clone(),
                    t0_mono,
                    conns.len() as f64 / a.config.connections.max(1) as f64,
                    &a.config.load(),
                )),
                _ => None,
            };
            tokio::task::spawn_local(pacer.clone().ticks(follow));
        } else {
            tokio::task::spawn_local(pacer.clone().run());
        }
        let ctx = Rc::new(ThreadCtx {
            t0: t0_mono,
            pacer,
            addr,
            request,
            timeout: a.config.timeout,
            timeout_ns: a.config.timeout.as_nanos().min(u64::MAX as u128) as u64,
            end_ns: a.config.duration.as_nanos() as u64,
            cut_ns: (a.config.duration + drain).as_nanos() as u64,
            cut_at: t0 + a.config.duration + drain,
            open_loop: a.config.rate.is_some(),
            stats: Stats::anchored(crate::timeline::unix_ns_at(t0)).into(),
            abandoned: None.into(),
        });
        for o in preopened {
            ctx.stats
                .borrow_mut()
                .record_connect(o.connect_ns, o.tls_ns);
        }
        if let Some(tx) = a.live.clone() {
            tokio::task::spawn_local(crate::live::ticker::run(ctx.clone(), a.index, tx));
        }
        let mut tasks = Vec::with_capacity(conns.len() * a.config.streams);
        // Each slot (an HTTP/1.1 connection, or a stream slot of an HTTP/2 connection) follows
        // its own plan: the rate is spread over connections x streams, stream `st` of
        // connection `i` taking slot `i * streams + st` of the plan, so that requests due
        // together (in one tick) are mostly on one connection and share its writes and reads.
        let slots = a.config.connections * a.config.streams.max(1);
        let plan_of = |slot: usize| {
            a.config
                .rate
                .clone()
                .map(|p| Plan::with_arrivals(p, a.config.arrivals, slot, slots))
        };
        // Scripts without request/response/delay hooks take the plain path too.
        let hooked = script.as_ref().filter(|s| s.has_hooks());
        macro_rules! spawn {
            ($proto:expr, $plan:expr, $turns:expr, $link:expr, $id:expr) => {{
                let ctx = ctx.clone();
                let pace = Pace {
                    plan: $plan,
                    turns: $turns,
                };
                match hooked {
                    Some(sc) => match sc.connection($id) {
                        Ok(h) => tasks.push(tokio::task::spawn_local(conn::drive(
                            ctx, $proto, pace, $link, h,
                        ))),
                        Err(_) => continue,
                    },
                    None => tasks.push(tokio::task::spawn_local(conn::drive(
                        ctx,
                        $proto,
                        pace,
                        $link,
                        NoHooks(Discard),
                    ))),
                }
            }};
        }
        let never = |t: &Option<Turns>| t.as_ref().is_some_and(|t| t.windows().is_empty());
        for ((&i, s), t) in conns.iter().zip(streams).zip(&turns) {
            if h2t.is_some() {
                break;
            }
            if never(t) {
                continue;
            }
            spawn!(
                Http1::new(a.connector.clone()),
                plan_of(i),
                t.clone(),
                s,
                i + 1
            );
        }
        for ((&i, (hc, link)), t) in conns.iter().zip(h2conns).zip(&turns) {
            if never(t) {
                continue;
            }
            for st in 0..a.config.streams {
                let slot = i * a.config.streams + st;
                spawn!(
                    H2Slot::new(hc.clone(), st),
                    plan_of(slot),
                    t.clone(),
                    link.clone(),
                    i + 1
                );
            }
        }
        let mut stop = a.stop.clone();
        let thread_stopped = async {
            match &script {
                Some(s) => s.stop_flag().wait().await,
                None => std::future::pending().await,
            }
        };
        let all_done = async {
            for t in tasks.iter_mut() {
                let _ = t.await;
            }
        };
        // Open loop: at the deadline the connections finish what was planned before it and
        // end by themselves, by the end of the drain period at the latest (the sleep is a
        // backstop for a connection stuck in a reconnect).
        let backstop = tokio::time::sleep_until((t0 + a.config.duration + drain).into());
        tokio::select! {
            // Stopped early by the engine: what the connections leave unfinished is recorded
            // as they are dropped (`conn::Progress`).
            _ = stop.wait_for(|s| *s) => ctx.abandoned.set(Some(Abandon::stopped(&ctx))),
            _ = thread_stopped => {}
            _ = all_done => {}
            _ = async { backstop.await; tokio::time::sleep(DRAIN_BACKSTOP).await } => {
                ctx.abandoned.set(Some(Abandon::drained(&ctx)));
            }
        }
        for t in tasks {
            t.abort();
        }
        Some((ctx, h2t))
    });
    drop(local);
    let Some((ctx, h2t_out)) = ctx else {
        return WorkerOut::empty();
    };
    let mut stats = std::mem::take(&mut *ctx.stats.borrow_mut());
    stats.script_limited = script.as_ref().is_some_and(|s| s.limits_rate());
    stats.cpu_ns = crate::sys::thread_cpu_ns().saturating_sub(cpu_at_start.get());
    if let Some(t) = &h2t_out {
        t.finish(&mut stats);
    }
    WorkerOut {
        stats,
        globals: script.map(|s| s.globals()),
    }
}
