//! The engine: resolves and probes the target, starts `-t` OS threads (pinned to distinct CPUs
//! the process may use, when there are enough), each with its own current-thread tokio runtime
//! and `LocalSet`; deals connections and plans to them; starts every thread on one common
//! instant; stops them at the deadline or on Ctrl-C/SIGTERM (from [`crate::interrupt`]);
//! leaves behind a thread stuck in its script a second after the run's end; joins and merges
//! the others' statistics once. This module is the coordination (the main thread's side);
//! each worker thread's side is `worker.rs`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use crate::config::{Config, HttpVersion, Scheme};
use crate::conn::connect::{Connector, Tcp, TcpStamped, Tls};
use crate::error::{Error, Result};
use crate::live::Msg;
use crate::record::Stats;
use crate::request::{self, Request};
use crate::result::Summary;
use crate::script::session::Session;
use crate::script::site::{Hook, Site};

mod worker;
use worker::{worker, WorkerArgs};

/// Resolves the target's host and port to socket addresses (as wrk does, before any load).
pub fn resolve(config: &Config) -> Result<Vec<SocketAddr>> {
    let t = &config.target;
    let addrs: Vec<SocketAddr> = (t.host.as_str(), t.port)
        .to_socket_addrs()
        .map_err(|e| Error::Connect(format!("unable to resolve {}: {e}", t.host)))?
        .collect();
    if addrs.is_empty() {
        return Err(Error::Connect(format!(
            "unable to resolve {}: no addresses",
            t.host
        )));
    }
    Ok(addrs)
}

/// A finished run: the merged summary (with the run-time script error, if one stopped the
/// run early) and the script's setup/done state (for `done()`, called after the report).
pub struct Finished {
    /// The merged results.
    pub summary: Summary,
    /// The script's setup/done state, when there is a script.
    pub session: Option<Session>,
}

/// Runs the load described by `config` and returns the merged summary.
pub fn run(config: &Config) -> Result<Summary> {
    run_scripted(config).map(|f| f.summary)
}

/// Runs the load described by `config`, with its script if it has one.
pub fn run_scripted(config: &Config) -> Result<Finished> {
    run_live(config, None)
}

/// [`run_scripted`], with each worker thread closing its seconds on the clock and sending
/// them to `live` (the progress line and `--watch-pid`: [`crate::live`]).
pub fn run_live(config: &Config, live: Option<mpsc::Sender<Msg>>) -> Result<Finished> {
    crate::sys::ensure_nofile_limit(config)?;
    let looked_up = crate::pacer::mono_ns();
    let addrs = resolve(config)?;
    let dns_ns = crate::pacer::mono_ns() - looked_up;
    let request = request::from_config(config);
    let config = &settle_http(config, &addrs)?;
    let mut finished = match (config.target.scheme, config.http) {
        (Scheme::Http, HttpVersion::Http2) => run_with(config, TcpStamped, &addrs, request, live),
        (Scheme::Http, _) => run_with(config, Tcp, &addrs, request, live),
        (Scheme::Https, _) => run_with(config, Tls::new(config)?, &addrs, request, live),
    }?;
    finished.summary.stats.record_dns(dns_ns);
    Ok(finished)
}

/// The HTTP version the run speaks: `--http-version auto` asks the server by ALPN (one
/// connection to the first address that answers) over TLS, and is HTTP/1.1 over plain TCP.
fn settle_http(config: &Config, addrs: &[SocketAddr]) -> Result<Config> {
    let mut c = config.clone();
    if c.http != HttpVersion::Auto {
        return Ok(c);
    }
    c.http = HttpVersion::Http1;
    if c.target.scheme == Scheme::Https {
        let tls = Tls::new(config)?;
        let addr = probe(&tls, addrs, config.timeout)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let h2 =
            rt.block_on(async { tokio::time::timeout(config.timeout, tls.selects_h2(addr)).await });
        if let Ok(Ok(true)) = h2 {
            c.http = HttpVersion::Http2;
        }
    }
    if c.http == HttpVersion::Http1 {
        c.streams = 1;
    }
    Ok(c)
}

/// Makes one connection to each resolved address in turn and returns the first that works;
/// fails with one line naming the address and the reason when none does.
fn probe<C: Connector>(
    connector: &C,
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Result<SocketAddr> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut last = String::new();
    for &addr in addrs {
        let res =
            rt.block_on(async { tokio::time::timeout(timeout, connector.connect(addr)).await });
        match res {
            Ok(Ok(_)) => return Ok(addr),
            Ok(Err(e)) => last = format!("unable to connect to {addr}: {e}"),
            Err(_) => last = format!("unable to connect to {addr}: timed out after {timeout:?}"),
        }
    }
    Err(Error::Connect(last))
}

fn run_with<C: Connector + Send>(
    config: &Config,
    connector: C,
    addrs: &[SocketAddr],
    request: Request,
    live: Option<mpsc::Sender<Msg>>,
) -> Result<Finished> {
    let addr = probe(&connector, addrs, config.timeout)?;
    let threads = config.threads;
    // The setup/done state: `setup(thread)` runs here, before any thread starts.
    let session = match &config.script {
        Some(_) => Some(Session::new(config, addr, threads)?),
        None => None,
    };
    let mut seeds = session.as_ref().map(|s| s.seeds().into_iter());
    // Pin only when every thread can have a CPU of its own among those we may use.
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let pin = cores.len() >= threads;

    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
    let (ended_tx, mut ended_rx) = tokio::sync::mpsc::unbounded_channel();
    let (start_tx, start_rx) = watch::channel(None);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (fail_tx, mut fail_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut handles = Vec::with_capacity(threads);
    let sites: Vec<Arc<Site>> = (0..threads).map(|_| Arc::default()).collect();
    for (index, site) in sites.iter().enumerate() {
        let args = WorkerArgs {
            index,
            connector: connector.clone(),
            addr,
            request: request.clone(),
            config: config.clone(),
            core: if pin { cores.get(index).copied() } else { None },
            seed: seeds.as_mut().and_then(Iterator::next),
            site: site.clone(),
            failure: fail_tx.clone(),
            ready: ready_tx.clone(),
            ended: ended_tx.clone(),
            start: start_rx.clone(),
            stop: stop_rx.clone(),
            live: live.clone(),
        };
        let h = std::thread::Builder::new()
            .name(format!("loadgen-{index}"))
            .spawn(move || worker(args))
            .map_err(|e| Error::Runtime(format!("cannot start thread: {e}")))?;
        handles.push(h);
    }
    drop(ready_tx);
    drop(ended_tx);
    drop(fail_tx);

    // The main thread's own runtime waits for readiness, then for the deadline, Ctrl-C, or a
    // script error in a worker.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let drain = drain_period(config);
    let end = config.duration + drain;
    let script = config
        .script
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let (t0, stop_at, interrupted, init_error, script_error, stuck) = rt.block_on(async {
        let mut sig = crate::interrupt::subscribe();
        // Wait for every thread to have run `init` and opened its connections.
        let mut waiting = threads;
        let mut interrupted = false;
        let mut init_error = None;
        let mut stuck = Vec::new();
        // A thread still in its script's top level or `init` when the run would have ended,
        // had it started now, is stuck there.
        let mut check_at = tokio::time::Instant::now() + end + STUCK_AFTER;
        // The workers that have ended (their index, from `Ended`).
        let mut finished = vec![false; threads];
        while waiting > 0 && init_error.is_none() {
            tokio::select! {
                // A worker's word before its end: an `init` error explains the end.
                biased;
                _ = sig.recv() => { interrupted = true; break; }
                r = ready_rx.recv() => match r {
                    Some(r) => {
                        waiting -= 1;
                        if let Err(e) = r {
                            init_error.get_or_insert(e);
                        }
                    }
                    // Every worker has ended, some without a word (a panic).
                    None => {
                        init_error.get_or_insert(Error::Runtime(
                            "a worker thread stopped before the run started".into(),
                        ));
                    }
                },
                Some(i) = ended_rx.recv() => {
                    // A worker that ended without a word (a panic) while the others wait for
                    // the start: take what the others said, then fail.
                    finished[i] = true;
                    while let Ok(r) = ready_rx.try_recv() {
                        if let Err(e) = r {
                            init_error.get_or_insert(e);
                        }
                    }
                    init_error.get_or_insert(Error::Runtime(
                        "a worker thread stopped before the run started".into(),
                    ));
                }
                _ = tokio::time::sleep_until(check_at) => {
                    // A thread still in its script's top level or `init` when the run would
                    // have ended, had it started now, is stuck there.
                    let starting: Vec<usize> = (0..threads)
                        .filter(|&i| matches!(sites[i].get(), Hook::TopLevel | Hook::Init))
                        .collect();
                    if !starting.is_empty() {
                        let line = stuck_line(&script, &sites, &starting, DEADLINE);
                        init_error = Some(Error::Script(line));
                        stuck = starting;
                    }
                    check_at += STUCK_RECHECK;
                }
            }
        }
        let t0 = Instant::now() + Duration::from_millis(1);
        let mut script_error = None;
        if init_error.is_some() {
            let _ = stop_tx.send(true);
        }
        let _ = start_tx.send(Some(t0));
        // When (and why) the run ended, for how long a worker may take to stop.
        let mut ended = (Instant::now(), if interrupted { INTERRUPT } else { STOP });
        if !interrupted && init_error.is_none() {
            let deadline = tokio::time::Instant::from(t0 + config.duration);
            tokio::select! {
                _ = sig.recv() => { interrupted = true; ended = (Instant::now(), INTERRUPT); }
                _ = tokio::time::sleep_until(deadline) => ended = (t0 + end, DEADLINE),
                Some(e) = fail_rx.recv() => { script_error = Some(e); ended = (Instant::now(), STOP); }
            }
        }
        // Open loop: the workers drain what was planned before the deadline and end by
        // themselves; the run's elapsed time ends with the last of them. A worker stuck in its
        // script does not: the wait ends after the workers' own backstop.
        if !interrupted && init_error.is_none() && script_error.is_none() && config.rate.is_some() {
            let backstop = tokio::time::Instant::from(t0 + end + DRAIN_BACKSTOP + DRAIN_MARGIN);
            while finished.iter().any(|f| !f) {
                tokio::select! {
                    _ = sig.recv() => { interrupted = true; ended = (Instant::now(), INTERRUPT); break; }
                    Some(e) = fail_rx.recv() => { script_error = Some(e); ended = (Instant::now(), STOP); break; }
                    _ = tokio::time::sleep_until(backstop) => break,
                    Some(i) = ended_rx.recv() => finished[i] = true,
                }
            }
        }
        let stop_at = Instant::now().max(t0);
        let _ = stop_tx.send(true);
        // The workers stop within milliseconds. One stuck in its script (an endless loop in a
        // hook) cannot be stopped: one second after the run's end it is left behind, and the
        // run is reported without its measurements. A first Ctrl-C here (the run had ended by
        // itself) only marks the run interrupted; a second ends the process (`interrupt`).
        let limit = ended.0 + STUCK_AFTER;
        let mut told = false;
        let notice_at = tokio::time::Instant::now() + STOP_NOTICE_AFTER;
        let mut check_at = tokio::time::Instant::from(limit);
        loop {
            let pending: Vec<usize> = (0..threads)
                .filter(|&i| !stuck.contains(&i) && !finished[i])
                .collect();
            if pending.is_empty() {
                break;
            }
            if Instant::now() >= limit && pending.iter().all(|&i| sites[i].get() != Hook::None) {
                let line = stuck_line(&script, &sites, &pending, ended.1);
                eprintln!("loadgen: {line}; stopping");
                script_error.get_or_insert(line);
                stuck.extend(pending);
                break;
            }
            tokio::select! {
                _ = sig.recv() => interrupted = true,
                Some(i) = ended_rx.recv() => finished[i] = true,
                // Past the limit, a thread still running is checked again for being stuck in
                // a hook (it may be between hooks, finishing by itself).
                _ = tokio::time::sleep_until(check_at) => check_at += STUCK_RECHECK,
                _ = tokio::time::sleep_until(notice_at), if !told => {}
            }
            if !told && tokio::time::Instant::now() >= notice_at {
                told = true;
                eprintln!(
                    "loadgen: waiting for the worker threads to stop; press Ctrl-C {}to quit \
                     without a report",
                    if interrupted { "again " } else { "twice " }
                );
            }
        }
        (t0, stop_at, interrupted, init_error, script_error, stuck)
    });
    let elapsed = stop_at - t0;
    let started = SystemTime::now() - (Instant::now() - t0);

    // A stuck thread is left running (the process ends without it); its measurements are
    // lost with it.
    let mut stats = Stats::new();
    for (i, h) in handles.into_iter().enumerate() {
        if stuck.contains(&i) {
            continue;
        }
        let mut out = h
            .join()
            .map_err(|_| Error::Runtime("a worker thread panicked".into()))?;
        out.stats.finish(elapsed.as_nanos() as u64);
        stats += &out.stats;
        if let (Some(s), Some(g)) = (&session, out.globals) {
            s.finished(i, g);
        }
    }
    if let Some(e) = init_error {
        return Err(e);
    }
    Ok(Finished {
        summary: Summary {
            config: config.clone(),
            addr,
            started,
            elapsed,
            interrupted,
            script_error,
            stats,
        },
        session,
    })
}

/// How the run ended, as the line about a stuck script says it: at the deadline, ...
const DEADLINE: &str = "the run's end";
/// ... on a signal, ...
const INTERRUPT: &str = "the interrupt";
/// ... or stopped early (a script error, a failed start).
const STOP: &str = "the stop";

/// How long after the run's end (the deadline and the drain period, or the signal) a worker
/// still in its script's code is taken as stuck there.
const STUCK_AFTER: Duration = Duration::from_secs(1);

/// Past [`STUCK_AFTER`], how often a thread that has not ended is looked at again for being
/// stuck in a script hook.
const STUCK_RECHECK: Duration = Duration::from_millis(10);

/// How long after the workers' own end of the drain period the main thread stops waiting for
/// them to end by themselves.
const DRAIN_MARGIN: Duration = Duration::from_millis(100);

/// The line that says that `threads` are stuck in their script (in the hook the first is in).
fn stuck_line(script: &str, sites: &[Arc<Site>], threads: &[usize], when: &str) -> String {
    let hook = threads
        .first()
        .map(|&i| sites[i].get())
        .unwrap_or(Hook::None);
    let of = if threads.len() > 1 {
        format!(" in {} threads", threads.len())
    } else {
        String::new()
    };
    format!(
        "{script}: {} did not return{of} within {}s of {when}",
        hook.name(),
        STUCK_AFTER.as_secs()
    )
}

/// How long the main thread waits for the workers to stop before saying that it waits.
const STOP_NOTICE_AFTER: Duration = Duration::from_secs(2);

/// How long after the drain period a worker waits for connections that have not ended.
pub(super) const DRAIN_BACKSTOP: Duration = Duration::from_millis(50);

/// How long after the deadline requests planned before it are still sent and awaited (open
/// loop only): the request timeout (`--timeout`), the longest any request may take. Without
/// it, an overloaded server's slowest requests — those queued at the end — would be missing
/// from the percentiles (a coordinated omission at the end of the run). Against a server that
/// keeps up, the drain takes microseconds. Closed loop stops at the deadline, as wrk does.
pub fn drain_period(c: &Config) -> Duration {
    if c.rate.is_none() {
        return Duration::ZERO;
    }
    c.timeout
}
