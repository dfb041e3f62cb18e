//! End-to-end suites: services driven over real HTTP, with SQS and Secrets Manager on a local
//! moto server and Benchling's JWKS on a local stand-in. The suites live in `tests/it`.
