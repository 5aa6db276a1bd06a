//! SIGINT and SIGTERM during a run (a Ctrl-C, a CI job's timeout): the first one asks the run
//! to stop, so that it ends every implementation's processes, writes its reports with what it
//! has and counts the rest `not_run`; a second one ends nllspec at once, killing the
//! implementations' process groups first (they run in groups of their own, so a terminal's
//! Ctrl-C never reaches them).
//!
//! Only the command line installs the handler ([`install`]): a library must not take a
//! process's signals. Without it [`requested`] is always `None`.

use std::sync::atomic::{AtomicI32, Ordering};

static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Process groups of running implementations, for the second signal to end.
static GROUPS: [AtomicI32; 64] = [const { AtomicI32::new(0) }; 64];

/// The signal that asked the run to stop, if one did.
pub fn requested() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Registers a process group (a started implementation's pid) for the second signal to kill.
pub fn register(pgid: i32) {
    for slot in &GROUPS {
        if slot
            .compare_exchange(0, pgid, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return;
        }
    }
}

/// Forgets a process group that has ended.
pub fn unregister(pgid: i32) {
    for slot in &GROUPS {
        let _ = slot.compare_exchange(pgid, 0, Ordering::SeqCst, Ordering::SeqCst);
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    if SIGNAL.swap(sig, Ordering::SeqCst) != 0 {
        for slot in &GROUPS {
            let pgid = slot.load(Ordering::SeqCst);
            if pgid > 0 {
                // SAFETY: kill(2) is async-signal-safe and takes plain integers.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
            }
        }
        // SAFETY: _exit(2) is async-signal-safe; it ends the process without running anything
        // of ours, which a signal handler must not.
        unsafe { libc::_exit(128 + sig) };
    }
}

/// Installs the handler for SIGINT and SIGTERM.
pub fn install() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler only
        // touches atomics and async-signal-safe calls; sigaction reads the struct we own for
        // the call's duration.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}
