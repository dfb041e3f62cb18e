//! Test stand-ins shared by the test suites and benchmarks: a moto server launcher, an OTLP
//! collector, a Benchling JWKS server, a webhook signer, and the small HTTP server they use.
//! Also a Benchling API stand-in (`benchling`) for the REST client and the workers, and sample
//! data (`sample`), archives, hostile ones included (`archive`), and golden-file checks
//! (`golden`).

pub mod archive;
pub mod benchling;
pub mod golden;
pub mod jwks;
pub mod moto;
pub mod otlp;
pub mod sample;
pub mod signer;
pub mod stub;
