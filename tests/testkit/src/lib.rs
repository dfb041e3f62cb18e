//! Test stand-ins shared by the test suites and benchmarks: a moto server launcher, an OTLP
//! collector, a Benchling JWKS server, a webhook signer, and the small HTTP server they use.

pub mod jwks;
pub mod moto;
pub mod otlp;
pub mod signer;
pub mod stub;
