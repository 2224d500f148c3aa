//! The `#[rpc]` attribute of `rpc-runtime`.
//!
//! Depend on `rpc-runtime`, which re-exports this macro; the expansion reaches
//! the runtime only through `::rpc_runtime::__private`. The stages live in
//! their own files: `attr` parses the `#[rpc(...)]` arguments, `ast` takes
//! a borrowed view of the function, `valid` checks the rules that span
//! several parts, and `expand` writes the registration.

mod ast;
mod attr;
mod expand;
mod valid;

use proc_macro::TokenStream;

#[doc = include_str!("attribute.md")]
#[proc_macro_attribute]
pub fn rpc(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::rpc(args.into(), input.into()).into()
}
