//! This module exists because `lazy_static` causes TSAN to
//! be very unhappy. We rely heavily on TSAN for finding
//! races, so we don't use `lazy_static`.
//!
//! Patched for potluck (vendor/sled/PATCHED.md): upstream's `Lazy`
//! spin-waited on an atomic flag while another thread ran the initialiser.
//! The threadpool's queue is initialised by a function that spawns seven
//! threads which all wait on that same queue, so each spun through the
//! whole spawn, taking the cores from the thread that opens the database.
//! `std::sync::OnceLock` gives the same once-only initialisation and
//! parks the threads that wait.

use std::sync::OnceLock;

/// A lazily initialized value
pub struct Lazy<T, F> {
    value: OnceLock<T>,
    init: F,
}

impl<T, F> Lazy<T, F> {
    /// Create a new Lazy
    pub const fn new(init: F) -> Self
    where
        F: Sized,
    {
        Self { value: OnceLock::new(), init }
    }
}

impl<T, F> std::ops::Deref for Lazy<T, F>
where
    F: Fn() -> T,
{
    type Target = T;

    fn deref(&self) -> &T {
        self.value.get_or_init(&self.init)
    }
}
