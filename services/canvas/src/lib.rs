//! The canvas worker: everything the user sees inside Benchling. So far, the linked-package
//! query it shows on an entry's canvas (`athena`) and the views as canvas blocks (`view`).

pub mod athena;
pub mod view;
