//! `benchling-webhook manifest`: the Benchling app manifest for this integration, to upload in
//! Benchling's Developer Console when creating or updating the app.
//!
//! The manifest carries no URL: Benchling takes the webhook URL in the Developer Console, and
//! sends entry and canvas messages to it and lifecycle messages to its `/lifecycle` path (the
//! ingress serves both). Lifecycle messages arrive because the manifest subscribes to them; the
//! old `settings.lifecycleManagement` and `webhookUrl` fields are no longer part of Benchling's
//! manifest.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use bw_contracts::EventType;
use clap::Args;
use serde_json::{Value, json};

/// The canvas feature's id. Canvases made by an installed app keep the feature id they were
/// created with, so this must stay what deployed apps already use.
pub const CANVAS_FEATURE_ID: &str = "quilt_integration";

/// Where the manifest goes.
#[derive(Args, Debug)]
pub struct ManifestArgs {
    /// The app's name as Benchling shows it.
    #[arg(long, default_value = "Quilt Integration")]
    name: String,
    /// The file to write; `-` for standard output.
    #[arg(long, default_value = "app-manifest.yaml")]
    out: PathBuf,
}

/// The manifest, as JSON (written out as YAML).
pub fn manifest(name: &str) -> Value {
    let messages: Vec<Value> = EventType::subscribed()
        .map(|kind| json!({ "type": kind }))
        .collect();
    json!({
        "manifestVersion": 1,
        "info": {
            "name": name,
            "description": "Packages Benchling notebook entries as Quilt data packages and shows them in the entry",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "features": [
            { "name": "Quilt Package", "id": CANVAS_FEATURE_ID, "type": "CANVAS" },
        ],
        "subscriptions": {
            "deliveryMethod": "WEBHOOK",
            "messages": messages,
        },
    })
}

/// Writes the manifest and says what to do with it.
///
/// # Errors
///
/// When the name is empty or the file cannot be written.
pub fn run(args: &ManifestArgs) -> anyhow::Result<()> {
    let name = args.name.trim();
    anyhow::ensure!(!name.is_empty(), "--name must not be empty");
    let text = bw_stack::to_yaml(&manifest(name));
    if args.out.as_os_str() == "-" {
        std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .context("writing the manifest")?;
        return Ok(());
    }
    std::fs::write(&args.out, text).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "wrote {}\nnext:\n  1. Benchling Developer Console: create the app from this manifest (or update it)\n  2. put the app's client id and app definition id in the profile, and the client secret in the Benchling secret\n  3. deploy, then set the app's webhook URL to the stack's <Env>WebhookUrl output (ProdWebhookUrl)\n  4. install the app in the tenant and add it to an entry",
        args.out.display()
    );
    Ok(())
}
