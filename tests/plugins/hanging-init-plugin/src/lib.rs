//! Test fixture: the dynamic loader runs this library's constructor while mapping it, and the
//! constructor never returns, so neither does the `dlopen` of whatever maps it.

/// Runs from `.init_array`, inside `dlopen`.
extern "C" fn hang_on_load() {
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn() = hang_on_load;
