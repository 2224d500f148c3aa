//! Compile-time tests of `#[rpc]`: `tests/pass` holds every accepted
//! signature form, `tests/fail` one mistake per file with the expected
//! compiler output beside it.
