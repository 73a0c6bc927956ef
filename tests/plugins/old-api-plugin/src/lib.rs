//! Test plugin: built against an older connector-api (interface 0.0.1); a host refuses it.

skewed_api::skewed_root_module!("0.0.1");
