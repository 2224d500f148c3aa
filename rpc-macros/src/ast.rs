//! A borrowed view of the annotated function that keeps the original tokens,
//! so that every error and every type check points into the user's code.

use syn::{FnArg, GenericArgument, ItemFn, PatType, PathArguments, ReturnType, Type};

/// The annotated function, with its parameters sorted by role.
pub(crate) struct Function<'a> {
    pub(crate) item: &'a ItemFn,
    /// Parameters that are not `Context`: at most one is valid.
    pub(crate) args: Vec<&'a PatType>,
    /// Parameters of type `Context` (or `&Context`): at most one is valid.
    pub(crate) contexts: Vec<&'a PatType>,
    /// Positions of the parameters, in declaration order.
    pub(crate) order: Vec<Param>,
    pub(crate) output: Output<'a>,
    pub(crate) doc: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    Args,
    Context,
}

/// What the function returns, as far as it can be told from the tokens.
pub(crate) enum Output<'a> {
    /// No return type: the procedure answers `null`.
    Unit,
    /// `Result<T, E>` written with both arguments.
    Result { ok: &'a Type, err: &'a Type },
    /// A `Result` alias such as `io::Result<T>`: its parts are projected.
    ResultAlias(&'a Type),
    /// Any other type, returned as the data of a successful call.
    Plain(&'a Type),
}

impl<'a> Function<'a> {
    pub(crate) fn from_item(item: &'a ItemFn) -> Self {
        let mut args = Vec::new();
        let mut contexts = Vec::new();
        let mut order = Vec::new();
        for input in &item.sig.inputs {
            if let FnArg::Typed(param) = input {
                if is_context(&param.ty) {
                    contexts.push(param);
                    order.push(Param::Context);
                } else {
                    args.push(param);
                    order.push(Param::Args);
                }
            }
        }
        Function {
            item,
            args,
            contexts,
            order,
            output: output(&item.sig.output),
            doc: doc(item),
        }
    }
}

/// `Context`, `rpc_runtime::Context` or a reference to one of them.
pub(crate) fn is_context(ty: &Type) -> bool {
    match ty {
        Type::Reference(reference) => is_context(&reference.elem),
        Type::Path(path) => {
            path.qself.is_none()
                && path
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "Context")
        }
        _ => false,
    }
}

fn output(ret: &ReturnType) -> Output<'_> {
    let ty = match ret {
        ReturnType::Default => return Output::Unit,
        ReturnType::Type(_, ty) => &**ty,
    };
    let Type::Path(path) = ty else {
        return Output::Plain(ty);
    };
    let Some(last) = path.path.segments.last() else {
        return Output::Plain(ty);
    };
    if last.ident != "Result" {
        return Output::Plain(ty);
    }
    if let PathArguments::AngleBracketed(generics) = &last.arguments {
        let types: Vec<&Type> = generics
            .args
            .iter()
            .filter_map(|arg| match arg {
                GenericArgument::Type(ty) => Some(ty),
                _ => None,
            })
            .collect();
        if let [ok, err] = types[..] {
            return Output::Result { ok, err };
        }
    }
    Output::ResultAlias(ty)
}

/// The doc comment, with the one leading space of each line removed.
fn doc(item: &ItemFn) -> String {
    let mut lines = Vec::new();
    for attr in &item.attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let syn::Meta::NameValue(nv) = &attr.meta
            && let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &nv.value
        {
            let line = s.value();
            lines.push(line.strip_prefix(' ').map(str::to_owned).unwrap_or(line));
        }
    }
    lines.join("\n").trim().to_owned()
}
