//! What the three binaries share on their command line (feature `cli`): `-q`/`-v` and the log
//! filter they set, the long `--version` (git commit and the runtimes), and shell completions.

use std::io::Write;

use clap::{ArgAction, Args, Command};
pub use clap_complete::Shell;

/// The git commit the binary was built from (`unknown` outside a checkout).
pub const COMMIT: &str = env!("FER_GIT_COMMIT");

/// `-q` / `-v`, global to every subcommand.
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct Verbosity {
    /// Print less: no progress bars and no information lines, only results and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more: `-v` adds details (which library, file or provider was used), `-vv`
    /// everything. `RUST_LOG` (e.g. `RUST_LOG=fer_infer=debug`), when set, decides instead.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
}

impl Verbosity {
    /// The `tracing` filter these flags mean (`RUST_LOG` syntax).
    pub fn filter(&self) -> &'static str {
        match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "info,ort=warn",
            (false, 1) => "debug,ort=info",
            (false, _) => "trace",
        }
    }

    /// Sends log lines to stderr, filtered by `RUST_LOG` when set, else by [`Self::filter`].
    pub fn init_logging(&self) {
        use tracing_subscriber::EnvFilter;
        let filter =
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(self.filter()));
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        // A second call (tests calling `main` twice) keeps the first subscriber.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .try_init();
    }
}

/// `--version`'s long text: the crate version, the commit, then one `name version` line per
/// runtime the binary uses. Leaked: clap keeps it for the life of the process, and it is
/// made once.
pub fn long_version(version: &str, runtimes: &[(&str, String)]) -> &'static str {
    let mut s = format!("{version} (commit {COMMIT})");
    for (name, v) in runtimes {
        s.push_str(&format!("\n{name} {v}"));
    }
    s.leak()
}

/// The arguments of a `completions` subcommand.
#[derive(Args, Debug, Clone)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell. Bash, for example:
    /// `fer-infer completions bash > ~/.local/share/bash-completion/completions/fer-infer`.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Writes the completion script of `cmd` for `shell` to `out`. The script is made in memory
/// first: `clap_complete` panics on a failed write (a closed pipe), this returns the error.
pub fn write_completions(
    cmd: &mut Command,
    shell: Shell,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let name = cmd.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(shell, cmd, name, &mut script);
    out.write_all(&script)?;
    out.flush()
}
