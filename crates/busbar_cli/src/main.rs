//! The `busbar` binary: everything happens in [`busbar_cli::run`].

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    busbar_cli::tune_allocator();
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    // Not locked for the whole run: worker threads may write to stderr too (a panic message
    // while a file's panic is turned into a diagnostic), and must not block on a held lock.
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let code = busbar_cli::run(
        std::env::args_os(),
        &cwd,
        &busbar_cli::Host { color, exe: std::env::current_exe().ok() },
        &mut out,
        &mut err,
    );
    let _ = out.flush();
    ExitCode::from(code)
}
