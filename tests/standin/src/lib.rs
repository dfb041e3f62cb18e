//! A stand-in for Benchling's REST API, built from recorded payloads, for local runs, compose and
//! the tests: the API itself (`benchling`), the ZIP builder its sample export is made with
//! (`archive`), and the small loopback HTTP server it runs on (`stub`), which the test kit's other
//! stand-ins share. The `benchling-standin` binary serves it on its own.

pub mod archive;
pub mod benchling;
pub mod stub;
