//! Printing results to stdout without panicking (`println!` panics when stdout fails).
//!
//! A closed pipe (`fer-infer predict … | head`) ends the program quietly with exit 0, as
//! other command-line tools do; any other failure (a full disk) is an error naming stdout.

use std::io::{self, Write};

/// Writing to stdout failed.
#[derive(Debug, thiserror::Error)]
#[error("writing to stdout: {0}")]
pub struct StdoutError(#[from] pub io::Error);

/// Writes `text` to stdout and flushes it, so a failure is seen here and not lost at exit.
pub fn print(text: &str) -> Result<(), StdoutError> {
    print_bytes(text.as_bytes())
}

/// [`print`] for bytes (lines a writer produced).
pub fn print_bytes(bytes: &[u8]) -> Result<(), StdoutError> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}

/// Whether `e` comes from a closed stdout pipe (the reader went away): not an error to report.
pub fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<StdoutError>().is_some_and(|s| s.0.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// `print!` that returns a [`StdoutError`] through `?` instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        crate::out::print(&format!($($arg)*))?
    };
}

/// `println!` that returns a [`StdoutError`] through `?` instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        crate::out::print(&format!("{}\n", format_args!($($arg)*)))?
    };
}
