//! Test support: what a plugin built against another connector-api version looks like to a host.
//!
//! The host checks the version before the layout, so the module's shape is irrelevant: the host
//! must refuse it naming both versions, without ever calling into it.

/// Exports a root module named like the real interface (`connector`) that claims `$version`.
#[macro_export]
macro_rules! skewed_root_module {
    ($version:literal) => {
        // abi_stable's derives generate these names and impls.
        #[allow(non_camel_case_types, non_local_definitions)]
        mod skewed {
            use ::abi_stable::{
                StableAbi, declare_root_module_statics, export_root_module, library::RootModule,
                prefix_type::PrefixTypeTrait, sabi_types::VersionStrings, std_types::RString,
            };

            #[repr(C)]
            #[derive(StableAbi)]
            #[sabi(kind(Prefix(prefix_ref = SkewedModule_Ref)))]
            #[sabi(missing_field(panic))]
            pub struct SkewedModule {
                #[sabi(last_prefix_field)]
                pub id: extern "C" fn() -> RString,
            }

            impl RootModule for SkewedModule_Ref {
                declare_root_module_statics! {SkewedModule_Ref}
                const BASE_NAME: &'static str = "connector";
                // Same name as the real interface: only the version tells them apart.
                const NAME: &'static str = "connector";
                const VERSION_STRINGS: VersionStrings = VersionStrings::new($version);
            }

            extern "C" fn id() -> RString {
                concat!("skewed-", $version).into()
            }

            #[export_root_module]
            pub fn skewed_root_module() -> SkewedModule_Ref {
                SkewedModule { id }.leak_into_prefix()
            }
        }
    };
}
