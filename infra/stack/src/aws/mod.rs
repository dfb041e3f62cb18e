//! The AWS resource types the stack uses, as typed property structs.

pub mod api;
pub mod compute;
pub mod iam;
pub mod messaging;
pub mod monitoring;
pub mod network;
