//! Process metrics: labelled counters and histograms that each service declares as statics and
//! serves at `GET /metrics` in Prometheus' text format (version 0.0.4), which Prometheus, the
//! CloudWatch agent and the OpenTelemetry collector's `prometheus` receiver all scrape.
//!
//! Small on purpose: label values must come from a closed set (outcomes, queue names), so a
//! family holds a handful of series and a linear scan finds one faster than hashing would. A
//! family joins the process's registry the first time it is touched or [`Family::register`]ed;
//! services register theirs at start-up, so a scrape names every family before its first event.

use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard, Once, PoisonError};

/// Every registered family, in registration order.
static REGISTRY: Mutex<Vec<&'static dyn Family>> = Mutex::new(Vec::new());

/// Bucket bounds, in seconds, for durations from milliseconds to minutes.
pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// A metric family: one name, one kind, and a series per set of label values.
pub trait Family: Sync {
    /// The family's name.
    fn name(&self) -> &'static str;

    /// Appends the family (its `HELP` and `TYPE` lines and every series) to `out`.
    fn render(&self, out: &mut String);

    /// Adds the family to the registry (once; later calls do nothing), so [`render`] shows it.
    fn register(&'static self);
}

/// Every registered family, in Prometheus' text format, ordered by name.
pub fn render() -> String {
    let mut families: Vec<&'static dyn Family> = lock(&REGISTRY).clone();
    families.sort_by_key(|family| family.name());
    let mut out = String::with_capacity(families.len() * 256);
    for family in families {
        family.render(&mut out);
    }
    out
}

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What every family kind shares: name, help, label names, its series, and its registration.
struct Meta<S> {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    series: Mutex<Vec<(Box<[String]>, S)>>,
    registered: Once,
}

impl<S: Default> Meta<S> {
    const fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Self {
            name,
            help,
            labels,
            series: Mutex::new(Vec::new()),
            registered: Once::new(),
        }
    }

    /// Runs `update` on the series of `values`, made on first use.
    fn with_series(&self, values: &[&str], update: impl FnOnce(&mut S)) {
        debug_assert_eq!(
            values.len(),
            self.labels.len(),
            "{} takes labels {:?}",
            self.name,
            self.labels
        );
        let mut series = lock(&self.series);
        let index = match series
            .iter()
            .position(|(known, _)| known.iter().map(String::as_str).eq(values.iter().copied()))
        {
            Some(index) => index,
            None => {
                let key = values.iter().map(|&value| value.to_owned()).collect();
                series.push((key, S::default()));
                series.len() - 1
            }
        };
        update(&mut series[index].1);
    }

    /// Adds `family` (the family holding this) to the registry, once.
    fn register(&self, family: &'static dyn Family) {
        self.registered.call_once(|| lock(&REGISTRY).push(family));
    }

    fn head(&self, kind: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {kind}", self.name);
    }

    /// `{a="x",b="y"}` with `extra` (such as `le`) last; empty when there are no labels.
    fn label_set(&self, values: &[String], extra: Option<(&str, &str)>) -> String {
        let pairs = self
            .labels
            .iter()
            .copied()
            .zip(values.iter().map(String::as_str))
            .chain(extra);
        let mut set = String::new();
        for (name, value) in pairs {
            set.push(if set.is_empty() { '{' } else { ',' });
            let _ = write!(set, "{name}=\"{}\"", escape(value));
        }
        if !set.is_empty() {
            set.push('}');
        }
        set
    }
}

/// A count that only goes up, per set of label values.
pub struct Counter(Meta<u64>);

impl Counter {
    /// A counter named `name` (end it in `_total`) with the label names `labels`.
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Self(Meta::new(name, help, labels))
    }

    /// Adds one to the series of `values` (one value per label name, in order).
    pub fn inc(&'static self, values: &[&str]) {
        self.add(values, 1);
    }

    /// Adds `amount` to the series of `values`.
    pub fn add(&'static self, values: &[&str], amount: u64) {
        self.register();
        self.0
            .with_series(values, |count| *count = count.saturating_add(amount));
    }
}

impl Family for Counter {
    fn name(&self) -> &'static str {
        self.0.name
    }

    fn render(&self, out: &mut String) {
        self.0.head("counter", out);
        for (values, count) in lock(&self.0.series).iter() {
            let _ = writeln!(
                out,
                "{}{} {count}",
                self.0.name,
                self.0.label_set(values, None)
            );
        }
    }

    fn register(&'static self) {
        self.0.register(self);
    }
}

/// Observations sorted into cumulative buckets, with their sum and count, per set of label
/// values.
pub struct Histogram {
    meta: Meta<Buckets>,
    bounds: &'static [f64],
}

/// One histogram series: a count per bucket (not yet cumulative), the sum and the count.
#[derive(Default)]
struct Buckets {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// A histogram named `name` with the label names `labels` and the upper bucket bounds
    /// `bounds` (ascending; `+Inf` is implied).
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        bounds: &'static [f64],
    ) -> Self {
        Self {
            meta: Meta::new(name, help, labels),
            bounds,
        }
    }

    /// Records `value` in the series of `values`.
    pub fn observe(&'static self, values: &[&str], value: f64) {
        self.register();
        let bucket = self
            .bounds
            .iter()
            .position(|&bound| value <= bound)
            .unwrap_or(self.bounds.len());
        self.meta.with_series(values, |series| {
            if series.counts.is_empty() {
                series.counts = vec![0; self.bounds.len() + 1];
            }
            series.counts[bucket] += 1;
            series.sum += value;
            series.count += 1;
        });
    }
}

impl Family for Histogram {
    fn name(&self) -> &'static str {
        self.meta.name
    }

    fn render(&self, out: &mut String) {
        let name = self.meta.name;
        self.meta.head("histogram", out);
        for (values, series) in lock(&self.meta.series).iter() {
            let mut cumulative = 0;
            let bounds = self.bounds.iter().map(f64::to_string);
            for (bound, count) in bounds
                .chain(std::iter::once("+Inf".to_owned()))
                .zip(&series.counts)
            {
                cumulative += count;
                let labels = self.meta.label_set(values, Some(("le", &bound)));
                let _ = writeln!(out, "{name}_bucket{labels} {cumulative}");
            }
            let labels = self.meta.label_set(values, None);
            let _ = writeln!(out, "{name}_sum{labels} {}", series.sum);
            let _ = writeln!(out, "{name}_count{labels} {}", series.count);
        }
    }

    fn register(&'static self) {
        self.meta.register(self);
    }
}

/// A label value as the text format quotes it: backslash, double quote and newline escaped.
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
        .into()
}

/// A metric update must never fail, so a lock poisoned by a panic elsewhere is used as it is:
/// counts stay valid after any panic between two updates.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    static REQUESTS: Counter = Counter::new(
        "test_requests_total",
        "Requests by outcome.",
        &["route", "outcome"],
    );
    static LATENCY: Histogram =
        Histogram::new("test_latency_seconds", "Latency.", &["route"], &[0.1, 1.0]);
    static QUIET: Counter = Counter::new("test_quiet_total", "Never counted.", &[]);

    #[test]
    fn counters_and_histograms_render_in_the_text_format() {
        QUIET.register();
        REQUESTS.inc(&["/event", "queued"]);
        REQUESTS.add(&["/event", "queued"], 2);
        REQUESTS.inc(&["/event", "say \"hi\"\\\n"]);
        LATENCY.observe(&["/event"], 0.05);
        LATENCY.observe(&["/event"], 0.5);
        LATENCY.observe(&["/event"], 7.0);

        let text = render();
        let expected = "\
# HELP test_latency_seconds Latency.
# TYPE test_latency_seconds histogram
test_latency_seconds_bucket{route=\"/event\",le=\"0.1\"} 1
test_latency_seconds_bucket{route=\"/event\",le=\"1\"} 2
test_latency_seconds_bucket{route=\"/event\",le=\"+Inf\"} 3
test_latency_seconds_sum{route=\"/event\"} 7.55
test_latency_seconds_count{route=\"/event\"} 3
# HELP test_quiet_total Never counted.
# TYPE test_quiet_total counter
# HELP test_requests_total Requests by outcome.
# TYPE test_requests_total counter
test_requests_total{route=\"/event\",outcome=\"queued\"} 3
test_requests_total{route=\"/event\",outcome=\"say \\\"hi\\\"\\\\\\n\"} 1
";
        assert_eq!(text, expected);
    }
}
