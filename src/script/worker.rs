//! A worker thread's own Lua state and the per-connection hooks that call into it.
//!
//! [`ThreadScript::new`] builds the state, applies what `setup()` decided (`thread:set` values,
//! the address), calls `init(args)`, builds the static request (`wrk.request()`), and probes
//! once which hooks exist. [`LuaHooks`] implements [`Hooks`] for one connection, and only does
//! Lua work the script asked for: without `request()` the prebuilt request is sent, without
//! `response()` no header or body is copied, without `delay()` nothing is called.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use mlua::{Function, Lua, Table, Value};

use super::site::{Hook, Site};
use super::thread::{StopFlag, ThreadSeed, WorkerThread};
use super::value::{self, Portable};
use super::{message, new_state, script_error, Probe};
use crate::config::Config;
use crate::conn::hooks::{Hooks, Stop};
use crate::conn::http1::ResponseSink;
use crate::error::Result;
use crate::request::Request;

/// One worker thread's Lua state and hooks.
pub struct ThreadScript {
    lua: Lua,
    wrk: Table,
    request_fn: Option<Function>,
    response_fn: Option<Function>,
    delay_fn: Option<Function>,
    stop: Rc<StopFlag>,
    failed: RefCell<bool>,
    on_failure: Box<dyn Fn(String)>,
    /// Which hook the thread is in (for the engine's stuck-script check).
    site: Arc<Site>,
    /// The request built from the `wrk` table after `init` (what `wrk.request()` returns).
    pub static_request: Request,
    /// Where this thread's connections go (`thread.addr`, possibly chosen in `setup`).
    pub addr: SocketAddr,
}

/// Counts the HTTP requests in `bytes` (several back to back is wrk's pipelining idiom) and
/// whether the first is HEAD. Bytes that do not parse as a request count as one request.
pub fn count_requests(mut bytes: &[u8]) -> (usize, bool) {
    let (mut n, mut head) = (0, false);
    while !bytes.is_empty() {
        let mut hs = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Request::new(&mut hs);
        let Ok(httparse::Status::Complete(len)) = r.parse(bytes) else {
            break;
        };
        if n == 0 {
            head = r.method == Some("HEAD");
        }
        let body = r
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| {
                std::str::from_utf8(h.value)
                    .ok()?
                    .trim()
                    .parse::<usize>()
                    .ok()
            })
            .unwrap_or(0);
        n += 1;
        bytes = &bytes[(len + body).min(bytes.len())..];
    }
    (n.max(1), head)
}

impl ThreadScript {
    /// Builds the thread's state from `seed` and runs `init(args)`. `on_failure` is told the
    /// message of the first run-time script error (the engine then stops the whole run);
    /// `site` tells the engine which hook the thread is in.
    pub fn new(
        config: &Config,
        seed: &ThreadSeed,
        on_failure: Box<dyn Fn(String)>,
        site: Arc<Site>,
    ) -> Result<Rc<ThreadScript>> {
        let lua = {
            let _in = site.enter(Hook::TopLevel);
            new_state(config)?
        };
        let stop = Rc::new(StopFlag::default());
        if seed.stopped {
            stop.stop();
        }
        let (wrk, static_request) = {
            let _in = site.enter(Hook::Init);
            Self::init(&lua, config, seed, &stop).map_err(script_error)?
        };
        let probe = Probe::of(&lua);
        let g = lua.globals();
        let get = |on: bool, name: &str| -> Option<Function> {
            if on {
                g.get::<Function>(name).ok()
            } else {
                None
            }
        };
        let request_fn = match get(probe.request, "request") {
            Some(f) => Some(Self::unchanged_as_true(&lua, f).map_err(script_error)?),
            None => None,
        };
        Ok(Rc::new(ThreadScript {
            request_fn,
            response_fn: get(probe.response, "response"),
            delay_fn: get(probe.delay, "delay"),
            lua: lua.clone(),
            wrk,
            stop,
            failed: RefCell::new(false),
            on_failure,
            site,
            static_request,
            addr: seed.addr,
        }))
    }

    /// Wraps the script's `request` in a function of the connection's `wrk.connection` table
    /// that returns `true` instead of the string when it is the one that connection's last
    /// call returned. A prebuilt request (`return wrk.request()`, or any string kept by the
    /// script) then crosses into Rust as a boolean: mlua hands every string (a reference) to
    /// Rust in a freshly allocated handle, which would be one allocation per request. Lua
    /// compares strings by identity first, so the test costs next to nothing.
    fn unchanged_as_true(lua: &Lua, request: Function) -> mlua::Result<Function> {
        lua.load(
            "local request = ...\n\
             local last = setmetatable({}, { __mode = 'k' })\n\
             return function(conn)\n\
               local r = request()\n\
               if type(r) == 'string' then\n\
                 if last[conn] == r then return true end\n\
                 last[conn] = r\n\
               end\n\
               return r\n\
             end",
        )
        .set_name("=wrk.request_hook")
        .call(request)
    }

    fn init(
        lua: &Lua,
        config: &Config,
        seed: &ThreadSeed,
        stop: &Rc<StopFlag>,
    ) -> mlua::Result<(Table, Request)> {
        let g = lua.globals();
        let wrk: Table = g.get("wrk")?;
        wrk.set(
            "thread",
            WorkerThread {
                id: seed.id,
                addr: seed.addr,
                stop: stop.clone(),
            },
        )?;
        for (k, v) in &seed.vars {
            g.set(k.as_str(), v.to_lua(lua)?)?;
        }
        if let Ok(Value::Function(init)) = g.get::<Value>("init") {
            let args = lua.create_table()?;
            for (i, a) in config.script_args.iter().enumerate() {
                args.raw_set(i, a.as_str())?;
            }
            init.call::<()>(args)?;
        }
        // As wrk: after init, the request the wrk table describes is built once and
        // `wrk.request()` returns it.
        lua.load("local req = wrk.format(); wrk.request = function() return req end")
            .set_name("=wrk.init")
            .exec()?;
        let req: mlua::String = wrk.get::<Function>("request")?.call(())?;
        let bytes = req.as_bytes().to_vec();
        let (responses, head) = count_requests(&bytes);
        Ok((
            wrk,
            Request {
                idempotent: crate::request::idempotent(&bytes),
                bytes,
                responses,
                head,
            },
        ))
    }

    /// Whether the script has `request()`, `response()` or `delay()` (else the connections
    /// run the plain path).
    pub fn has_hooks(&self) -> bool {
        self.request_fn.is_some() || self.response_fn.is_some() || self.delay_fn.is_some()
    }

    /// Whether the script holds the rate down on purpose: it has `delay()`, or it stopped
    /// the thread (not a script error, which stops the thread too).
    pub fn limits_rate(&self) -> bool {
        self.delay_fn.is_some() || (self.stop.is_set() && !*self.failed.borrow())
    }

    /// The thread's stop signal.
    pub fn stop_flag(&self) -> &Rc<StopFlag> {
        &self.stop
    }

    /// The script's globals after the run (what `thread:get` reads in `done`).
    pub fn globals(&self) -> Vec<(String, Portable)> {
        value::globals(&self.lua)
    }

    /// Hooks for the connection numbered `id` (from 1, over the whole run).
    pub fn connection(self: &Rc<Self>, id: usize) -> Result<LuaHooks> {
        let conn = self.lua.create_table().map_err(script_error)?;
        conn.set("id", id).map_err(script_error)?;
        Ok(LuaHooks {
            sink: LuaSink {
                script: self.clone(),
                wants: self.response_fn.is_some(),
                status: 0,
                headers: None,
                body: Vec::new(),
            },
            script: self.clone(),
            conn,
            req: Request {
                bytes: Vec::new(),
                responses: 1,
                head: false,
                idempotent: false,
            },
        })
    }

    /// A run-time error in a hook: the first one is reported, and the thread stops.
    fn fail(&self, hook: &str, e: mlua::Error) -> Stop {
        if !self.failed.replace(true) {
            let m = message(&e);
            (self.on_failure)(if m.contains(".lua:") {
                m
            } else {
                format!("{hook}(): {m}")
            });
        }
        self.stop.stop();
        Stop
    }

    /// Makes `wrk.connection` this connection's table before a hook runs.
    #[inline]
    fn enter(&self, conn: &Table) -> Result<(), Stop> {
        self.wrk
            .raw_set("connection", conn)
            .map_err(|e| self.fail("wrk.connection", e))
    }
}

/// The response sink of a script with `response()`: the head becomes a Lua table as it is
/// parsed; body bytes are collected into a buffer reused from response to response.
pub struct LuaSink {
    script: Rc<ThreadScript>,
    wants: bool,
    status: u16,
    headers: Option<Table>,
    body: Vec<u8>,
}

impl ResponseSink for LuaSink {
    #[inline]
    fn wants(&self) -> bool {
        self.wants
    }

    fn head(&mut self, status: u16, headers: &[httparse::Header<'_>]) {
        self.status = status;
        self.body.clear();
        let lua = &self.script.lua;
        self.headers = lua
            .create_table_with_capacity(0, headers.len())
            .and_then(|t| {
                // Names and UTF-8 values go onto Lua's stack as `&str`, which mlua pushes
                // directly; a string made with `create_string` would be handed to Rust in a
                // freshly allocated handle first (two allocations per header).
                for h in headers {
                    match std::str::from_utf8(h.value) {
                        Ok(v) => t.raw_set(h.name, v)?,
                        Err(_) => t.raw_set(h.name, lua.create_string(h.value)?)?,
                    }
                }
                Ok(t)
            })
            .ok();
    }

    fn body(&mut self, bytes: &[u8]) {
        self.body.extend_from_slice(bytes);
    }
}

/// One connection's hooks into its thread's script.
pub struct LuaHooks {
    script: Rc<ThreadScript>,
    /// `wrk.connection` while this connection's hooks run: `{ id = n }`, plus whatever the
    /// script stores there (it lives as long as the connection slot, across reconnects).
    conn: Table,
    /// The last request `request()` returned, as bytes to send (kept while it returns the
    /// same string: see [`ThreadScript::unchanged_as_true`]).
    req: Request,
    sink: LuaSink,
}

/// The longest think time `delay()` can ask for, ms (about 31 years).
const MAX_DELAY_MS: f64 = 1e12;

impl Hooks for LuaHooks {
    type Sink = LuaSink;

    fn request(&mut self) -> Result<Option<&Request>, Stop> {
        let s = &*self.script;
        let Some(f) = &s.request_fn else {
            return Ok(None);
        };
        s.enter(&self.conn)?;
        let _in = s.site.enter(Hook::Request);
        let r = match f.call::<Value>(&self.conn) {
            // The same string as this connection's last request: nothing to copy or parse.
            Ok(Value::Boolean(true)) if !self.req.bytes.is_empty() => {
                return Ok(Some(&self.req));
            }
            Ok(Value::String(r)) if !r.as_bytes().is_empty() => r,
            // Nothing to send would wait for a response that never comes.
            Ok(Value::String(_)) => {
                let e = mlua::Error::RuntimeError("request() returned an empty string".into());
                return Err(s.fail("request", e));
            }
            Ok(other) => {
                let e = mlua::Error::RuntimeError(format!(
                    "request() returned {} instead of a string",
                    other.type_name()
                ));
                return Err(s.fail("request", e));
            }
            Err(e) => return Err(s.fail("request", e)),
        };
        let b = r.as_bytes();
        self.req.bytes.clear();
        self.req.bytes.extend_from_slice(&b);
        (self.req.responses, self.req.head) = count_requests(&b);
        self.req.idempotent = crate::request::idempotent(&b);
        Ok(Some(&self.req))
    }

    fn last_request(&self) -> Option<&Request> {
        (self.script.request_fn.is_some() && !self.req.bytes.is_empty()).then_some(&self.req)
    }

    fn delay(&mut self) -> Result<Option<Duration>, Stop> {
        let s = &*self.script;
        let Some(f) = &s.delay_fn else {
            return Ok(None);
        };
        s.enter(&self.conn)?;
        let _in = s.site.enter(Hook::Delay);
        match f.call::<Option<f64>>(()) {
            // nil, 0, negative and NaN mean no think time: the next request keeps to the plan
            // (a zero delay would instead time it from the last response, uncorrected). Past
            // `MAX_DELAY_MS` (beyond any run) the connection simply sends nothing more.
            Ok(ms) => match ms {
                Some(ms) if ms > 0.0 => {
                    Ok(Some(Duration::from_secs_f64(ms.min(MAX_DELAY_MS) / 1000.0)))
                }
                _ => Ok(None),
            },
            Err(e) => Err(s.fail("delay", e)),
        }
    }

    #[inline]
    fn sink(&mut self) -> &mut LuaSink {
        &mut self.sink
    }

    fn response(&mut self) -> Result<(), Stop> {
        let s = &*self.script;
        let Some(f) = &s.response_fn else {
            return Ok(());
        };
        s.enter(&self.conn)?;
        let lua = &s.lua;
        let headers = match self.sink.headers.take() {
            Some(t) => t,
            None => lua.create_table().map_err(|e| s.fail("response", e))?,
        };
        let body = lua
            .create_string(&self.sink.body)
            .map_err(|e| s.fail("response", e))?;
        self.sink.body.clear();
        let _in = s.site.enter(Hook::Response);
        f.call::<()>((self.sink.status, headers, body))
            .map_err(|e| s.fail("response", e))
    }

    #[inline]
    fn stopped(&self) -> bool {
        self.script.stop.is_set()
    }
}

#[cfg(test)]
mod tests {
    use super::count_requests;

    #[test]
    fn counts_pipelined_requests() {
        let one = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(count_requests(one), (1, false));
        let mut three = one.repeat(2);
        three.extend_from_slice(b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
        assert_eq!(count_requests(&three), (3, false));
        assert_eq!(count_requests(b"HEAD / HTTP/1.1\r\n\r\n"), (1, true));
        assert_eq!(count_requests(b"garbage"), (1, false));
    }
}
