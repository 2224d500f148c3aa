//! Writing the expansion: the user's function unchanged, a typed marker
//! named after it, and a registration submitted to the runtime's inventory.

use crate::ast::{Function, Output, Param};
use crate::attr::{self, Errors};
use crate::valid::{self, Checked};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ItemFn;
use syn::spanned::Spanned;

pub(crate) fn rpc(args: TokenStream, input: TokenStream) -> TokenStream {
    let item: ItemFn = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(error) => {
            let error = syn::Error::new(error.span(), "#[rpc] applies to an `async fn`");
            return fallback(input, error);
        }
    };
    let mut errors = Errors::default();
    let attrs = attr::parse(args, &mut errors);
    let function = Function::from_item(&item);
    let checked = valid::check(attrs, &function, &mut errors);
    match errors.into_result() {
        Ok(()) => expand(&function, &checked),
        Err(error) => fallback(quote!(#item), error),
    }
}

/// On error the function is still emitted, so its callers do not add
/// "cannot find function" errors to the real one.
fn fallback(item: TokenStream, error: syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    quote!(#error #item)
}

fn expand(function: &Function<'_>, checked: &Checked) -> TokenStream {
    let item = function.item;
    let vis = &item.vis;
    let ident = &item.sig.ident;
    let private = quote!(::rpc_runtime::__private);
    let Checked {
        procedure,
        scope,
        version,
        internal,
        auth,
        timeout_ms,
    } = checked;

    let args_ty = match function.args.first() {
        Some(args) => {
            let ty = &args.ty;
            quote!(#ty)
        }
        None => quote!(::rpc_runtime::NoArgs),
    };
    let (output_ty, error_ty, into_result) = match &function.output {
        Output::Unit => (
            quote!(()),
            quote!(::core::convert::Infallible),
            quote!(::core::result::Result::Ok(__rpc_out)),
        ),
        Output::Plain(ty) => (
            quote!(#ty),
            quote!(::core::convert::Infallible),
            quote!(::core::result::Result::Ok(__rpc_out)),
        ),
        Output::Result { ok, err } => (quote!(#ok), quote!(#err), quote!(__rpc_out)),
        Output::ResultAlias(ty) => (
            quote_spanned!(ty.span()=> <#ty as #private::RpcResult>::Ok),
            quote_spanned!(ty.span()=> <#ty as #private::RpcResult>::Err),
            quote!(#private::RpcResult::into_result(__rpc_out)),
        ),
    };

    // A procedure without args still decodes `NoArgs`, which refuses
    // anything but an empty object.
    let decode = quote!(let __rpc_args = #private::decode_args::<#ident>(__rpc_value)?;);
    let state_idents: Vec<_> = (0..function.states.len())
        .map(|i| format_ident!("__rpc_state_{}", i))
        .collect();
    let state_types: Vec<_> = function
        .states
        .iter()
        .filter_map(|state| state.inner)
        .collect();
    // Each state type is checked where the user wrote it, so that a type
    // that cannot be state is underlined in the signature.
    let extract_states = function
        .states
        .iter()
        .zip(&state_idents)
        .filter_map(|(state, ident)| {
            let ty = state.inner?;
            Some(quote_spanned! {ty.span()=>
                let #ident = #private::state::<#ty>(&__rpc_context)?;
            })
        });
    let call_args = function.order.iter().map(|param| match param {
        Param::Args => quote!(__rpc_args),
        Param::Context => quote!(__rpc_context),
        Param::State(index) => {
            let ident = &state_idents[*index];
            quote!(#ident)
        }
    });
    let states_fn = format_ident!("__rpc_states_{}", ident);
    let handler = format_ident!("__rpc_handler_{}", ident);
    let timeout = match timeout_ms {
        Some(ms) => quote!(::core::option::Option::Some(#ms)),
        None => quote!(::core::option::Option::None),
    };
    let description = &function.doc;
    let marker_doc = format!(
        "Typed handle of the procedure `{procedure}` (scope `{scope}`, version `{version}`), for typed calls such as `ctx.call::<{ident}>(args)`."
    );

    quote! {
        #item

        #[doc = #marker_doc]
        #[allow(non_camel_case_types)]
        #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
        #vis struct #ident {}

        impl ::rpc_runtime::Procedure for #ident {
            type Args = #args_ty;
            type Output = #output_ty;
            type Error = #error_ty;
            const SCOPE: &'static str = #scope;
            const NAME: &'static str = #procedure;
            const VERSION: &'static str = #version;
            const INTERNAL: bool = #internal;
        }

        const _: () = {
            #[allow(unused_variables, non_snake_case)]
            fn #handler(
                __rpc_value: &mut #private::Args,
                __rpc_context: ::rpc_runtime::Context,
            ) -> ::core::result::Result<
                #private::BoxFuture<::core::result::Result<::rpc_runtime::Data, ::rpc_runtime::RpcError>>,
                ::rpc_runtime::RpcError,
            > {
                #decode
                #(#extract_states)*
                ::core::result::Result::Ok(::std::boxed::Box::pin(async move {
                    let __rpc_out = #ident(#(#call_args),*).await;
                    #private::encode_result::<#ident>(#into_result)
                }))
            }

            fn #states_fn() -> ::std::vec::Vec<#private::StateKey> {
                ::std::vec![#(#private::StateKey::of::<#state_types>()),*]
            }

            #private::inventory::submit! {
                #private::Descriptor {
                    scope: #scope,
                    procedure: #procedure,
                    version: #version,
                    description: #description,
                    internal: #internal,
                    auth: #auth,
                    timeout_ms: #timeout,
                    args_schema: #private::args_schema::<#ident>,
                    output_schema: #private::output_schema::<#ident>,
                    handler: #handler,
                    decode_prefix: #private::decode_prefix::<#ident>,
                    states: #states_fn,
                    module: ::core::module_path!(),
                    file: ::core::file!(),
                    line: ::core::line!(),
                }
            }
        };
    }
}
