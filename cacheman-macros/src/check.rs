//! Checks of the attribute against the function it decorates, producing spanned errors with
//! the fix, and the plan that `expand` follows: the key and value types and how they are made.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{
    FnArg, GenericArgument, GenericParam, Ident, ItemFn, Pat, PathArguments, ReturnType, Type,
};

use crate::key::{Key, View, bind_args};
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
    /// The spans of `name = ".."` / `manager = ".."`, where a name that breaks the rule is
    /// reported (by the runtime's const check).
    pub(crate) name_spans: Vec<(&'static str, syn::LitStr)>,
    pub(crate) key_type: Type,
    pub(crate) key_expr: TokenStream,
    /// `None` with `key = ...`: the key is built, then looked up.
    pub(crate) view: Option<View>,
    pub(crate) value_type: Type,
    /// `with_cached_flag`: the function returns `Return<value_type>` inside its mode's wrapper.
    pub(crate) flag: bool,
    /// `result_fallback`: on `Err`, the expired value still held is served.
    pub(crate) fallback: bool,
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
    let flag = args.with_cached_flag.is_some();
    let value_type = match value_type {
        Some(ty) if flag => first_type_argument(&ty, Some("Return")).or_else(|| {
            let shape = match mode {
                Mode::Plain => "Return<T>",
                Mode::Result => "Result<Return<T>, E>",
                Mode::Option => "Option<Return<T>>",
            };
            errors.push(
                ty.span(),
                format!(
                    "`with_cached_flag` says whether the value came from the cache in a \
                     `cacheman::Return<T>`: declare `-> {shape}` and return \
                     `Return::new(value)` from the body"
                ),
            );
            None
        }),
        other => other,
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
    if let Some(store) = &args.store {
        match store.value().as_str() {
            "redis" | "files" => {}
            other => errors.push(
                store.span(),
                format!(
                    "unknown store {other:?}: `store = \"redis\"` keeps the cache on the Redis \
                     server named by CACHEMAN_REDIS_URL (cacheman's `redis` feature), \
                     `store = \"files\"` (the default) in a file"
                ),
            ),
        }
        if store.value() == "redis"
            && let Some(persistent) = args.persistent.as_ref().filter(|p| !p.value)
        {
            errors.push(
                persistent.span(),
                "a cache on Redis is persistent: leave out `persistent = false`, or the \
                 `store = \"redis\"` to keep the cache in memory",
            );
        }
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
    // Names are checked by the runtime's own rule, in a `const` the expansion emits.
    let mut name_spans = Vec::new();
    for (kind, lit) in [("cache", &args.name), ("manager", &args.manager)] {
        if let Some(lit) = lit {
            name_spans.push((kind, lit.clone()));
        }
    }

    let own_name = args
        .name
        .as_ref()
        .map_or_else(|| func.sig.ident.to_string(), |n| n.value());
    let mut dependency_names = Vec::new();
    let mut dependency_decls = Vec::new();
    for dependency in &args.depends_on {
        match dependency {
            // #[cached(name = "a", depends_on = "a")]
            Dependency::Name(lit) if lit.value() == own_name => errors.push(
                lit.span(),
                format!(
                    "cache `{own_name}` cannot depend on itself; remove it from `depends_on` \
                     (a function that calls itself records that on its own)"
                ),
            ),
            // #[cached] fn f(..) with `depends_on = f`
            Dependency::Function(path)
                if path.segments.len() == 1 && path.segments[0].ident == func.sig.ident =>
            {
                errors.push(
                    path.span(),
                    format!(
                        "`{}` cannot depend on itself; remove it from `depends_on` (a function \
                         that calls itself records that on its own)",
                        func.sig.ident
                    ),
                )
            }
            Dependency::Name(lit) => {
                name_spans.push(("cache", lit.clone()));
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
    let Key {
        ty: key_type,
        expr: key_expr,
        view,
    } = key.expect("no errors means the key was planned");
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
        name_spans,
        key_type,
        key_expr,
        view,
        value_type,
        flag,
        fallback: args.result_fallback.is_some(),
        return_type,
        mode,
        args: args_plan,
        dependency_names,
        dependency_decls,
    })
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

pub(crate) fn find_self(tokens: TokenStream) -> Option<Span> {
    find_ident(tokens, "Self")
}

pub(crate) fn find_ident(tokens: TokenStream, name: &str) -> Option<Span> {
    tokens.into_iter().find_map(|tt| match tt {
        TokenTree::Ident(i) if i == name => Some(i.span()),
        TokenTree::Group(g) => find_ident(g.stream(), name),
        _ => None,
    })
}

/// Spanned errors collected into one.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, span: Span, message: impl std::fmt::Display) {
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
