//! The `busbar` binary: everything happens in [`busbar_cli::run`].

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let code = busbar_cli::run(
        std::env::args_os(),
        &cwd,
        busbar_cli::Terminal { color },
        &mut out,
        &mut err,
    );
    let _ = out.flush();
    ExitCode::from(code)
}
