//! Code generation: the cached function, its `_cache()` handle, its `_uncached` body and the
//! hidden declaration that `depends_on = path` resolves to.

use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{AttrStyle, Attribute, FnArg, ItemFn, Signature};

use crate::calls;
use crate::check::{self, Mode, Plan};
use crate::parse::{self, Args};

/// Expands `#[cached(attr)] item`. On any error the function is emitted unchanged beside the
/// errors, so the user sees them and not a cascade of "cannot find function" at call sites.
pub(crate) fn cached(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let err = syn::Error::new_spanned(
                &item,
                "#[cached] goes on a function (`fn`, `async fn`, or a method in an `impl` block)",
            )
            .to_compile_error();
            return quote!(#err #item);
        }
    };
    // Inner attributes of the body apply to the whole function: move them out of the body.
    for attr in &mut func.attrs {
        attr.style = AttrStyle::Outer;
    }
    let (args, parse_errors) = parse::parse_args(attr);
    let checked = check::check(&args, &func);
    match (parse_errors, checked) {
        (None, Ok(plan)) => expand(&args, &plan, &func),
        (Some(mut err), Err(more)) => {
            err.combine(more);
            fallback(err, &func)
        }
        (Some(err), Ok(_)) | (None, Err(err)) => fallback(err, &func),
    }
}

fn fallback(err: syn::Error, func: &ItemFn) -> TokenStream {
    let err = err.to_compile_error();
    quote!(#err #func)
}

fn expand(args: &Args, plan: &Plan, func: &ItemFn) -> TokenStream {
    let vis = &func.vis;
    let ident = &func.sig.ident;
    let cache_fn = format_ident!("{}_cache", ident);
    let uncached_fn = format_ident!("{}_uncached", ident);
    let decl_const = format_ident!("__cacheman_decl_{}", ident);
    let (key_type, value_type) = (&plan.key_type, &plan.value_type);
    let block = &func.block;
    let attrs = &func.attrs;
    let lint_attrs: Vec<&Attribute> = func.attrs.iter().filter(|a| is_carried(a)).collect();

    let persistent = args.persistent.as_ref().is_none_or(|b| b.value);
    let decl = declaration(args, plan, func, persistent);
    // Spanned at the value type: a type without serde gets the `Persistable` hint there,
    // once however many generated items open the cache.
    let open = if persistent {
        quote_spanned!(value_type.span()=> ::cacheman::__private::open_persistent)
    } else {
        quote!(::cacheman::__private::open_memory)
    };
    // `store = "redis"` without cacheman's `redis` feature: a compile error at the literal.
    let store_check = args
        .store
        .as_ref()
        .filter(|s| s.value() == "redis")
        .map(|s| quote_spanned!(s.span()=> const _: () = ::cacheman::__private::redis_store_available();));
    // A `OnceLock` rather than a `LazyLock`: if opening panics (a failed declaration check),
    // the next call tries again and panics with the same message, not "poisoned".
    let statics = quote! {
        static __CACHEMAN_CACHE: ::cacheman::__private::OnceLock<
            ::cacheman::Cache<#key_type, #value_type>,
        > = ::cacheman::__private::OnceLock::new();
        const __CACHEMAN_DECL: ::cacheman::__private::Declaration = #decl;
        let __cacheman_cache = __CACHEMAN_CACHE.get_or_init(|| {
            #open::<#key_type, #value_type>(&__CACHEMAN_DECL)
        });
    };

    let rebinds: Vec<TokenStream> = plan
        .args
        .iter()
        .filter_map(|arg| {
            let pat = arg.rebind.as_ref()?;
            let binding = &arg.binding;
            Some(quote!(let #pat = #binding;))
        })
        .collect();
    // Braces of our own only when there is something to put before the body: `{ { expr } }`
    // would trip the `unused_braces` lint on the user's code where spans are not marked as
    // coming from a macro (functions brought in by `include!`, for one).
    let body = if rebinds.is_empty() {
        quote!(#block)
    } else {
        quote!({ #(#rebinds)* #block })
    };
    let is_async = func.sig.asyncness.is_some();
    let call = calls::cached_call(plan, &body, is_async);
    let refresh = calls::refresh_call(plan, &body, is_async);
    let peek = calls::peek_call(plan);
    let wrapper_sig = wrapper_signature(&func.sig, plan);
    let mut uncached_sig = func.sig.clone();
    uncached_sig.ident = uncached_fn.clone();
    let mut refresh_sig = wrapper_sig.clone();
    refresh_sig.ident = format_ident!("{}_refresh", ident);
    let mut peek_sig = wrapper_sig.clone();
    peek_sig.ident = format_ident!("{}_peek", ident);
    peek_sig.asyncness = None;
    peek_sig.output = syn::parse_quote!(-> ::core::option::Option<#value_type>);

    // Names break the runtime's one rule at compile time, spanned at the literal.
    let name_checks = plan.name_spans.iter().map(|(_, lit)| {
        quote_spanned! {lit.span()=>
            const _: () = ::cacheman::__private::assert_valid_name(#lit);
        }
    });

    // The function path first, so a typo gets rustc's "cannot find" with its suggestion.
    let dependencies = plan.dependency_decls.iter().map(|dep| {
        let (function, decl) = (&dep.function, &dep.decl);
        quote_spanned! {function.span()=>
            const _: () = {
                let _ = #function;
                ::cacheman::__private::assert_same_manager(&#decl, __CACHEMAN_DECL.manager)
            };
        }
    });
    let cache_doc = format!(
        " The cache of `{ident}` (cache `{}`): clear, invalidate, save or inspect it.\n\n \
         Every call returns a handle to the same cache; methods share one cache across \
         instances.",
        plan.cache_name
    );
    let uncached_doc = format!(" Runs the body of `{ident}` without the cache.");
    let refresh_doc = format!(
        " Runs the body of `{ident}` whatever the cache holds, stores the value and returns \
         it: for a value known to be stale.{}",
        match plan.mode {
            Mode::Plain => "",
            Mode::Result => " An `Err` is returned and the cache keeps what it held.",
            Mode::Option => " A `None` is returned and the cache keeps what it held.",
        }
    );
    let peek_doc = format!(
        " The value `{ident}` has cached for these arguments, if any, without running its \
         body. Counts neither a hit nor a miss."
    );

    quote! {
        #(#attrs)*
        #vis #wrapper_sig {
            #(#name_checks)*
            #(#dependencies)*
            #statics
            #call
        }

        #[doc = #refresh_doc]
        #[allow(dead_code)]
        #(#lint_attrs)*
        #vis #refresh_sig {
            #statics
            #refresh
        }

        #[doc = #peek_doc]
        // An argument read (or changed) only by the body is unused here, and rightly so.
        #[allow(dead_code, unused_variables, unused_mut)]
        #(#lint_attrs)*
        #vis #peek_sig {
            #statics
            #peek
        }

        #[doc = #cache_doc]
        #[allow(dead_code)]
        #(#lint_attrs)*
        #vis fn #cache_fn() -> ::cacheman::Cache<#key_type, #value_type> {
            #store_check
            #statics
            ::cacheman::__private::inventory::submit! { #decl }
            ::core::clone::Clone::clone(__cacheman_cache)
        }

        #[doc = #uncached_doc]
        // An argument read only by `key = ...` is unused here, and rightly so.
        #[allow(dead_code, unused_variables)]
        #(#lint_attrs)*
        #vis #uncached_sig #block

        #[doc(hidden)]
        #[allow(dead_code, non_upper_case_globals)]
        #(#lint_attrs)*
        #vis const #decl_const: ::cacheman::__private::Declaration = #decl;
    }
}

/// The `Declaration` constant of this function.
fn declaration(args: &Args, plan: &Plan, func: &ItemFn, persistent: bool) -> TokenStream {
    let cache = &plan.cache_name;
    let manager = &plan.manager;
    let deps = &plan.dependency_names;
    let function = func.sig.ident.to_string();
    let (key_type_tokens, value_type_tokens) = (&plan.key_type, &plan.value_type);
    let key_type = plan.key_type.to_token_stream().to_string();
    let value_type = plan.value_type.to_token_stream().to_string();
    let fingerprint = fingerprint(args, func);
    // Unsuffixed, so `capacity = 10u8` still fits the declaration's field types.
    let optional =
        |lit: &Option<syn::LitInt>| match lit.as_ref().and_then(|n| n.base10_parse().ok()) {
            Some(n) => {
                let n = proc_macro2::Literal::u64_unsuffixed(n);
                quote!(::core::option::Option::Some(#n))
            }
            None => quote!(::core::option::Option::None),
        };
    let (capacity, ttl) = (optional(&args.capacity), optional(&args.ttl_secs));
    let refresh = args.refresh.as_ref().is_some_and(|b| b.value);
    let keep_expired = args.result_fallback.is_some();
    // A `fn` of the concrete types that picks, by autoref specialization, the serde way of
    // opening a typed view or none: a type without serde gets no error here (the cache's
    // opening reports it, once).
    let view = if persistent {
        quote!({
            fn __cacheman_view(
                decl: &::cacheman::__private::Declaration,
            ) -> ::core::result::Result<
                ::std::boxed::Box<dyn ::cacheman::inspect::TypedView>,
                ::cacheman::Error,
            > {
                #[allow(unused_imports)]
                use ::cacheman::__private::{ViaNothing as _, ViaSerde as _};
                (&::cacheman::__private::ViewOf::<#key_type_tokens, #value_type_tokens>::NEW)
                    .open_view(decl)
            }
            ::core::option::Option::Some(__cacheman_view as ::cacheman::__private::OpenView)
        })
    } else {
        quote!(::core::option::Option::None)
    };
    let redis = args.store.as_ref().is_some_and(|s| s.value() == "redis");
    quote! {
        ::cacheman::__private::Declaration {
            cache: #cache,
            manager: #manager,
            depends_on: &[#(#deps),*],
            function: ::core::concat!(::core::module_path!(), "::", #function),
            location: ::core::concat!(::core::file!(), ":", ::core::line!()),
            key_type: #key_type,
            value_type: #value_type,
            key_type_id: ::core::any::TypeId::of::<#key_type_tokens>,
            value_type_id: ::core::any::TypeId::of::<#value_type_tokens>,
            fn_fingerprint: #fingerprint,
            persistent: #persistent,
            capacity: #capacity,
            ttl_secs: #ttl,
            refresh: #refresh,
            keep_expired: #keep_expired,
            view: #view,
            redis: #redis,
        }
    }
}

/// FNV-1a of the signature, the body, and the arguments that change what is cached. Doc
/// comments and other attributes are left out: editing them keeps the saved entries.
fn fingerprint(args: &Args, func: &ItemFn) -> u64 {
    let text = format!(
        "{}\n{}\n{}",
        func.sig.to_token_stream(),
        func.block.to_token_stream(),
        args.fingerprint_tokens
    );
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The user's signature, with each argument that is not a plain name bound to a generated
/// one (its pattern is rebound inside the body).
fn wrapper_signature(sig: &Signature, plan: &Plan) -> Signature {
    let mut sig = sig.clone();
    let mut bound = plan.args.iter();
    for input in &mut sig.inputs {
        if let FnArg::Typed(pat_type) = input
            && let Some(arg) = bound.next()
            && arg.rebind.is_some()
        {
            let binding = &arg.binding;
            *pat_type.pat = syn::parse_quote!(#binding);
        }
    }
    sig
}

/// Attributes the generated items share with the function: conditional compilation and lint
/// levels.
fn is_carried(attr: &Attribute) -> bool {
    ["cfg", "cfg_attr", "allow", "warn", "deny", "forbid"]
        .iter()
        .any(|name| attr.path().is_ident(name))
}
