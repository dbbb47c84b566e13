//! The `thread` userdata of wrk's API, in its two forms: the one `setup(thread)` and `done()`
//! see in the setup/done state ([`SetupThread`], backed by a [`ThreadSeed`] that crosses to the
//! worker), and `wrk.thread` inside a worker's own state ([`WorkerThread`]).

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;

use mlua::{Lua, UserData, UserDataFields, UserDataMethods, Value};

use super::value::Portable;
use super::{addr_string, parse_addr};

/// What the setup phase decides for one worker thread, handed to it before it starts; after
/// the run, `vars` holds the thread's globals instead.
#[derive(Debug, Clone)]
pub struct ThreadSeed {
    /// The thread's index, from 1 (`thread.id`, a loadgen addition).
    pub id: usize,
    /// Where the thread's connections go (`thread.addr`).
    pub addr: SocketAddr,
    /// Globals set with `thread:set` (before the run) or the thread's globals (after it).
    pub vars: Vec<(String, Portable)>,
    /// `thread:stop()` was called in `setup`: the thread sends nothing.
    pub stopped: bool,
}

impl ThreadSeed {
    fn get(&self, name: &str) -> Option<&Portable> {
        self.vars
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// `thread` as `setup()` and `done()` see it.
#[derive(Clone)]
pub struct SetupThread(pub Rc<RefCell<ThreadSeed>>);

impl UserData for SetupThread {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("id", |_, t| Ok(t.0.borrow().id));
        f.add_field_method_get("addr", |_, t| Ok(addr_string(&t.0.borrow().addr)));
        f.add_field_method_set("addr", |_, t, a: String| {
            t.0.borrow_mut().addr = parse_addr(&a)?;
            Ok(())
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("get", |lua, t, name: String| {
            match t.0.borrow().get(&name) {
                Some(v) => v.to_lua(lua),
                None => Ok(Value::Nil),
            }
        });
        m.add_method("set", |_, t, (name, v): (String, Value)| {
            let p = Portable::from_lua(&v).ok_or_else(|| {
                mlua::Error::RuntimeError(format!(
                    "thread:set({name:?}): only nil, booleans, numbers, strings and tables \
                     of those can be passed to a thread"
                ))
            })?;
            let mut seed = t.0.borrow_mut();
            seed.vars.retain(|(k, _)| *k != name);
            seed.vars.push((name, p));
            Ok(())
        });
        m.add_method("stop", |_, t, ()| {
            t.0.borrow_mut().stopped = true;
            Ok(())
        });
    }
}

/// A worker thread's stop signal: set by `thread:stop()` or a script error, awaited by the
/// engine's worker so it can end the thread's connections at once.
#[derive(Default)]
pub struct StopFlag {
    set: Cell<bool>,
    notify: tokio::sync::Notify,
}

impl StopFlag {
    /// Stops the thread.
    pub fn stop(&self) {
        self.set.set(true);
        self.notify.notify_one();
    }

    /// Whether the thread was stopped.
    #[inline]
    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// Waits until the thread is stopped.
    pub async fn wait(&self) {
        while !self.set.get() {
            self.notify.notified().await;
        }
    }
}

/// `wrk.thread` inside a worker's own state: `get`/`set` read and write that state's
/// globals; `stop()` stops every connection of the thread after its current request.
pub struct WorkerThread {
    /// The thread's index, from 1.
    pub id: usize,
    /// Where its connections go.
    pub addr: SocketAddr,
    /// Set by `stop()`.
    pub stop: Rc<StopFlag>,
}

impl UserData for WorkerThread {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("id", |_, t| Ok(t.id));
        f.add_field_method_get("addr", |_, t| Ok(addr_string(&t.addr)));
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("get", |lua: &Lua, _, name: String| {
            lua.globals().get::<Value>(name)
        });
        m.add_method("set", |lua: &Lua, _, (name, v): (String, Value)| {
            lua.globals().set(name, v)
        });
        m.add_method("stop", |_, t, ()| {
            t.stop.stop();
            Ok(())
        });
    }
}
