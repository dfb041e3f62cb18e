//! Decides what a verified webhook asks for: an export, a canvas update, a lifecycle record,
//! or nothing. Pure: no I/O, so every routing rule is unit-tested.

use bw_contracts::job::CanvasAction;
use bw_contracts::webhook::{EventType, Message};
use bw_contracts::{Button, CanvasJob, ExportJob, Trigger, Webhook, WebhookId};
use chrono::{DateTime, Utc};

/// The outcome of routing one webhook.
#[derive(Clone, Debug, PartialEq)]
pub enum Disposition {
    /// Export the entry.
    Export(ExportJob),
    /// Update a canvas.
    Canvas(CanvasJob),
    /// An app lifecycle signal; some also set up the app's home canvas.
    Lifecycle {
        /// The signal.
        event: EventType,
        /// The canvas job it needs, if any.
        canvas: Option<CanvasJob>,
    },
    /// Nothing to do.
    Ignored {
        /// The event type.
        event: EventType,
        /// Why, for the response and the log.
        reason: String,
    },
}

/// Facts about the delivery that are not in the body.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The `webhook-id` header.
    pub webhook_id: Option<WebhookId>,
    /// The signed `webhook-timestamp`, else the time we received it.
    pub timestamp: DateTime<Utc>,
}

/// Routes a webhook. The endpoint it arrived on does not matter: Benchling's "Stable"
/// routing sends everything to one URL, and the message type says what it is.
pub fn dispatch(webhook: Webhook, delivery: &Delivery) -> Disposition {
    let event = webhook.message.event_type();
    let trigger = |event_id, created_at: Option<DateTime<Utc>>, user_id| Trigger {
        event_type: event.clone(),
        event_id,
        webhook_id: delivery.webhook_id.clone(),
        occurred_at: created_at.unwrap_or(delivery.timestamp),
        user_id,
    };
    match webhook.message {
        Message::Entry(entry) => Disposition::Export(ExportJob {
            trigger: trigger(entry.event_id, entry.created_at, None),
            entry_id: entry.entry_id,
            canvas_id: None,
            base_url: webhook.base_url,
        }),
        Message::CanvasInteraction(click) => match Button::parse(&click.button_id) {
            Some(button) => Disposition::Canvas(CanvasJob {
                canvas_id: Some(click.canvas_id),
                entry_id: Some(button.entry_id.clone()),
                feature_id: click.feature_id,
                app_id: webhook.app_id,
                action: CanvasAction::Button { button },
                trigger: trigger(None, None, click.user_id),
            }),
            None => Disposition::Ignored {
                event,
                // Cut: the id is the sender's, and this reason goes to the log and the answer.
                reason: format!(
                    "button {:?} is not one of ours",
                    click.button_id.chars().take(64).collect::<String>()
                ),
            },
        },
        Message::CanvasCreated(created) => Disposition::Canvas(CanvasJob {
            canvas_id: Some(created.canvas_id),
            entry_id: created.entry_id,
            feature_id: created.feature_id,
            app_id: webhook.app_id,
            action: CanvasAction::Render,
            trigger: trigger(None, None, created.user_id),
        }),
        Message::CanvasInitialized(init) => Disposition::Canvas(CanvasJob {
            canvas_id: init.canvas_id,
            entry_id: Some(init.entry_id),
            feature_id: init.feature_id,
            app_id: webhook.app_id,
            action: CanvasAction::Create,
            trigger: trigger(None, None, init.user_id),
        }),
        Message::Lifecycle(kind) => {
            let canvas = matches!(
                kind,
                EventType::AppInstalled | EventType::AppActivateRequested
            )
            .then(|| CanvasJob {
                canvas_id: None,
                entry_id: None,
                feature_id: None,
                app_id: webhook.app_id.clone(),
                action: CanvasAction::AppHome,
                trigger: trigger(None, None, None),
            });
            Disposition::Lifecycle {
                event: kind,
                canvas,
            }
        }
        Message::Other(kind) => Disposition::Ignored {
            reason: format!("event type {kind} is not processed"),
            event: kind,
        },
    }
}

#[cfg(test)]
mod tests {
    use bw_contracts::{ButtonAction, EntryId};

    use super::*;

    fn delivery() -> Delivery {
        Delivery {
            webhook_id: Some(WebhookId::parse("msg_1").unwrap()),
            timestamp: "2026-01-01T00:00:00Z".parse().unwrap(),
        }
    }

    fn route(body: &str) -> Disposition {
        dispatch(Webhook::from_slice(body.as_bytes()).unwrap(), &delivery())
    }

    #[test]
    fn entry_events_export_with_the_event_time() {
        let Disposition::Export(job) = route(
            r#"{"baseURL":"https://t.benchling.com","message":{"type":"v2.entry.updated.fields","id":"evt_1","createdAt":"2024-06-07T21:46:48.111811+00:00","resourceId":"etr_1"}}"#,
        ) else {
            panic!("not an export")
        };
        assert_eq!(job.entry_id.as_str(), "etr_1");
        assert_eq!(
            job.trigger.occurred_at.to_rfc3339(),
            "2024-06-07T21:46:48.111811+00:00"
        );
        assert_eq!(job.trigger.webhook_id.unwrap().as_str(), "msg_1");
        assert_eq!(job.base_url.as_deref(), Some("https://t.benchling.com"));
    }

    #[test]
    fn our_buttons_become_canvas_jobs_and_others_are_ignored() {
        let Disposition::Canvas(job) = route(
            r#"{"message":{"type":"v2.canvas.userInteracted","buttonId":"q1.u.etr_9","canvasId":"cnvs_1"}}"#,
        ) else {
            panic!("not a canvas job")
        };
        assert_eq!(
            job.action,
            CanvasAction::Button {
                button: Button::new(EntryId::parse("etr_9").unwrap(), ButtonAction::Update)
            }
        );
        assert_eq!(job.trigger.occurred_at, delivery().timestamp);
        assert!(matches!(
            route(
                r#"{"message":{"type":"v2.canvas.userInteracted","buttonId":"my_button_id","canvasId":"cnvs_1"}}"#
            ),
            Disposition::Ignored { .. }
        ));
    }

    #[test]
    fn initialized_canvases_are_created_and_lifecycle_sets_up_home() {
        let Disposition::Canvas(job) = route(
            r#"{"message":{"type":"v2.canvas.initialized","resourceId":"etr_1","featureId":"quilt_entry"}}"#,
        ) else {
            panic!("not a canvas job")
        };
        assert_eq!(job.action, CanvasAction::Create);
        assert_eq!(job.canvas_id, None);
        let Disposition::Lifecycle { canvas, .. } =
            route(r#"{"app":{"id":"app_1"},"message":{"type":"v2.app.installed"}}"#)
        else {
            panic!("not lifecycle")
        };
        assert_eq!(canvas.unwrap().action, CanvasAction::AppHome);
        assert!(matches!(
            route(r#"{"message":{"type":"v2.app.deactivated"}}"#),
            Disposition::Lifecycle { canvas: None, .. }
        ));
    }

    #[test]
    fn unknown_types_are_ignored() {
        assert!(matches!(
            route(r#"{"message":{"type":"v2.dna.created"}}"#),
            Disposition::Ignored { .. }
        ));
    }
}
