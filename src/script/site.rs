//! Which part of its script a worker thread is running, so that the engine can tell, when a
//! thread does not stop, that it is stuck in the script and in which hook.
//!
//! Each worker thread has its own [`Site`], written only by that thread and read by the main
//! thread only when a thread has not stopped in time. It is written around the calls into
//! Lua (the top level, `init`, and the `request`/`response`/`delay` hooks) and nowhere else:
//! a run without those hooks never writes it per request. With them, the two relaxed stores
//! around each call are plain moves to a line only this thread writes, next to a Lua call that
//! costs a hundred times more.

use std::sync::atomic::{AtomicU8, Ordering};

/// A part of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Hook {
    /// Not in the script.
    None = 0,
    /// The script's top level (its file being loaded).
    TopLevel = 1,
    /// `init(args)`.
    Init = 2,
    /// `request()`.
    Request = 3,
    /// `response(status, headers, body)`.
    Response = 4,
    /// `delay()`.
    Delay = 5,
}

impl Hook {
    /// How a message names it.
    pub fn name(self) -> &'static str {
        match self {
            Hook::None => "the script",
            Hook::TopLevel => "the top level",
            Hook::Init => "init()",
            Hook::Request => "request()",
            Hook::Response => "response()",
            Hook::Delay => "delay()",
        }
    }
}

/// Where one worker thread is in its script.
#[derive(Debug, Default)]
pub struct Site(AtomicU8);

impl Site {
    /// Marks the thread as in `hook` until the returned guard is dropped.
    #[inline]
    pub fn enter(&self, hook: Hook) -> InHook<'_> {
        self.0.store(hook as u8, Ordering::Relaxed);
        InHook(self)
    }

    /// The part of the script the thread is in now.
    pub fn get(&self) -> Hook {
        match self.0.load(Ordering::Relaxed) {
            1 => Hook::TopLevel,
            2 => Hook::Init,
            3 => Hook::Request,
            4 => Hook::Response,
            5 => Hook::Delay,
            _ => Hook::None,
        }
    }
}

/// The thread is in a hook while this lives.
pub struct InHook<'a>(&'a Site);

impl Drop for InHook<'_> {
    #[inline]
    fn drop(&mut self) {
        (self.0).0.store(Hook::None as u8, Ordering::Relaxed);
    }
}
