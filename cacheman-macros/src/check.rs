//! Checks of the attribute against the function it decorates, producing spanned errors with
//! the fix, and the plan that `expand` follows: the key and value types and how they are made.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{
    Expr, FnArg, GenericArgument, GenericParam, Ident, ItemFn, Pat, PathArguments, ReturnType, Type,
};

use crate::parse::{Args, Dependency};

/// What is cached: the whole return value, or the `Ok` / `Some` inside it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Plain,
    Result,
    Option,
}

/// One argument of the function as the generated wrapper binds it.
pub(crate) struct Arg {
    /// The name the wrapper's signature binds it to.
    pub(crate) binding: Ident,
    /// The user's pattern when it is not a plain name, rebound inside the body.
    pub(crate) rebind: Option<Pat>,
}

/// A `depends_on` path: the function as written, and its hidden declaration.
pub(crate) struct Dependent {
    pub(crate) function: syn::Path,
    pub(crate) decl: syn::Path,
}

/// Everything `expand` needs, all checked.
pub(crate) struct Plan {
    pub(crate) cache_name: String,
    pub(crate) manager: TokenStream,
    pub(crate) key_type: Type,
    pub(crate) key_expr: TokenStream,
    pub(crate) value_type: Type,
    pub(crate) return_type: Type,
    pub(crate) mode: Mode,
    pub(crate) args: Vec<Arg>,
    /// Expressions giving the names of the caches this one depends on.
    pub(crate) dependency_names: Vec<TokenStream>,
    /// The `#[cached]` functions this one depends on.
    pub(crate) dependency_decls: Vec<Dependent>,
}

/// Checks `args` against `func`, returning every problem at once.
pub(crate) fn check(args: &Args, func: &ItemFn) -> syn::Result<Plan> {
    let mut errors = Errors::default();
    let sig = &func.sig;

    for param in &sig.generics.params {
        match param {
            GenericParam::Lifetime(_) => {}
            GenericParam::Type(_) | GenericParam::Const(_) => errors.push(
                param.span(),
                format!(
                    "#[cached] cannot cache a generic function: one cache holds one key type \
                     and one value type\n\
                     help: keep `{name}` generic and cache a monomorphic wrapper instead:\n    \
                     #[cached]\n    fn {name}_u64(x: u64) -> u64 {{ {name}(x) }}",
                    name = sig.ident
                ),
            ),
        }
    }
    if let Some(constness) = &sig.constness {
        errors.push(
            constness.span(),
            "#[cached] cannot decorate a `const fn`: a cache is runtime state; remove `const`",
        );
    }

    for input in &sig.inputs {
        if let FnArg::Typed(pat_type) = input
            && let Some(span) = find_impl_trait(&pat_type.ty)
        {
            errors.push(
                span,
                format!(
                    "#[cached] cannot cache a function with an `impl Trait` argument: the key \
                     needs one concrete type\n\
                     help: take a concrete type, or cache a monomorphic wrapper:\n    \
                     #[cached]\n    fn {name}_str(x: &str) -> ... {{ {name}(x) }}",
                    name = sig.ident
                ),
            );
        }
    }

    let return_type = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    if let Some(span) = find_impl_trait(&return_type) {
        errors.push(
            span,
            "#[cached] cannot cache an `impl Trait` return value: the cache needs a concrete, \
             `Clone` value type; return a concrete type (e.g. `Vec<T>` instead of `impl Iterator`)",
        );
    } else if let Some(span) = find_reference(&return_type) {
        errors.push(
            span,
            "#[cached] values are stored and returned by clone, so they cannot borrow: \
             return an owned type (`String` for `&str`, `Vec<T>` for `&[T]`, `Arc<T>` for a \
             big shared value)",
        );
    }

    let mode = match (&args.result, &args.option) {
        (Some(_), Some(option)) => {
            errors.push(
                option.span(),
                "`result` and `option` cannot be combined: choose `result` to cache only `Ok` \
                 values, or `option` to cache only `Some` values",
            );
            Mode::Plain
        }
        (Some(_), None) => Mode::Result,
        (None, Some(_)) => Mode::Option,
        (None, None) => Mode::Plain,
    };
    let value_type = match mode {
        Mode::Plain => Some(return_type.clone()),
        Mode::Result => first_type_argument(&return_type, None).or_else(|| {
            errors.push(
                return_type.span(),
                "`result` caches the `T` of a `Result<T, E>`: the function must return \
                 `Result<T, E>` (or an alias like `io::Result<T>`)",
            );
            None
        }),
        Mode::Option => first_type_argument(&return_type, Some("Option")).or_else(|| {
            errors.push(
                return_type.span(),
                "`option` caches the `T` of an `Option<T>`: the function must return `Option<T>`",
            );
            None
        }),
    };
    if let Some(value_type) = &value_type
        && let Some(span) = find_self(value_type.to_token_stream())
    {
        errors.push(
            span,
            "#[cached] cannot name `Self` in the value type (the cache is a `static`): write the \
             type's name instead",
        );
    }

    if let Some(capacity) = &args.capacity
        && capacity.base10_parse::<u64>().ok() == Some(0)
    {
        errors.push(
            capacity.span(),
            "`capacity = 0` could hold nothing: give at least 1, or leave `capacity` out for an \
             unbounded cache",
        );
    }
    if let Some(ttl) = &args.ttl_secs
        && ttl.base10_parse::<u64>().ok() == Some(0)
    {
        errors.push(
            ttl.span(),
            "`ttl_secs = 0` would expire every entry at once: give at least 1, or leave \
             `ttl_secs` out",
        );
    }
    if let Some(refresh) = &args.refresh
        && refresh.value
        && args.ttl_secs.is_none()
    {
        errors.push(
            refresh.span(),
            "`refresh = true` restarts an entry's time-to-live on each hit, and there is none: \
             add `ttl_secs = N`, or leave `refresh` out",
        );
    }
    if let Some(fallback) = &args.result_fallback {
        if args.result.is_none() {
            errors.push(
                fallback.span(),
                "`result_fallback` serves the last value when the body returns `Err`: it needs \
                 `result` (and a function returning `Result<T, E>`)",
            );
        }
        if args.ttl_secs.is_none() {
            errors.push(
                fallback.span(),
                "`result_fallback` serves an expired value when the body fails, and without \
                 `ttl_secs` nothing expires (a held value is a hit): add `ttl_secs = N`",
            );
        }
    }
    for (kind, lit) in [("cache", &args.name), ("manager", &args.manager)] {
        if let Some(lit) = lit
            && let Some(reason) = bad_name(&lit.value())
        {
            errors.push(
                lit.span(),
                format!(
                    "invalid {kind} name {:?}: {reason}; use a non-empty name of letters, \
                     digits, `_`, `-` and `.` that does not start with `.`",
                    lit.value()
                ),
            );
        }
    }

    let mut dependency_names = Vec::new();
    let mut dependency_decls = Vec::new();
    for dependency in &args.depends_on {
        match dependency {
            Dependency::Name(lit) => {
                if let Some(reason) = bad_name(&lit.value()) {
                    errors.push(
                        lit.span(),
                        format!(
                            "invalid cache name {:?} in `depends_on`: {reason}",
                            lit.value()
                        ),
                    );
                }
                dependency_names.push(lit.to_token_stream());
            }
            Dependency::Function(path) => {
                if path.segments.first().is_some_and(|s| s.ident == "Self") {
                    errors.push(
                        path.span(),
                        "`depends_on` cannot start with `Self` (the declaration is a `static` \
                         outside the impl): write the type's name, e.g. `Report::raw`",
                    );
                    continue;
                }
                let mut decl = path.clone();
                let last = decl
                    .segments
                    .last_mut()
                    .expect("a parsed path has a segment");
                last.ident =
                    format_ident!("__cacheman_decl_{}", last.ident, span = last.ident.span());
                dependency_names.push(quote_spanned!(path.span()=> #decl.cache));
                dependency_decls.push(Dependent {
                    function: path.clone(),
                    decl,
                });
            }
        }
    }

    let (args_plan, key) = bind_args(func, args, &mut errors);
    errors.finish()?;
    let (key_type, key_expr) = key.expect("no errors means the key was planned");
    let value_type = value_type.expect("no errors means the value type is known");
    Ok(Plan {
        cache_name: args
            .name
            .as_ref()
            .map_or_else(|| sig.ident.to_string(), |n| n.value()),
        manager: match &args.manager {
            Some(m) => m.to_token_stream(),
            None => quote!(::cacheman::DEFAULT_MANAGER),
        },
        key_type,
        key_expr,
        value_type,
        return_type,
        mode,
        args: args_plan,
        dependency_names,
        dependency_decls,
    })
}

/// How the wrapper binds each argument, and the key's type and expression.
fn bind_args(
    func: &ItemFn,
    args: &Args,
    errors: &mut Errors,
) -> (Vec<Arg>, Option<(Type, TokenStream)>) {
    let mut bound = Vec::new();
    // (name, type) of every non-receiver argument.
    let mut typed = Vec::new();
    for (i, input) in func.sig.inputs.iter().enumerate() {
        let FnArg::Typed(pat_type) = input else {
            continue;
        };
        let arg = match &*pat_type.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => Arg {
                binding: p.ident.clone(),
                rebind: None,
            },
            other => Arg {
                binding: format_ident!("__cacheman_arg{}", i),
                rebind: Some(other.clone()),
            },
        };
        typed.push((arg.binding.clone(), (*pat_type.ty).clone()));
        bound.push(arg);
    }

    let owned = |name: &Ident, ty: &Type| -> (Type, TokenStream) {
        match ty {
            Type::Reference(r) => {
                let inner = &r.elem;
                let owned_ty = match &**inner {
                    Type::Path(p) if p.path.is_ident("str") => {
                        syn::parse_quote!(::std::string::String)
                    }
                    Type::Slice(s) => {
                        let elem = &s.elem;
                        syn::parse_quote!(::std::vec::Vec<#elem>)
                    }
                    _ => syn::parse_quote!(<#inner as ::std::borrow::ToOwned>::Owned),
                };
                (owned_ty, quote!(::std::borrow::ToOwned::to_owned(#name)))
            }
            _ => (ty.clone(), quote!(::std::clone::Clone::clone(&#name))),
        }
    };
    let tuple = |parts: Vec<(Type, TokenStream)>| -> (Type, TokenStream) {
        let (types, exprs): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
        (syn::parse_quote!((#(#types,)*)), quote!((#(#exprs,)*)))
    };
    let find = |ident: &Ident| typed.iter().find(|(n, _)| n == ident);

    let key = match (&args.key, &args.key_type) {
        (None, Some(ty)) => {
            errors.push(
                ty.span(),
                "`key_type` goes with `key = <expr>`: give the expression that makes the key, \
                 or leave both out to key on every argument",
            );
            None
        }
        (None, None) => {
            let parts = typed.iter().map(|(n, t)| owned(n, t)).collect();
            Some(tuple(parts))
        }
        (Some(expr), Some(ty)) => Some((ty.clone(), expr.to_token_stream())),
        (Some(expr), None) => {
            // `key = id` or `key = (a, b)` over plain arguments: the type is known.
            let named = |e: &Expr| match e {
                Expr::Path(p) if p.qself.is_none() => p.path.get_ident().and_then(find),
                _ => None,
            };
            let derived = match expr {
                Expr::Tuple(t) => t
                    .elems
                    .iter()
                    .map(|e| named(e).map(|(n, ty)| owned(n, ty)))
                    .collect::<Option<Vec<_>>>()
                    .map(tuple),
                other => named(other).map(|(n, ty)| owned(n, ty)),
            };
            if derived.is_none() {
                errors.push(
                    expr.span(),
                    "the type of this key expression cannot be known from the signature: add \
                     `key_type = <type>` (e.g. `key = format!(\"{a}/{b}\"), key_type = String`); \
                     only an argument or a tuple of arguments needs none",
                );
            }
            derived
        }
    };
    // A key made from the signature cannot own a trait object; one from `key_type` is the
    // user's to choose.
    if args.key_type.is_none()
        && let Some((ty, _)) = &key
        && let Some(span) = find_ident(ty.to_token_stream(), "dyn")
    {
        errors.push(
            span,
            "a `dyn Trait` argument cannot be part of the key (the key is an owned, hashable \
             copy of the arguments): leave it out with `key = (other, args)`, or give \
             `key = <expr>, key_type = <type>`",
        );
    }
    if let Some((ty, _)) = &key
        && let Some(span) = find_self(ty.to_token_stream())
    {
        errors.push(
            span,
            "#[cached] cannot name `Self` in the key type (the cache is a `static`): write the \
             type's name instead",
        );
    }
    (bound, key)
}

/// The first type argument of the return type's last segment (`T` of `Result<T, E>`), if the
/// segment is `expected` (when given).
fn first_type_argument(ty: &Type, expected: Option<&str>) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if expected.is_some_and(|e| last.ident != e) {
        return None;
    }
    let PathArguments::AngleBracketed(generics) = &last.arguments else {
        return None;
    };
    generics.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    })
}

fn find_impl_trait(ty: &Type) -> Option<Span> {
    struct Finder(Option<Span>);
    impl Visit<'_> for Finder {
        fn visit_type_impl_trait(&mut self, node: &syn::TypeImplTrait) {
            self.0.get_or_insert(node.span());
        }
    }
    let mut finder = Finder(None);
    finder.visit_type(ty);
    finder.0
}

fn find_reference(ty: &Type) -> Option<Span> {
    struct Finder(Option<Span>);
    impl Visit<'_> for Finder {
        fn visit_type_reference(&mut self, node: &syn::TypeReference) {
            self.0.get_or_insert(node.span());
        }
    }
    let mut finder = Finder(None);
    finder.visit_type(ty);
    finder.0
}

fn find_self(tokens: TokenStream) -> Option<Span> {
    find_ident(tokens, "Self")
}

fn find_ident(tokens: TokenStream, name: &str) -> Option<Span> {
    tokens.into_iter().find_map(|tt| match tt {
        TokenTree::Ident(i) if i == name => Some(i.span()),
        TokenTree::Group(g) => find_ident(g.stream(), name),
        _ => None,
    })
}

/// The runtime's rules for cache and manager names, checked at compile time.
fn bad_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 200 {
        Some("it is longer than 200 bytes")
    } else if name.starts_with('.') {
        Some("it starts with `.`")
    } else if name.contains(['/', '\\']) {
        Some("it contains a path separator")
    } else if name.chars().any(char::is_control) {
        Some("it contains a control character")
    } else {
        None
    }
}

/// Spanned errors collected into one.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, span: Span, message: impl std::fmt::Display) {
        let err = syn::Error::new(span, message);
        match &mut self.0 {
            Some(all) => all.combine(err),
            None => self.0 = Some(err),
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}
