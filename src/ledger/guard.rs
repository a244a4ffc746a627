//! Panics of sled on damaged files, turned into [`LedgerError::Corrupt`].
//!
//! sled 0.34 does not always return an error for a damaged ledger: on a `db` file truncated
//! to anywhere between about a fifth and nearly all of its length, opening it panics ("tried
//! to serialize Uninitialized", while sled writes its recovery snapshot). Any sled call may
//! panic the same way on pages it cannot make sense of. A panic there says nothing about
//! upledger's own state, only about the files: the ledger is corrupt, and the user needs the
//! path and what to do — not a backtrace and exit status 101, nor a daemon that dies with
//! "task 3 panicked".
//!
//! While a thread runs guarded code, [`panic_is_caught`] is true, so the process's panic hook
//! (installed by the CLI) can keep sled's panic text off the terminal: the text reaches the
//! user as the reason of the error instead.

use std::{
    any::Any,
    cell::Cell,
    panic::{AssertUnwindSafe, catch_unwind},
    path::Path,
};

use super::LedgerError;

thread_local! {
    /// How many guarded calls the current thread is inside (guards may nest).
    static GUARD_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Whether the current thread runs ledger code whose panics become errors: a panic hook
/// should then stay quiet, since the panic is reported as [`LedgerError::Corrupt`].
pub fn panic_is_caught() -> bool {
    GUARD_DEPTH.with(|depth| depth.get() > 0)
}

/// Marks the current thread as guarded until dropped, also when `f` unwinds.
struct Entered;

impl Entered {
    fn enter() -> Entered {
        GUARD_DEPTH.with(|depth| depth.set(depth.get() + 1));
        Entered
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        GUARD_DEPTH.with(|depth| depth.set(depth.get().saturating_sub(1)));
    }
}

/// Runs `f`, turning a panic inside it into [`LedgerError::Corrupt`] for the ledger at `path`;
/// `context` says what was being done ("opening it", "reading it").
///
/// `AssertUnwindSafe` is sound here because of how callers treat a panic: whatever `f`
/// borrowed from sled (a `Db`, its trees) may be left half-updated, so after a caught panic
/// nothing goes on using it — an open that panicked has no `Ledger` to use, and
/// [`super::Ledger::guard`] takes the sled handles out of a ledger whose call panicked, so it
/// only returns errors from then on.
pub(super) fn catch<R>(
    path: &Path,
    context: &str,
    f: impl FnOnce() -> R,
) -> Result<R, LedgerError> {
    let entered = Entered::enter();
    let outcome = catch_unwind(AssertUnwindSafe(f));
    drop(entered);
    outcome.map_err(|payload| LedgerError::Corrupt {
        path: path.to_path_buf(),
        context: context.to_owned(),
        reason: format!("sled failed on it: {}", panic_text(payload.as_ref())),
    })
}

/// The message of a panic (`panic!` with a literal or with a format).
fn panic_text(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("panicked")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_corrupt_error_naming_the_path() {
        let caught: Result<(), _> = catch(Path::new("/x/ledger"), "opening it", || {
            assert!(panic_is_caught());
            panic!("tried to serialize {}", "Uninitialized")
        });
        let error = caught.expect_err("the panic is an error");
        assert!(matches!(error, LedgerError::Corrupt { .. }), "{error}");
        let text = error.to_string();
        assert!(text.contains("/x/ledger"), "{text}");
        assert!(text.contains("tried to serialize Uninitialized"), "{text}");
        assert!(!panic_is_caught(), "the guard ends with the call");
    }

    #[test]
    fn a_ledger_whose_call_panicked_refuses_every_later_call() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = super::super::Ledger::open(dir.path()).unwrap();
        let caught: Result<(), LedgerError> = ledger.guard(|_| panic!("index out of bounds"));
        let error = caught.unwrap_err();
        assert!(matches!(error, LedgerError::Corrupt { .. }), "{error}");
        let later = ledger.markers(jiff::Timestamp::UNIX_EPOCH, jiff::Timestamp::MAX);
        match later {
            Err(LedgerError::Corrupt { reason, .. }) => {
                assert!(reason.contains("index out of bounds"), "{reason}");
            }
            other => panic!("expected the ledger to stay closed: {other:?}"),
        }
        assert!(
            ledger.recover().is_err(),
            "a corrupt ledger is not reopened"
        );
    }

    #[test]
    fn a_ledger_whose_database_vanished_is_corrupt_not_new() {
        let dir = tempfile::tempdir().unwrap();
        drop(super::super::Ledger::open(dir.path()).unwrap());
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "db" || name.starts_with("snap.") {
                std::fs::remove_file(entry.path()).unwrap();
            }
        }
        let error = super::super::Ledger::open_with(
            dir.path(),
            &super::super::LedgerOptions {
                lock_wait: std::time::Duration::from_secs(5),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(error, LedgerError::Corrupt { .. }), "{error}");
    }

    #[test]
    fn errors_and_values_pass_through() {
        let value = catch(Path::new("l"), "reading it", || 7);
        assert_eq!(value.ok(), Some(7));
        assert!(!panic_is_caught());
    }
}
