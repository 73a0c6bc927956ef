//! Test fixture: the dynamic loader runs this library's constructor while mapping it, and the
//! constructor aborts. Whatever maps it in-process dies of SIGABRT before any plugin check.

/// Runs from `.init_array`, inside `dlopen`.
extern "C" fn abort_on_load() {
    eprintln!("aborting-init-plugin: aborting in its constructor");
    std::process::abort();
}

#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn() = abort_on_load;
