//! A background job that runs one pass at a time (sync, photo uploads).

use std::cell::Cell;
use std::future::Future;
use std::thread::LocalKey;

/// A background job that runs one pass at a time: asked for during a pass, it runs one
/// more pass afterwards, so passes never overlap and nothing asked for is missed.
#[derive(Debug)]
pub struct Serial {
    running: Cell<bool>,
    again: Cell<bool>,
}

impl Default for Serial {
    fn default() -> Self {
        Self::new()
    }
}

impl Serial {
    /// A job that is not running.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            running: Cell::new(false),
            again: Cell::new(false),
        }
    }

    /// Runs `pass` now, or once more after the pass in progress.
    pub fn request<F>(job: &'static LocalKey<Self>, pass: impl Fn() -> F + 'static)
    where
        F: Future<Output = ()> + 'static,
    {
        let busy = job.with(|j| {
            j.again.set(true);
            j.running.replace(true)
        });
        if busy {
            return;
        }
        leptos::task::spawn_local(async move {
            while job.with(|j| j.again.replace(false)) {
                pass().await;
            }
            job.with(|j| j.running.set(false));
        });
    }
}
