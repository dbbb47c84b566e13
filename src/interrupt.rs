//! SIGINT (Ctrl-C) and SIGTERM during a load test, handled on a thread of their own, so that
//! they work whatever the other threads do — a script stuck in an endless loop included
//! (LuaJIT's compiled loops call no debug hook, so the Lua state itself cannot be asked to
//! stop).
//!
//! What a signal does depends on the main thread's [`Phase`]:
//! - during the run and its report ([`Phase::Run`]) the first one stops the run: it is
//!   passed to the engine ([`subscribe`]), which reports what was measured; any further one
//!   ends the process at once, without a report;
//! - before the run (loading the script, `setup()`) and in `done()`, when there is nothing to
//!   stop and report, the first one ends the process at once.
//!
//! Ending the process at once prints one line and exits with 128 + the signal's number (130
//! for SIGINT, 143 for SIGTERM). An output file being written then is whole or untouched
//! (`fsutil` writes a temporary file and renames it).

use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU8, Ordering};
use std::sync::OnceLock;

use tokio::sync::watch;

/// What the main thread is doing, for what a signal does then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Before the run, without a script running (resolving, probing the target).
    Start = 0,
    /// Loading the script (its top level runs).
    Load = 1,
    /// The script's `setup()`.
    Setup = 2,
    /// The run, the wait for its threads, and its report: a first signal stops the run.
    Run = 3,
    /// The script's `done()`, after the report.
    Done = 4,
}

/// The main thread's phase (a [`Phase`]); written at phase changes only.
static PHASE: AtomicU8 = AtomicU8::new(Phase::Start as u8);

/// Signals received so far.
static COUNT: AtomicU32 = AtomicU32::new(0);

/// The number of the first signal received (0: none yet).
static FIRST: AtomicI32 = AtomicI32::new(0);

/// The script's file as given, for the one-line messages.
static SCRIPT: OnceLock<String> = OnceLock::new();

/// The number of signals passed to the engine (the first, during the run).
static FORWARD: OnceLock<watch::Sender<u32>> = OnceLock::new();

/// Starts the signal thread, once per process; returns when the handlers are in place.
/// Without it (it could not start), the signals keep their default action.
pub fn install() {
    FORWARD.get_or_init(|| {
        let (tx, _) = watch::channel(0);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let started = std::thread::Builder::new()
            .name("loadgen-signals".into())
            .spawn(move || listen(ready_tx));
        if started.is_ok() {
            let _ = ready_rx.recv();
        }
        tx
    });
}

/// The signal thread: its own runtime, which does nothing but wait for the two signals.
fn listen(ready: std::sync::mpsc::Sender<()>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    else {
        let _ = ready.send(());
        return;
    };
    rt.block_on(async move {
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            let _ = ready.send(());
            return;
        };
        let _ = ready.send(());
        loop {
            let signo = tokio::select! {
                _ = int.recv() => libc::SIGINT,
                _ = term.recv() => libc::SIGTERM,
            };
            received(signo);
        }
    });
}

/// What one signal does (see the module's documentation).
fn received(signo: i32) {
    let _ = FIRST.compare_exchange(0, signo, Ordering::SeqCst, Ordering::SeqCst);
    let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    let script = SCRIPT.get().map(String::as_str).unwrap_or("the script");
    let line = match phase() {
        Phase::Run if n == 1 => {
            if let Some(f) = FORWARD.get() {
                f.send_replace(n);
            }
            return;
        }
        Phase::Run => "interrupted again; quitting without a report".to_string(),
        Phase::Start => "interrupted before the run started; quitting".to_string(),
        Phase::Load => format!("interrupted while loading {script}; quitting"),
        Phase::Setup => format!("interrupted in setup() of {script}; quitting"),
        Phase::Done => format!("interrupted in done() of {script}; quitting"),
    };
    quit(&line, 128 + signo);
}

/// Ends the process at once with one line on stderr.
fn quit(line: &str, code: i32) -> ! {
    eprintln!("loadgen: {line}");
    std::process::exit(code)
}

/// The exit code of a run that the first signal stopped and that then reported what it
/// measured: 128 + that signal's number, as a shell reports a process the signal ended (130
/// for SIGINT, 143 for SIGTERM); 130 when no signal came to this process (a saved result of an
/// interrupted run, re-checked by `loadgen report`).
pub fn exit_code() -> i32 {
    match FIRST.load(Ordering::SeqCst) {
        0 => 128 + libc::SIGINT,
        s => 128 + s,
    }
}

/// The main thread's phase now.
pub fn phase() -> Phase {
    match PHASE.load(Ordering::SeqCst) {
        1 => Phase::Load,
        2 => Phase::Setup,
        3 => Phase::Run,
        4 => Phase::Done,
        _ => Phase::Start,
    }
}

/// Sets the main thread's phase.
pub fn set_phase(p: Phase) {
    PHASE.store(p as u8, Ordering::SeqCst);
}

/// Sets the main thread's phase until the returned guard is dropped, which restores the one
/// before.
pub fn enter(p: Phase) -> PhaseGuard {
    let before = phase();
    set_phase(p);
    PhaseGuard(before)
}

/// Restores the phase before [`enter`] when dropped.
pub struct PhaseGuard(Phase);

impl Drop for PhaseGuard {
    fn drop(&mut self) {
        set_phase(self.0);
    }
}

/// Names the script in the messages (the first call wins).
pub fn name_script(path: &Path) {
    let _ = SCRIPT.set(path.display().to_string());
}

/// Enters [`Phase::Run`] and returns what tells the engine of the signal that stops it. A
/// signal that was passed on before (between the runs of `find`, which stays in
/// [`Phase::Run`]) stops the new run at once.
pub fn subscribe() -> Interrupts {
    install();
    let rx = FORWARD.get().map(|f| {
        let mut rx = f.subscribe();
        if *rx.borrow() > 0 {
            rx.mark_changed();
        }
        set_phase(Phase::Run);
        rx
    });
    Interrupts { rx }
}

/// Whether a signal has been received (and, in [`Phase::Run`], passed on to stop the run).
pub fn signalled() -> bool {
    COUNT.load(Ordering::SeqCst) > 0
}

/// The engine's end of the signal thread: the signal that stops the run.
pub struct Interrupts {
    rx: Option<watch::Receiver<u32>>,
}

impl Interrupts {
    /// Waits for the signal that stops the run. Cancel-safe; it completes once (later signals
    /// end the process instead).
    pub async fn recv(&mut self) {
        match &mut self.rx {
            Some(rx) => {
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                // Seen: the next call waits for a change that never comes.
            }
            None => std::future::pending().await,
        }
    }
}
