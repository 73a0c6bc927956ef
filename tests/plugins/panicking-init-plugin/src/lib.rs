//! Test plugin: passes every load-time check, then its root-module constructor panics.
//!
//! abi_stable checks the version and the layout *before* it runs the constructor, so this returns
//! the real `ConnectorModule_Ref` type (from connector-api, without its `plugin` glue); a module
//! of its own would be refused as a layout mismatch and the panic would never happen.

use connector_api::abi::ConnectorModule_Ref;

#[abi_stable::export_root_module]
pub fn connector_root_module() -> ConnectorModule_Ref {
    panic!("panicking-init-plugin: refusing to initialise")
}
