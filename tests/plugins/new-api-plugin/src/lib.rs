//! Test plugin: built against a newer connector-api with a new major (interface 1.0.0); a host
//! on 0.x refuses it.

skewed_api::skewed_root_module!("1.0.0");
