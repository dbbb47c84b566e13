//! The statistics objects `done(summary, latency, requests)` receives, emulated from a
//! histogram the way wrk2 does: `min`, `max`, `mean`, `stdev`, `percentile(p)`, `#obj` (the
//! number of samples) and `obj[i]` (the value at percentile `100·i/#obj`), plus wrk 4's
//! `obj(i)` (the i-th distinct recorded value and how many samples had it).

use hdrhistogram::Histogram;
use mlua::{MetaMethod, UserData, UserDataFields, UserDataMethods, Value};

/// One statistics object over a histogram (latency in µs, or requests per second).
pub struct StatsObject(pub Histogram<u64>);

impl StatsObject {
    fn at_percentile(&self, p: f64) -> u64 {
        crate::hdr::value_at_percentile(&self.0, p)
    }
}

impl UserData for StatsObject {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("min", |_, s| Ok(if s.0.is_empty() { 0 } else { s.0.min() }));
        f.add_field_method_get("max", |_, s| Ok(s.0.max()));
        f.add_field_method_get("mean", |_, s| Ok(s.0.mean()));
        f.add_field_method_get("stdev", |_, s| Ok(s.0.stdev()));
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("percentile", |_, s, p: f64| Ok(s.at_percentile(p)));
        m.add_meta_method(MetaMethod::Len, |_, s, ()| Ok(s.0.len()));
        m.add_meta_method(MetaMethod::Index, |_, s, key: Value| {
            let n = s.0.len();
            match key {
                Value::Integer(i) if i >= 1 && (i as u64) <= n => {
                    Ok(Some(s.at_percentile(100.0 * i as f64 / n as f64)))
                }
                Value::Number(x) if x >= 1.0 && x <= n as f64 => {
                    Ok(Some(s.at_percentile(100.0 * x.floor() / n as f64)))
                }
                _ => Ok(None),
            }
        });
        m.add_meta_method(MetaMethod::Call, |_, s, i: usize| {
            Ok(match s.0.iter_recorded().nth(i.saturating_sub(1)) {
                Some(v) => (Some(v.value_iterated_to()), Some(v.count_at_value())),
                None => (None, None),
            })
        });
    }
}
