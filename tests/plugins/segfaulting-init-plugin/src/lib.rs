//! Test fixture: the dynamic loader runs this library's constructor while mapping it, and the
//! constructor writes to an unmapped address. Whatever maps it in-process dies of SIGSEGV.

/// Runs from `.init_array`, inside `dlopen`.
extern "C" fn segfault_on_load() {
    // The first page is never mapped; a volatile write is not optimised away.
    let unmapped = std::ptr::without_provenance_mut::<u8>(0x10);
    // SAFETY: none; crashing the process that maps this library is the point of the fixture.
    unsafe { unmapped.write_volatile(1) };
}

#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn() = segfault_on_load;
