//! Operating-system primitives the engine needs besides its sockets and timers: the
//! open-files limit (raised, and checked against what a run needs) and the calling thread's
//! CPU time (the generator's own load, for the report's "who was the limit" verdict). The
//! hot path's own primitives stay beside the code that uses them and says why they are
//! hand-written: the timerfd pacer (`pacer`), kernel receive timestamps (`conn::rxtime`).

use crate::config::Config;
use crate::error::{Error, Result};

/// Raises the soft open-files limit to the hard limit so that `-c 10000` can work, and fails
/// with one line when even that is too few for the connections asked for. [`run_scripted`](crate::engine::run_scripted)
/// checks it first; the CLI checks it before it prints the report's header, too.
pub fn ensure_nofile_limit(config: &Config) -> Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Ok(());
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    let need = files_needed(config);
    if lim.rlim_cur < need {
        return Err(Error::Runtime(format!(
            "-c {} needs about {need} open files, but this process may open only {}; \
             raise the limit (ulimit -n {need}) or lower -c",
            config.connections, lim.rlim_cur
        )));
    }
    Ok(())
}

/// File descriptors a run uses at most: one socket per connection, five per worker thread
/// (its runtime's epoll and waker, its pacing timer among them) and 15 besides (the standard
/// streams, the main thread's runtime and signal pipe, and the signal thread's runtime), as
/// counted in /proc/PID/fd during runs with one and two threads, with and without a script;
/// plus one for an output file.
pub fn files_needed(config: &Config) -> u64 {
    config.connections as u64 + 5 * config.threads as u64 + 16
}

/// CPU time the calling thread has used so far, ns (CLOCK_THREAD_CPUTIME_ID).
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
