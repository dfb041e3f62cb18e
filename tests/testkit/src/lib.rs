//! Test stand-ins shared by the test suites: a moto server launcher, and later a local
//! Benchling/JWKS server and webhook signer.

pub mod moto;
pub mod otlp;
