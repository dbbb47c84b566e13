//! Lua values that can cross from one Lua state to another (and from one OS thread to another):
//! nil, booleans, numbers, strings and tables of those — what wrk allows through
//! `thread:set`/`thread:get`. Functions, userdata and coroutines cannot cross.

use mlua::{Lua, Value};

/// How deep nested tables are copied (deeper levels, and cycles, are cut off).
const MAX_DEPTH: usize = 16;

/// A state-independent copy of a Lua value.
#[derive(Debug, Clone, PartialEq)]
pub enum Portable {
    /// `nil`.
    Nil,
    /// A boolean.
    Bool(bool),
    /// A number (LuaJIT numbers are doubles).
    Num(f64),
    /// A string (Lua strings are bytes).
    Str(Vec<u8>),
    /// A table's portable entries.
    Table(Vec<(Portable, Portable)>),
}

impl Portable {
    /// Copies `v`; `None` when it (or, for a table, every entry) cannot cross.
    pub fn from_lua(v: &Value) -> Option<Portable> {
        Self::copy(v, 0)
    }

    fn copy(v: &Value, depth: usize) -> Option<Portable> {
        Some(match v {
            Value::Nil => Portable::Nil,
            Value::Boolean(b) => Portable::Bool(*b),
            Value::Integer(i) => Portable::Num(*i as f64),
            Value::Number(n) => Portable::Num(*n),
            Value::String(s) => Portable::Str(s.as_bytes().to_vec()),
            Value::Table(t) if depth < MAX_DEPTH => {
                let mut out = Vec::new();
                for (k, v) in t.pairs::<Value, Value>().flatten() {
                    if let (Some(k), Some(v)) =
                        (Self::copy(&k, depth + 1), Self::copy(&v, depth + 1))
                    {
                        out.push((k, v));
                    }
                }
                Portable::Table(out)
            }
            _ => return None,
        })
    }

    /// Makes the value in `lua`.
    pub fn to_lua(&self, lua: &Lua) -> mlua::Result<Value> {
        Ok(match self {
            Portable::Nil => Value::Nil,
            Portable::Bool(b) => Value::Boolean(*b),
            Portable::Num(n) => Value::Number(*n),
            Portable::Str(s) => Value::String(lua.create_string(s)?),
            Portable::Table(entries) => {
                let t = lua.create_table_with_capacity(0, entries.len())?;
                for (k, v) in entries {
                    t.raw_set(k.to_lua(lua)?, v.to_lua(lua)?)?;
                }
                Value::Table(t)
            }
        })
    }
}

/// Globals that belong to Lua or to loadgen, not to the script: never copied out of a state.
pub const SYSTEM_GLOBALS: [&str; 16] = [
    "_G",
    "_VERSION",
    "wrk",
    "string",
    "table",
    "math",
    "io",
    "os",
    "bit",
    "ffi",
    "jit",
    "coroutine",
    "debug",
    "package",
    "arg",
    "module",
];

/// The script's own portable globals of `lua` (what `thread:get` can read after the run).
pub fn globals(lua: &Lua) -> Vec<(String, Portable)> {
    let mut out = Vec::new();
    for (k, v) in lua.globals().pairs::<Value, Value>().flatten() {
        let Value::String(k) = k else { continue };
        let Ok(name) = k.to_str().map(|s| s.to_string()) else {
            continue;
        };
        if SYSTEM_GLOBALS.contains(&name.as_str()) {
            continue;
        }
        if let Some(p) = Portable::from_lua(&v) {
            out.push((name, p));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cross_between_states() {
        let a = Lua::new();
        let v: Value = a
            .load("return { 1, 'two', x = { y = true }, f = print }")
            .eval()
            .unwrap();
        let p = Portable::from_lua(&v).unwrap();
        let b = Lua::new();
        b.globals().set("v", p.to_lua(&b).unwrap()).unwrap();
        let ok: bool = b
            .load("return v[1] == 1 and v[2] == 'two' and v.x.y == true and v.f == nil")
            .eval()
            .unwrap();
        assert!(ok);
        assert!(
            Portable::from_lua(&Value::Function(a.create_function(|_, ()| Ok(())).unwrap()))
                .is_none()
        );
    }
}
