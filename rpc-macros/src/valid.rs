//! Rules that need more than one token: the shape of the signature and the
//! allowed characters of names. Every broken rule is reported, each on the
//! token that breaks it.

use crate::ast::{Function, Output};
use crate::attr::{Attrs, Errors, Spanned};
use proc_macro2::Span;
use syn::spanned::Spanned as _;
use syn::{Safety, Type};

/// The longest procedure or scope name accepted.
pub(crate) const MAX_NAME_LEN: usize = 128;
/// The longest version accepted.
pub(crate) const MAX_VERSION_LEN: usize = 32;

/// The checked address and options of a procedure.
pub(crate) struct Checked {
    pub(crate) procedure: String,
    pub(crate) scope: String,
    pub(crate) version: String,
    pub(crate) internal: bool,
    pub(crate) auth: bool,
    pub(crate) timeout_ms: Option<u64>,
}

pub(crate) fn check(attrs: Attrs, function: &Function<'_>, errors: &mut Errors) -> Checked {
    check_signature(function, errors);
    let procedure = match attrs.procedure {
        Some(procedure) => checked_name(procedure, "procedure", errors),
        None => {
            errors.spanned(
                Span::call_site(),
                "missing `procedure`: write #[rpc(procedure = \"name\")]",
            );
            String::new()
        }
    };
    let scope = attrs.scope.map_or_else(
        || "global".to_owned(),
        |scope| checked_name(scope, "scope", errors),
    );
    let version = attrs.version.map_or_else(
        || "1".to_owned(),
        |version| checked_version(version, errors),
    );
    let timeout_ms = attrs
        .timeout
        .and_then(|timeout| match parse_duration_ms(&timeout.value) {
            Some(ms) => Some(ms),
            None => {
                errors.spanned(
                timeout.span,
                "`timeout` must be a positive duration such as \"500ms\", \"5s\", \"2m\" or \"1h\"",
            );
                None
            }
        });
    Checked {
        procedure,
        scope,
        version,
        internal: attrs.internal.unwrap_or(false),
        auth: attrs.auth.unwrap_or(false),
        timeout_ms,
    }
}

fn check_signature(function: &Function<'_>, errors: &mut Errors) {
    let sig = &function.item.sig;
    if sig.asyncness.is_none() {
        errors.spanned(sig.fn_token.span, "#[rpc] functions must be `async fn`");
    }
    if let Some(constness) = &sig.constness {
        errors.spanned(constness.span, "#[rpc] functions cannot be `const`");
    }
    if let Safety::Unsafe(unsafety) = &sig.safety {
        errors.spanned(unsafety.span, "#[rpc] functions cannot be `unsafe`");
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(abi.span(), "#[rpc] functions cannot declare an ABI");
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(variadic.span(), "#[rpc] functions cannot be variadic");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "#[rpc] functions cannot be generic: a procedure has one concrete args type and one concrete result type, from which its JSON Schemas are made",
        ));
    }
    if let Some(receiver) = sig.receiver() {
        errors.push(syn::Error::new_spanned(
            receiver,
            "#[rpc] functions cannot take `self`: write a free function",
        ));
    }
    for extra in function.args.iter().skip(1) {
        errors.push(syn::Error::new_spanned(
            &extra.ty,
            "#[rpc] functions take at most one args parameter (plus an optional `Context` and `State<T>` parameters); gather the fields in one struct",
        ));
    }
    for extra in function.contexts.iter().skip(1) {
        errors.push(syn::Error::new_spanned(
            &extra.ty,
            "#[rpc] functions take at most one `Context` parameter",
        ));
    }
    for context in &function.contexts {
        if let Type::Reference(reference) = &*context.ty {
            errors.spanned(
                reference.and_token.span,
                "take `Context` by value: it is a cheap handle, owned by the call",
            );
        }
    }
    let mut seen: Vec<(String, &Type)> = Vec::new();
    for state in &function.states {
        if let Type::Reference(reference) = &*state.param.ty {
            errors.spanned(
                reference.and_token.span,
                "take `State` by value: the server clones the state value for each call",
            );
        }
        let Some(inner) = state.inner else {
            errors.push(syn::Error::new_spanned(
                &state.param.ty,
                "`State` takes one type: write `State<MyState>`",
            ));
            continue;
        };
        let written = quote::ToTokens::to_token_stream(inner).to_string();
        if seen.iter().any(|(earlier, _)| *earlier == written) {
            errors.push(syn::Error::new_spanned(
                inner,
                format_args!(
                    "`State<{written}>` is taken twice; a procedure takes each state type once"
                ),
            ));
        } else {
            seen.push((written, inner));
        }
    }
    for args in &function.args {
        if let Type::ImplTrait(ty) = &*args.ty {
            errors.push(syn::Error::new_spanned(
                ty,
                "#[rpc] args must be a concrete type, not `impl Trait`, so that its JSON Schema is known",
            ));
        }
    }
    if let Output::Plain(Type::ImplTrait(ty)) = &function.output {
        errors.push(syn::Error::new_spanned(
            ty,
            "#[rpc] functions must return a concrete type, not `impl Trait`, so that its JSON Schema is known",
        ));
    }
}

fn checked_name(name: Spanned, key: &str, errors: &mut Errors) -> String {
    if let Err(problem) = valid_name(&name.value) {
        errors.spanned(name.span, format_args!("invalid {key} name: {problem}"));
    }
    name.value
}

fn checked_version(version: Spanned, errors: &mut Errors) -> String {
    if let Err(problem) = valid_version(&version.value) {
        errors.spanned(version.span, format_args!("invalid version: {problem}"));
    }
    version.value
}

/// Procedure and scope names: 1 to 128 characters, ASCII letters, digits and
/// `_ - . : /`, starting with a letter or digit.
fn valid_name(name: &str) -> Result<(), String> {
    let Some(first) = name.chars().next() else {
        return Err("it is empty".into());
    };
    if name.len() > MAX_NAME_LEN {
        return Err(format!("it is longer than {MAX_NAME_LEN} characters"));
    }
    if !first.is_ascii_alphanumeric() {
        return Err(format!(
            "it must start with an ASCII letter or digit, not {first:?}"
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/')))
    {
        Some(c) => Err(format!(
            "{c:?} is not allowed; use ASCII letters, digits and `_ - . : /`"
        )),
        None => Ok(()),
    }
}

/// Versions: 1 to 32 characters, ASCII letters, digits and `_ - .`.
fn valid_version(version: &str) -> Result<(), String> {
    if version.is_empty() {
        return Err("it is empty".into());
    }
    if version.len() > MAX_VERSION_LEN {
        return Err(format!("it is longer than {MAX_VERSION_LEN} characters"));
    }
    match version
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        Some(c) => Err(format!(
            "{c:?} is not allowed; use ASCII letters, digits and `_ - .`"
        )),
        None => Ok(()),
    }
}

/// `"250ms"`, `"5s"`, `"2m"` or `"1h"`, greater than zero.
fn parse_duration_ms(text: &str) -> Option<u64> {
    let (digits, factor) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1_000)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60_000)
    } else if let Some(h) = text.strip_suffix('h') {
        (h, 3_600_000)
    } else {
        return None;
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms = digits.parse::<u64>().ok()?.checked_mul(factor)?;
    (ms > 0).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("login").is_ok());
        assert!(valid_name("user.get-by_id:v/x").is_ok());
        assert!(valid_name("").is_err());
        assert!(valid_name("-x").is_err());
        assert!(valid_name("a b").is_err());
        assert!(valid_name(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(valid_version("2.1-beta").is_ok());
        assert!(valid_version("2/1").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("250ms"), Some(250));
        assert_eq!(parse_duration_ms("5s"), Some(5_000));
        assert_eq!(parse_duration_ms("2m"), Some(120_000));
        assert_eq!(parse_duration_ms("1h"), Some(3_600_000));
        assert_eq!(parse_duration_ms("0s"), None);
        assert_eq!(parse_duration_ms("s"), None);
        assert_eq!(parse_duration_ms("5 s"), None);
        assert_eq!(parse_duration_ms("-5s"), None);
    }
}
