//! The canvas worker: everything the user sees inside Benchling. So far, the linked-package
//! query it shows on an entry's canvas (`athena`), the views as canvas blocks (`view`), and
//! reading Quilt packages and their revision events from the registry (`registry`).

pub mod athena;
pub mod registry;
pub mod view;
