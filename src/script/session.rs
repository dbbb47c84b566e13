//! The setup/done Lua state, on the main thread, as in wrk: after the target is resolved and
//! before any thread starts, `setup(thread)` is called once per worker thread (it may
//! `thread:set` values, choose `thread.addr`, or `thread:stop()` it); after the run and the
//! report, `done(summary, latency, requests)` gets the merged results, and `thread:get`
//! reads each thread's globals as they were when it finished.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use mlua::{Function, Lua};

use super::stats::StatsObject;
use super::thread::{SetupThread, ThreadSeed};
use super::value::Portable;
use super::{new_state, script_error, Probe};
use crate::config::Config;
use crate::error::Result;
use crate::interrupt::{self, Phase};
use crate::result::Summary;

/// The setup/done state and the threads `setup` saw.
pub struct Session {
    lua: Lua,
    probe: Probe,
    threads: Vec<SetupThread>,
}

impl Session {
    /// Loads the script and runs `setup(thread)` for each of `threads` threads, whose
    /// connections go to `addr` unless the script says otherwise.
    pub fn new(config: &Config, addr: SocketAddr, threads: usize) -> Result<Session> {
        if let Some(p) = &config.script {
            interrupt::name_script(p);
        }
        let lua = {
            let _p = interrupt::enter(Phase::Load);
            new_state(config)?
        };
        let _p = interrupt::enter(Phase::Setup);
        let probe = Probe::of(&lua);
        let setup: Option<Function> = if probe.setup {
            lua.globals().get("setup").ok()
        } else {
            None
        };
        let mut out = Vec::with_capacity(threads);
        for i in 0..threads {
            let t = SetupThread(Rc::new(RefCell::new(ThreadSeed {
                id: i + 1,
                addr,
                vars: Vec::new(),
                stopped: false,
            })));
            if let Some(f) = &setup {
                let ud = lua.create_userdata(t.clone()).map_err(script_error)?;
                f.call::<()>(ud).map_err(script_error)?;
            }
            out.push(t);
        }
        Ok(Session {
            lua,
            probe,
            threads: out,
        })
    }

    /// What each worker thread starts from.
    pub fn seeds(&self) -> Vec<ThreadSeed> {
        self.threads.iter().map(|t| t.0.borrow().clone()).collect()
    }

    /// Records thread `i`'s globals at the end of the run, for `thread:get` in `done`.
    pub fn finished(&self, i: usize, globals: Vec<(String, Portable)>) {
        if let Some(t) = self.threads.get(i) {
            t.0.borrow_mut().vars = globals;
        }
    }

    /// Calls `done(summary, latency, requests)` if the script has it.
    pub fn done(&self, s: &Summary) -> Result<()> {
        if !self.probe.done {
            return Ok(());
        }
        let _p = interrupt::enter(Phase::Done);
        let lua = &self.lua;
        let run = || -> mlua::Result<()> {
            let f: Function = lua.globals().get("done")?;
            let st = &s.stats;
            let errors = lua.create_table()?;
            errors.set("connect", st.errors.connect)?;
            errors.set("read", st.errors.read)?;
            errors.set("write", st.errors.write)?;
            errors.set("status", st.errors.status)?;
            errors.set("timeout", st.errors.timeout)?;
            let summary = lua.create_table()?;
            summary.set("duration", s.elapsed.as_micros() as f64)?;
            summary.set("requests", st.requests)?;
            summary.set("bytes", st.bytes)?;
            summary.set("errors", errors)?;
            let latency = lua.create_userdata(StatsObject(st.corrected.clone()))?;
            let requests = lua.create_userdata(StatsObject(st.req_per_sec.clone()))?;
            f.call::<()>((summary, latency, requests))
        };
        run().map_err(script_error)
    }
}
