//! Test plugin: claims the current interface (name `connector`, version 0.1.0) but its root module
//! has another shape, as when connector-api changes a type without a version bump. Only the
//! layout check can catch this; the host must refuse it before calling anything.

// abi_stable's derives generate these names and impls.
#![allow(non_camel_case_types, non_local_definitions)]

use abi_stable::{
    StableAbi, declare_root_module_statics, export_root_module, library::RootModule,
    prefix_type::PrefixTypeTrait, sabi_types::VersionStrings,
};

/// Same name as the real root module; its first field returns a `u64` instead of the metadata.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = ConnectorModule_Ref)))]
#[sabi(missing_field(panic))]
pub struct ConnectorModule {
    pub metadata: extern "C" fn() -> u64,
    #[sabi(last_prefix_field)]
    pub shutdown: extern "C" fn(),
}

impl RootModule for ConnectorModule_Ref {
    declare_root_module_statics! {ConnectorModule_Ref}
    const BASE_NAME: &'static str = "connector";
    const NAME: &'static str = "connector";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("0.1.0");
}

extern "C" fn metadata() -> u64 {
    7
}

extern "C" fn shutdown() {}

#[export_root_module]
pub fn connector_root_module() -> ConnectorModule_Ref {
    ConnectorModule { metadata, shutdown }.leak_into_prefix()
}
