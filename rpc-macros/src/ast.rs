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
    /// Parameters of type `State<T>` (or a reference to one), with `T`
    /// when it is written.
    pub(crate) states: Vec<StateParam<'a>>,
    /// Positions of the parameters, in declaration order.
    pub(crate) order: Vec<Param>,
    pub(crate) output: Output<'a>,
    pub(crate) doc: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    Args,
    Context,
    /// The state parameter at this index of `states`.
    State(usize),
}

/// A `State<T>` parameter.
pub(crate) struct StateParam<'a> {
    pub(crate) param: &'a PatType,
    /// `T`, if the parameter names exactly one type.
    pub(crate) inner: Option<&'a Type>,
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
        let mut states = Vec::new();
        let mut order = Vec::new();
        for input in &item.sig.inputs {
            if let FnArg::Typed(param) = input {
                if is_context(&param.ty) {
                    contexts.push(param);
                    order.push(Param::Context);
                } else if let Some(inner) = state_inner(&param.ty) {
                    order.push(Param::State(states.len()));
                    states.push(StateParam { param, inner });
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
            states,
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

/// For `State<T>`, `rpc_runtime::State<T>` or a reference to one: `Some`
/// with `T` if exactly one type is written. `None` for any other type.
fn state_inner(ty: &Type) -> Option<Option<&Type>> {
    match ty {
        Type::Reference(reference) => state_inner(&reference.elem),
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            if last.ident != "State" {
                return None;
            }
            let PathArguments::AngleBracketed(generics) = &last.arguments else {
                return Some(None);
            };
            let types: Vec<&Type> = generics
                .args
                .iter()
                .filter_map(|arg| match arg {
                    GenericArgument::Type(ty) => Some(ty),
                    _ => None,
                })
                .collect();
            match types[..] {
                [inner] if generics.args.len() == 1 => Some(Some(inner)),
                _ => Some(None),
            }
        }
        _ => None,
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
