//! Examples of rpc-runtime live in this package's `[[example]]` targets; see
//! the `//! Run with:` block at the top of each.
