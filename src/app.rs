//! The commands behind the CLI: a load test, `serve`, `demo` and `find`. Each takes parsed arguments,
//! drives the library and writes the report; `main` only maps the result to an exit code.

use std::net::SocketAddr;

use crate::cli::{Cli, Command, DemoArgs, KnobArgs, ServeArgs};
use crate::config::{Config, Target};
use crate::error::{Error, Result};
use crate::results::{out, Outputs};
use crate::schedule::RateProfile;
use crate::server::{self, Knobs};
use crate::units::parse_count;

/// Runs the command line; returns the process exit code on success.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Some(Command::Serve(a)) => serve(a),
        Some(Command::Demo(a)) => demo(a),
        Some(Command::Find(a)) => {
            crate::interrupt::install();
            crate::find::run(&a.to_settings()?)
        }
        Some(Command::Merge(a)) => crate::results::merge(a),
        Some(Command::Report(a)) => crate::results::report(a),
        None => {
            // Signals get their own thread before anything that a signal should not cut in
            // half (the output files reserved below, a script's top level).
            crate::interrupt::install();
            let config = cli.run.to_config()?;
            let outputs = cli.run.output.validate(config.target_rate(), true)?;
            let mut live = cli.run.live_options()?;
            // Bound before the run: a port in use is a usage error, not a lost dashboard.
            if let Some(d) = cli.run.dashboard.settings()? {
                live.dashboard = Some(crate::dashboard::Dashboard::for_run(&d, &config)?);
            }
            let code = crate::results::load_test(&config, &outputs, &live);
            if let Some(d) = &live.dashboard {
                d.linger();
            }
            code
        }
    }
}

fn knobs(a: &KnobArgs) -> Result<Knobs> {
    let body = parse_count(&a.body_size).map_err(|e| Error::Usage(format!("--body-size: {e}")))?;
    if !(0.0..=1e9).contains(&body) {
        return Err(Error::Usage("--body-size: must be between 0 and 1G".into()));
    }
    if !(100..=999).contains(&a.status) {
        return Err(Error::Usage(format!(
            "--status: {} is not an HTTP status code",
            a.status
        )));
    }
    let stall = match (a.stall_at, a.stall_for) {
        (Some(at), Some(len)) => Some((at, len)),
        _ => None,
    };
    let slow = match (a.slow_share, a.slow_delay) {
        (Some(f), Some(d)) if f > 0.0 && f <= 1.0 => Some((f, d)),
        (Some(f), _) => {
            return Err(Error::Usage(format!(
                "--slow-share: must be in (0, 1], got {f}"
            )))
        }
        _ => None,
    };
    let capacity = match &a.capacity {
        Some(c) => {
            let v = parse_count(c).map_err(|e| Error::Usage(format!("--capacity: {e}")))?;
            if v <= 0.0 {
                return Err(Error::Usage("--capacity: must be greater than zero".into()));
            }
            Some(v)
        }
        None => None,
    };
    Ok(Knobs {
        stall_every: a.stall_every,
        slow,
        capacity,
        delay: a.delay.unwrap_or_default(),
        spin: a.spin.unwrap_or_default(),
        body_size: body as usize,
        status: a.status,
        stall,
        close_every: a.close_every,
        auth: a.auth,
        max_streams: a.max_streams,
        h2_window: a.h2_window.unwrap_or(crate::server::H2_WINDOW),
        reset_every: a.reset_every,
        http1_only: a.http1_only,
    })
}

fn serve(a: ServeArgs) -> Result<i32> {
    let addr: SocketAddr = a
        .listen
        .parse()
        .map_err(|_| Error::Usage(format!("--listen: invalid address {:?}", a.listen)))?;
    let k = knobs(&a.knobs)?;
    let tls = if a.knobs.tls {
        let mut ss = server::self_signed()?;
        if a.knobs.http1_only {
            ss = ss.http1_only();
        }
        if let Some(p) = &a.knobs.cert_out {
            crate::fsutil::write_atomic(p, ss.cert_pem.as_bytes())?;
        }
        Some(ss.acceptor)
    } else {
        None
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = a.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.enable_all().build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Runtime(format!("cannot listen on {addr}: {e}")))?;
        let bound = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        out(|w| writeln!(w, "listening on {scheme}://{bound}/"))?;
        let service = server::serve(listener, k, tls, shutdown_signal()).await;
        out(|w| writeln!(w, "{}", service_summary(&service)))?;
        Ok(0)
    })
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The line `serve` prints when it stops: how many normal responses it served and their
/// service times (ns histogram) as delivered (see `server`).
fn service_summary(h: &hdrhistogram::Histogram<u64>) -> String {
    if h.is_empty() {
        return "served 0 responses".into();
    }
    let at =
        |q: f64| crate::units::format_time_us(crate::hdr::value_at_quantile(h, q) as f64 / 1e3);
    format!(
        "served {} responses; service time mean {}, p50 {}, p90 {}, p99 {}, p99.9 {}, max {}",
        h.len(),
        crate::units::format_time_us(h.mean() / 1e3),
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
        crate::units::format_time_us(h.max() as f64 / 1e3)
    )
}

/// `loadgen demo`: a load test, through the same path as any other (report, verdict, exit
/// code), against the built-in server started here; around it, the equivalent command line
/// and, with a stall, what to read in the report.
fn demo(a: DemoArgs) -> Result<i32> {
    crate::interrupt::install();
    let (duration, stall, rate) = (a.duration, a.stall, a.rate);
    let (threads, connections) = (a.threads, a.connections);
    if rate < threads as f64 || connections < threads {
        return Err(Error::Usage(
            "demo: need rate >= threads and connections >= threads".into(),
        ));
    }
    // The server gets its own runtime on a background thread, bound to a free loopback port.
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let knobs = Knobs {
        stall: (!stall.is_zero()).then(|| (duration.mul_f64(0.4), stall)),
        ..Knobs::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
            server::serve(listener, knobs, None, async {
                let _ = stop_rx.await;
            })
            .await;
        });
    });
    out(|w| {
        writeln!(
            w,
            "demo: built-in server on http://{addr}/{}",
            if stall.is_zero() {
                String::new()
            } else {
                format!(
                    ", stalling every response for {} at {:.1}s",
                    crate::units::format_duration(stall),
                    duration.mul_f64(0.4).as_secs_f64()
                )
            }
        )?;
        writeln!(
            w,
            "demo: equivalent to `loadgen -t{threads} -c{connections} -d{} -R{rate} -U http://{addr}/`\n",
            crate::units::format_duration(duration)
        )
    })?;
    let mut config = Config::new(Target::parse(&format!("http://{addr}/"))?);
    config.threads = threads;
    config.connections = connections;
    config.duration = duration;
    config.rate = Some(RateProfile::Constant(rate));
    config.latency = true;
    config.u_latency = true;
    let verdict = crate::results::load_test(&config, &Outputs::default(), &Default::default());
    let _ = stop_tx.send(());
    let _ = server.join();
    let code = verdict?;
    if !stall.is_zero() {
        out(|w| {
            writeln!(
                w,
                "\ndemo: the server stalled for {:.0}% of the run. The corrected (\"Recorded\") percentiles count every request the plan placed inside the stall; the uncorrected ones, which a closed-loop tool reports, hide it.",
                100.0 * stall.as_secs_f64() / duration.as_secs_f64()
            )
        })?;
    }
    Ok(code)
}
