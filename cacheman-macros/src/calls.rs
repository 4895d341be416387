//! The bodies of the generated functions: the cached call (lookup by borrowed arguments, then
//! the miss), `<fn>_refresh` and `<fn>_peek`, for each mode, sync and async, with or without
//! `with_cached_flag`.

use proc_macro2::TokenStream;
use quote::quote;

use crate::check::{Mode, Plan};

/// `let __cacheman_found: Option<V> = ...;`, the lookup of a call. With a `key = ...`
/// expression the key is built first (and left in `__cacheman_key` for the miss).
pub(crate) fn lookup(plan: &Plan, counting: bool) -> TokenStream {
    let (key_type, key_expr) = (&plan.key_type, &plan.key_expr);

    match &plan.view {
        Some(view) => {
            let (expr, eq) = (&view.expr, &view.eq);
            quote! {
                let __cacheman_found = ::cacheman::__private::lookup(
                    __cacheman_cache,
                    #counting,
                    #expr,
                    |__cacheman_k: &#key_type| #eq,
                );
            }
        }
        None => quote! {
            let __cacheman_key: #key_type = #key_expr;
            let __cacheman_found = ::cacheman::__private::lookup(
                __cacheman_cache,
                #counting,
                &__cacheman_key,
                |__cacheman_k: &#key_type| *__cacheman_k == __cacheman_key,
            );
        },
    }
}

/// The counted lookup of an async call: as [`lookup`], but a map miss on a shared store
/// (Redis) awaits its fetch on cacheman's offload pool instead of blocking the executor's
/// thread. The view is built again after the wait, so that nothing borrowed from the
/// arguments is held across it (the call's future stays `Send` whatever the view is).
fn lookup_async(plan: &Plan) -> TokenStream {
    let (key_type, key_expr) = (&plan.key_type, &plan.key_expr);
    let (build_key, view, eq) = match &plan.view {
        Some(view) => (quote!(), view.expr.clone(), view.eq.clone()),
        None => (
            quote!(let __cacheman_key: #key_type = #key_expr;),
            quote!(&__cacheman_key),
            quote!(*__cacheman_k == __cacheman_key),
        ),
    };
    quote! {
        #build_key
        let __cacheman_looked = ::cacheman::__private::lookup_or_fetch(
            __cacheman_cache,
            #view,
            |__cacheman_k: &#key_type| #eq,
        );
        let __cacheman_found = match __cacheman_looked {
            ::cacheman::__private::Looked::Done(__cacheman_found) => __cacheman_found,
            ::cacheman::__private::Looked::Fetch(__cacheman_fetching) => {
                let __cacheman_landing = __cacheman_fetching.await;
                ::cacheman::__private::land(
                    __cacheman_cache,
                    __cacheman_landing,
                    #view,
                    |__cacheman_k: &#key_type| #eq,
                )
            }
        };
    }
}

/// Builds the owned key for the miss path, unless the lookup already did.
fn make_key(plan: &Plan) -> TokenStream {
    let (key_type, key_expr) = (&plan.key_type, &plan.key_expr);
    match plan.view {
        Some(_) => quote!(let __cacheman_key: #key_type = #key_expr;),
        None => quote!(),
    }
}

/// The body of the cached function after its statics: look up, and on a miss compute.
pub(crate) fn cached_call(plan: &Plan, body: &TokenStream, is_async: bool) -> TokenStream {
    let lookup = if is_async {
        lookup_async(plan)
    } else {
        lookup(plan, true)
    };
    let make_key = make_key(plan);
    let hit = wrap_mode(
        plan.mode,
        wrap_flag(plan.flag, quote!(__cacheman_value), true),
    );
    let ran = if plan.flag {
        quote!(let __cacheman_ran = &::core::sync::atomic::AtomicBool::new(false);)
    } else {
        quote!()
    };
    let note_run = if plan.flag {
        quote!(__cacheman_ran.store(true, ::core::sync::atomic::Ordering::Relaxed);)
    } else {
        quote!()
    };
    let computed = quote!(::core::sync::atomic::AtomicBool::load(
        __cacheman_ran,
        ::core::sync::atomic::Ordering::Relaxed
    ));
    let miss = compute(plan, body, is_async, &note_run, false);
    let miss = finish(plan, miss, quote!(!#computed));
    quote! {
        #lookup
        match __cacheman_found {
            ::core::option::Option::Some(__cacheman_value) => #hit,
            ::core::option::Option::None => {
                #make_key
                #ran
                #miss
            }
        }
    }
}

/// The body of `<fn>_refresh`: compute whatever the cache holds, store, return.
pub(crate) fn refresh_call(plan: &Plan, body: &TokenStream, is_async: bool) -> TokenStream {
    let (key_type, key_expr) = (&plan.key_type, &plan.key_expr);
    let call = compute(plan, body, is_async, &quote!(), true);
    let call = finish(plan, call, quote!(false));
    quote! {
        let __cacheman_key: #key_type = #key_expr;
        #call
    }
}

/// The body of `<fn>_peek`: the cached value, if any, counting neither a hit nor a miss.
pub(crate) fn peek_call(plan: &Plan) -> TokenStream {
    let lookup = lookup(plan, false);
    quote! {
        #lookup
        __cacheman_found
    }
}

/// A call of `__private::compute` (or `compute_async`) with the body as the computation,
/// for a miss or, with `refresh`, for `<fn>_refresh`, giving `Result<V, E>` (`E` is
/// `Infallible` for a plain function, `()` for an `option` one).
fn compute(
    plan: &Plan,
    body: &TokenStream,
    is_async: bool,
    note_run: &TokenStream,
    refresh: bool,
) -> TokenStream {
    let return_type = &plan.return_type;
    let flag = plan.flag;
    // The body's outcome as `Result<V, E>`, the value taken out of its `Return` if flagged.
    let as_result = |outcome: TokenStream| match (plan.mode, flag) {
        (Mode::Plain, false) => {
            quote!(::core::result::Result::<_, ::core::convert::Infallible>::Ok(#outcome))
        }
        (Mode::Plain, true) => quote! {
            ::core::result::Result::<_, ::core::convert::Infallible>::Ok((#outcome).value)
        },
        (Mode::Result, false) => outcome,
        (Mode::Result, true) => {
            quote!(::core::result::Result::map(#outcome, |__cacheman_r| __cacheman_r.value))
        }
        (Mode::Option, false) => quote!(::core::option::Option::ok_or(#outcome, ())),
        (Mode::Option, true) => quote! {
            ::core::option::Option::ok_or(
                ::core::option::Option::map(#outcome, |__cacheman_r| __cacheman_r.value),
                (),
            )
        },
    };
    // `result_fallback`: a miss whose body fails serves the expired value still held.
    let fallback = plan.fallback && !refresh;
    if !is_async {
        let outcome = as_result(quote!(__cacheman_body()));
        let (run, flag) = if fallback {
            (quote!(compute_or_fall_back), quote!())
        } else {
            (quote!(compute), quote!(#refresh,))
        };
        return quote! {{
            // `mut`: a body that changes its arguments makes the closure `FnMut`.
            #[allow(unused_mut)]
            let mut __cacheman_body = move || -> #return_type #body;
            ::cacheman::__private::#run(__cacheman_cache, __cacheman_key, #flag move || {
                #note_run
                #outcome
            })
        }};
    }
    let outcome = as_result(quote!(__cacheman_future.await));
    let future = quote! {
        let __cacheman_future =
            ::cacheman::__private::typed_future::<#return_type, _>(async move #body);
        async move { #outcome }
    };
    let (run, flag) = if fallback {
        (quote!(compute_or_fall_back_async), quote!())
    } else {
        (quote!(compute_async), quote!(#refresh,))
    };
    quote! {
        ::cacheman::__private::#run(__cacheman_cache, __cacheman_key, #flag move || {
            #note_run
            #future
        })
        .await
    }
}

/// Turns the `Result<V, E>` of [`compute`] into the function's return type.
fn finish(plan: &Plan, outcome: TokenStream, was_cached: TokenStream) -> TokenStream {
    let value = wrap_flag(plan.flag, quote!(__cacheman_v), was_cached);
    match plan.mode {
        Mode::Plain => quote! {
            match #outcome {
                ::core::result::Result::Ok(__cacheman_v) => #value,
                ::core::result::Result::Err(__cacheman_never) => match __cacheman_never {},
            }
        },
        Mode::Result => quote! {
            ::core::result::Result::map(#outcome, |__cacheman_v| #value)
        },
        Mode::Option => quote! {
            ::core::option::Option::map(
                ::core::result::Result::ok(#outcome),
                |__cacheman_v| #value,
            )
        },
    }
}

/// `value`, in a `Return` with `was_cached` under `with_cached_flag`.
fn wrap_flag(flag: bool, value: TokenStream, was_cached: impl quote::ToTokens) -> TokenStream {
    if flag {
        quote!(::cacheman::Return { value: #value, was_cached: #was_cached })
    } else {
        value
    }
}

/// A hit's value in the function's return type: `v`, `Ok(v)` or `Some(v)`.
fn wrap_mode(mode: Mode, value: TokenStream) -> TokenStream {
    match mode {
        Mode::Plain => value,
        Mode::Result => quote!(::core::result::Result::Ok(#value)),
        Mode::Option => quote!(::core::option::Option::Some(#value)),
    }
}
