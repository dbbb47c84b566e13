//! The Lua bridge (mlua + vendored LuaJIT): wrk's scripting API with wrk's semantics.
//!
//! As in wrk, there is one Lua state for the `setup()`/`done()` phases ([`session`], on the
//! main thread) and one per worker thread ([`worker`]), never shared and never locked. This
//! module builds a state: the `wrk` table (`scheme`, `host`, `port`, `method`, `path`,
//! `headers`, `body`), the functions written in Rust (`wrk.lookup`, `wrk.connect`,
//! `wrk.time_us`, `wrk.json`), the Lua prelude (`wrk.format`), then the user's script. It also
//! turns Lua errors into one-line `file:line: message` errors.

pub mod session;
pub mod site;
pub mod stats;
pub mod thread;
pub mod value;
pub mod worker;

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, SystemTime};

use mlua::{Lua, LuaSerdeExt, StdLib, Table, Value};

use crate::config::Config;
use crate::error::{Error, Result};

/// The embedded prelude (the Lua half of the `wrk` table).
const PRELUDE: &str = include_str!("prelude.lua");

/// How long `wrk.connect` waits for a connection.
const CONNECT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The first line of a Lua error (`file:line: message`), without mlua's traceback.
pub fn message(e: &mlua::Error) -> String {
    let text = match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) => m.clone(),
        // An error raised by a Rust function (`thread:set`, `wrk.json.decode`, ...): name the
        // script line that called it, from the traceback.
        mlua::Error::CallbackError { cause, traceback } => {
            let inner = message(cause);
            if inner.contains(".lua:") {
                return inner;
            }
            let at = traceback
                .lines()
                .map(str::trim)
                .find(|l| !l.starts_with('[') && !l.starts_with("stack") && l.contains(':'))
                .and_then(|l| {
                    let mut parts = l.splitn(3, ':');
                    let (file, line) = (parts.next()?, parts.next()?);
                    line.parse::<u32>().ok().map(|n| format!("{file}:{n}: "))
                })
                .unwrap_or_default();
            return format!("{at}{inner}");
        }
        mlua::Error::WithContext { cause, .. } => return message(cause),
        other => other.to_string(),
    };
    text.lines().next().unwrap_or("").to_string()
}

/// A Lua error as the crate's error (exit code 1).
pub fn script_error(e: mlua::Error) -> Error {
    Error::Script(message(&e))
}

/// Formats a socket address as scripts see it: `ip:port`, IPv6 in brackets.
pub fn addr_string(a: &SocketAddr) -> String {
    a.to_string()
}

/// Parses an address a script gives (`ip:port`, `[v6]:port`).
pub fn parse_addr(s: &str) -> mlua::Result<SocketAddr> {
    s.parse()
        .map_err(|_| mlua::Error::RuntimeError(format!("invalid address {s:?} (want ip:port)")))
}

/// `wrk.lookup(host, service)`: the addresses of `host` for `service` (a port number, `http`
/// or `https`), as `ip:port` strings.
fn lookup(lua: &Lua, (host, service): (String, String)) -> mlua::Result<Table> {
    let port: u16 = match service.as_str() {
        "http" => 80,
        "https" => 443,
        s => s.parse().map_err(|_| {
            mlua::Error::RuntimeError(format!("unable to resolve {host}:{service}: bad service"))
        })?,
    };
    let addrs = (host.as_str(), port).to_socket_addrs().map_err(|e| {
        mlua::Error::RuntimeError(format!("unable to resolve {host}:{service}: {e}"))
    })?;
    lua.create_sequence_from(addrs.map(|a| addr_string(&a)))
}

/// `wrk.connect(addr)`: whether a TCP connection to `addr` can be opened now.
fn connect(_: &Lua, addr: String) -> mlua::Result<bool> {
    let a = parse_addr(&addr)?;
    Ok(TcpStream::connect_timeout(&a, CONNECT_PROBE_TIMEOUT).is_ok())
}

/// `wrk.time_us()`: wall-clock time in microseconds (as wrk2).
fn time_us(_: &Lua, (): ()) -> mlua::Result<f64> {
    Ok(crate::clock::unix_us(SystemTime::now()) as f64)
}

/// `wrk.json`: `encode(value)` and `decode(text)` (JSON null decodes to nil).
fn json_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "encode",
        lua.create_function(|lua, v: Value| {
            let opts = mlua::DeserializeOptions::new()
                .deny_unsupported_types(false)
                .deny_recursive_tables(true);
            let j: serde_json::Value = lua.from_value_with(v, opts)?;
            Ok(j.to_string())
        })?,
    )?;
    t.set(
        "decode",
        lua.create_function(|lua, text: mlua::String| {
            let j: serde_json::Value = serde_json::from_slice(&text.as_bytes())
                .map_err(|e| mlua::Error::RuntimeError(format!("wrk.json.decode: {e}")))?;
            let opts = mlua::SerializeOptions::new()
                .serialize_none_to_null(false)
                .serialize_unit_to_null(false);
            lua.to_value_with(&j, opts)
        })?,
    )?;
    Ok(t)
}

/// A new Lua state with the `wrk` table filled from `config`, the prelude, and the script
/// loaded and run (its top level only: no hook is called).
pub fn new_state(config: &Config) -> Result<Lua> {
    let path = config
        .script
        .as_ref()
        .ok_or_else(|| Error::Usage("no script".into()))?;
    let src = std::fs::read(path)
        .map_err(|e| Error::Usage(format!("-s/--script: cannot read {}: {e}", path.display())))?;
    // SAFETY: wrk scripts expect all of LuaJIT, `ffi` included; the script is the user's own.
    let lua = unsafe { Lua::unsafe_new_with(StdLib::ALL, mlua::LuaOptions::default()) };
    fill_wrk(&lua, config).map_err(script_error)?;
    lua.load(PRELUDE)
        .set_name("=prelude")
        .exec()
        .map_err(script_error)?;
    lua.load(&src[..])
        .set_name(format!("@{}", path.display()))
        .exec()
        .map_err(script_error)?;
    Ok(lua)
}

fn fill_wrk(lua: &Lua, config: &Config) -> mlua::Result<()> {
    let wrk = lua.create_table()?;
    let t = &config.target;
    let headers = lua.create_table()?;
    for (k, v) in &config.headers {
        headers.set(k.as_str(), v.as_str())?;
    }
    wrk.set("scheme", t.scheme.as_str())?;
    wrk.set("host", t.host.as_str())?;
    wrk.set("port", t.port.to_string())?;
    wrk.set("method", config.method.as_str())?;
    wrk.set("path", t.path.as_str())?;
    wrk.set("headers", headers)?;
    if let Some(b) = &config.body {
        wrk.set("body", lua.create_string(b)?)?;
    }
    wrk.set("lookup", lua.create_function(lookup)?)?;
    wrk.set("connect", lua.create_function(connect)?)?;
    wrk.set("time_us", lua.create_function(time_us)?)?;
    wrk.set("json", json_table(lua)?)?;
    lua.globals().set("wrk", wrk)
}

/// Loads the script once in a throwaway state, so that a missing file, a syntax error or an
/// error at its top level is reported before anything is printed or connected.
pub fn check(config: &Config) -> Result<()> {
    if let Some(p) = &config.script {
        crate::interrupt::name_script(p);
    }
    let _p = crate::interrupt::enter(crate::interrupt::Phase::Load);
    new_state(config).map(drop)
}

/// Which optional global functions a script defines (probed once, after `init`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Probe {
    /// `setup(thread)`.
    pub setup: bool,
    /// `request()`.
    pub request: bool,
    /// `response(status, headers, body)`.
    pub response: bool,
    /// `delay()`.
    pub delay: bool,
    /// `done(summary, latency, requests)`.
    pub done: bool,
}

impl Probe {
    /// Looks at the globals of `lua`.
    pub fn of(lua: &Lua) -> Probe {
        let g = lua.globals();
        let has = |n: &str| matches!(g.get::<Value>(n), Ok(Value::Function(_)));
        Probe {
            setup: has("setup"),
            request: has("request"),
            response: has("response"),
            delay: has("delay"),
            done: has("done"),
        }
    }
}
