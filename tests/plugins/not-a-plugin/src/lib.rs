//! Test fixture: a genuine shared library that the loader must refuse as "not a plugin".
//!
//! It opens fine (unlike a garbage file); what it lacks is abi_stable's root-module header symbol.

/// One exported symbol, so that this is a real, non-empty library.
#[unsafe(no_mangle)]
pub extern "C" fn not_a_plugin_answer() -> u32 {
    42
}
