//! Parsing of the `#[rpc(...)]` arguments: one constant per key, every
//! mistake collected rather than the first one returned.

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Expr, ExprLit, Lit, LitStr};

const PROCEDURE: &str = "procedure";
const SCOPE: &str = "scope";
const VERSION: &str = "version";
const INTERNAL: &str = "internal";
const AUTH: &str = "auth";
const TIMEOUT: &str = "timeout";

/// Every key `#[rpc]` accepts, in the order the docs list them.
const KEYS: &[&str] = &[PROCEDURE, SCOPE, VERSION, INTERNAL, AUTH, TIMEOUT];

/// A string value together with the span of the literal it came from.
pub(crate) struct Spanned {
    pub(crate) value: String,
    pub(crate) span: Span,
}

/// The parsed arguments of one `#[rpc(...)]`.
#[derive(Default)]
pub(crate) struct Attrs {
    pub(crate) procedure: Option<Spanned>,
    pub(crate) scope: Option<Spanned>,
    pub(crate) version: Option<Spanned>,
    pub(crate) internal: Option<bool>,
    pub(crate) auth: Option<bool>,
    pub(crate) timeout: Option<Spanned>,
}

/// Collects errors so that all of them are reported in one compilation.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn spanned(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    pub(crate) fn into_result(self) -> Result<(), syn::Error> {
        self.0.map_or(Ok(()), Err)
    }
}

pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Attrs {
    let mut attrs = Attrs::default();
    let parser = syn::meta::parser(|meta| {
        parse_key(&meta, &mut attrs, errors);
        Ok(())
    });
    if let Err(error) = parser.parse2(tokens) {
        errors.push(error);
    }
    attrs
}

fn parse_key(meta: &ParseNestedMeta, attrs: &mut Attrs, errors: &mut Errors) {
    let key = meta
        .path
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_default();
    let result = match key.as_str() {
        PROCEDURE => string(meta).map(|v| set(&mut attrs.procedure, v, meta, errors)),
        SCOPE => string(meta).map(|v| set(&mut attrs.scope, v, meta, errors)),
        VERSION => version(meta).map(|v| set(&mut attrs.version, v, meta, errors)),
        TIMEOUT => string(meta).map(|v| set(&mut attrs.timeout, v, meta, errors)),
        INTERNAL => flag(meta).map(|v| set(&mut attrs.internal, v, meta, errors)),
        AUTH => flag(meta).map(|v| set(&mut attrs.auth, v, meta, errors)),
        _ => {
            skip_value(meta);
            Err(meta.error(format_args!(
                "unknown #[rpc] key; expected one of: {}",
                KEYS.join(", ")
            )))
        }
    };
    if let Err(error) = result {
        errors.push(error);
    }
}

/// Stores a value, or reports the key as given twice (on its second use).
fn set<T>(slot: &mut Option<T>, value: T, meta: &ParseNestedMeta, errors: &mut Errors) {
    if slot.is_some() {
        errors.push(meta.error(format_args!(
            "duplicate #[rpc] key `{}`",
            meta.path.get_ident().map(ToString::to_string).unwrap_or_default()
        )));
    } else {
        *slot = Some(value);
    }
}

fn key_name(meta: &ParseNestedMeta) -> String {
    meta.path
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_default()
}

fn value_expr(meta: &ParseNestedMeta) -> syn::Result<Expr> {
    if !meta.input.peek(syn::Token![=]) {
        return Err(meta.error(format_args!(
            "`{}` needs a value, e.g. `{} = \"...\"`",
            key_name(meta),
            key_name(meta)
        )));
    }
    meta.value()?.parse::<Expr>()
}

fn string(meta: &ParseNestedMeta) -> syn::Result<Spanned> {
    match value_expr(meta)? {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(spanned(&lit)),
        other => Err(syn::Error::new_spanned(
            other,
            format_args!("`{}` takes a string literal", key_name(meta)),
        )),
    }
}

fn version(meta: &ParseNestedMeta) -> syn::Result<Spanned> {
    match value_expr(meta)? {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(spanned(&lit)),
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) if lit.suffix().is_empty() => Ok(Spanned {
            value: lit.base10_digits().to_owned(),
            span: lit.span(),
        }),
        other => Err(syn::Error::new_spanned(
            other,
            "`version` takes a string or an unsuffixed integer literal, e.g. `version = \"2\"` or `version = 2`",
        )),
    }
}

/// A flag is written bare (`internal`) or with a bool (`internal = false`).
fn flag(meta: &ParseNestedMeta) -> syn::Result<bool> {
    if !meta.input.peek(syn::Token![=]) {
        return Ok(true);
    }
    match meta.value()?.parse::<Expr>()? {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(b), ..
        }) => Ok(b.value),
        other => Err(syn::Error::new_spanned(
            other,
            format_args!(
                "`{}` is a flag: write `{}` or `{} = true`",
                key_name(meta),
                key_name(meta),
                key_name(meta)
            ),
        )),
    }
}

fn skip_value(meta: &ParseNestedMeta) {
    if meta.input.peek(syn::Token![=]) {
        let _ = meta.value().and_then(|v| v.parse::<Expr>());
    } else if meta.input.peek(syn::token::Paren) {
        let _ = meta.parse_nested_meta(|inner| {
            skip_value(&inner);
            Ok(())
        });
    }
}

fn spanned(lit: &LitStr) -> Spanned {
    Spanned {
        value: lit.value(),
        span: lit.span(),
    }
}
