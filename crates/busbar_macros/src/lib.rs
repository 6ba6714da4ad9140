//! The macros of busbar's Rust SDK. Use them through the `busbar` crate, which re-exports them
//! (`busbar::Message`, `busbar::subscribe`) and documents them; the code they generate names
//! `::busbar` paths only.
//!
//! Everything a macro can check on its own is a compile error here, with the span of what is
//! wrong: an unknown setting, a duration outside Encore's grammar or below busbar's minimum
//! (`busbar_model::duration`, `busbar_model::limits`), a handler that is not an `async fn`.
//! What needs types (the topic is a `Topic`, the handler takes the topic's message type, a
//! filter names `#[busbar(attribute)]` fields) is left to trait bounds and const evaluation in
//! the generated code, whose messages `busbar` words.

mod derive;
mod subscribe;

use proc_macro::TokenStream;

/// `#[derive(busbar::Message)]`: see `busbar::Message`.
#[proc_macro_derive(Message, attributes(busbar))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    derive::expand(&input).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// `#[busbar::subscribe(topic = T, name = "...", ...)]`: see `busbar::subscribe`.
#[proc_macro_attribute]
pub fn subscribe(args: TokenStream, item: TokenStream) -> TokenStream {
    let item2: proc_macro2::TokenStream = item.clone().into();
    let function = match syn::parse::<syn::ItemFn>(item) {
        Ok(f) => f,
        Err(_) => {
            let error = syn::Error::new_spanned(
                &item2,
                "#[busbar::subscribe] goes on an `async fn` at module level (the handler)",
            );
            return error.into_compile_error().into();
        }
    };
    let mut settings = subscribe::Settings::default();
    let parser = syn::meta::parser(|meta| settings.parse(&meta));
    if let Err(error) = syn::parse::Parser::parse(parser, args) {
        // Keep the function, so its own errors and uses still make sense.
        let mut out = error.into_compile_error();
        out.extend(quote::quote!(#function));
        return out.into();
    }
    subscribe::expand(&settings, &function)
        .unwrap_or_else(|e| {
            let mut out = e.into_compile_error();
            out.extend(item2);
            out
        })
        .into()
}
