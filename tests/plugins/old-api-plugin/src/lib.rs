//! Test plugin: what a plugin built against an older connector-api (interface 0.0.1) looks like.
//!
//! The host checks the version before the layout, so the module's shape is irrelevant here: the
//! host must refuse it naming both versions, without ever calling into it.

// abi_stable's derives generate these names and impls.
#![allow(non_camel_case_types, non_local_definitions)]

use abi_stable::{
    StableAbi, declare_root_module_statics, export_root_module, library::RootModule,
    prefix_type::PrefixTypeTrait, sabi_types::VersionStrings, std_types::RString,
};

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = OldModule_Ref)))]
#[sabi(missing_field(panic))]
pub struct OldModule {
    #[sabi(last_prefix_field)]
    pub id: extern "C" fn() -> RString,
}

impl RootModule for OldModule_Ref {
    declare_root_module_statics! {OldModule_Ref}
    const BASE_NAME: &'static str = "connector";
    // Same name as the real interface: only the version tells them apart.
    const NAME: &'static str = "connector";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("0.0.1");
}

extern "C" fn id() -> RString {
    "old-api".into()
}

#[export_root_module]
pub fn old_root_module() -> OldModule_Ref {
    OldModule { id }.leak_into_prefix()
}
