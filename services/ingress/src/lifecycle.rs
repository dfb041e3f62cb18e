//! The last app lifecycle signal of each type, shown by `/config` so an operator can see when
//! the app was installed, activated or reconfigured.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bw_contracts::EventType;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One lifecycle type's last sighting.
#[derive(Clone, Debug, Serialize)]
pub struct LastSeen {
    /// When the signal was sent.
    pub at: DateTime<Utc>,
    /// Its `webhook-id`.
    pub webhook_id: Option<String>,
    /// How many times this type was seen since start-up.
    pub count: u64,
}

/// Last sighting per lifecycle type.
#[derive(Debug, Default)]
pub struct LifecycleLog {
    seen: Mutex<BTreeMap<String, LastSeen>>,
}

impl LifecycleLog {
    /// Records a signal.
    pub fn record(&self, event: &EventType, at: DateTime<Utc>, webhook_id: Option<&str>) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let entry = seen.entry(event.to_string()).or_insert(LastSeen {
            at,
            webhook_id: None,
            count: 0,
        });
        entry.at = at;
        entry.webhook_id = webhook_id.map(str::to_owned);
        entry.count += 1;
    }

    /// Everything recorded, by type.
    pub fn snapshot(&self) -> BTreeMap<String, LastSeen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
