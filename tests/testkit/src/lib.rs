//! Test helpers shared by the test suites and benchmarks: a moto server launcher, an OTLP
//! collector, the rig every worker's end-to-end suite starts from (`rig`), a Benchling JWKS server, a webhook signer, sample data (`sample`), hostile ZIP
//! archives (`archive`) and golden-file checks (`golden`). The Benchling API stand-in, the
//! well-formed ZIP builder and the small HTTP server the stand-ins run on live in `bw-standin`.

pub mod archive;
pub mod golden;
pub mod jwks;
pub mod moto;
pub mod otlp;
pub mod rig;
pub mod sample;
pub mod signer;
