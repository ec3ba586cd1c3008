//! The `netlens` binary: parse arguments, call the library, print errors, set exit codes.
//!
//! Exit codes: 0 success (a damaged capture read up to the damage included); 1 runtime
//! error; 2 usage error. A closed stdout (`| head`) ends the run quietly with 0.

mod cli;

use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

/// mimalloc instead of the system allocator: the stream analysis allocates a small list per
/// segment and frees entries in bulk, where glibc malloc's bookkeeping was a tenth of a
/// `--streams` run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in the `mi_option_t` enum of the mimalloc v3 that
/// libmimalloc-sys 0.1.49 builds (its bindings name options up to 14 and from 16 on).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc v3 keeps freed memory for a second before returning it to the system (v2:
/// 10 ms). netlens frees state in a steady stream (finished connections, flows packed
/// when they go cold), so with v3's default the peak RSS carries about a second's worth
/// of freed pages on top of what is live. 10 ms, v2's default, keeps RSS near live
/// memory at no measurable cost in speed. An explicit `MIMALLOC_PURGE_DELAY` wins.
fn set_purge_delay() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: a plain call into mimalloc's option table, made before any thread
        // exists; the option is a number of milliseconds.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10) };
    }
}

fn main() -> ExitCode {
    set_purge_delay();
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let mut err = io::stderr();
    let mut config = match cli.into_action() {
        Ok(cli::Action::Run(c)) => c,
        Ok(cli::Action::ListInterfaces { json }) => return list_interfaces(json),
        Ok(cli::Action::Completions(shell)) => {
            let mut cmd = cli::Cli::command();
            clap_complete::generate(shell, &mut cmd, "netlens", &mut io::stdout());
            return ExitCode::SUCCESS;
        }
        Ok(cli::Action::Man) => {
            let man = clap_mangen::Man::new(cli::Cli::command());
            return match man.render(&mut io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    let _ = writeln!(err, "netlens: cannot write the man page: {e}");
                    ExitCode::from(1)
                }
            };
        }
        Err(msg) => {
            let _ = writeln!(err, "netlens: {msg}");
            return ExitCode::from(2);
        }
    };
    // SIGINT/SIGTERM set the stop flag: a live capture ends within its 100 ms poll and
    // the report and --write file are completed. A second signal kills the process.
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 1, config.stop.clone());
        let _ = signal_hook::flag::register(sig, config.stop.clone());
    }
    let live = matches!(config.input, netlens::Input::Live(_));
    config.status_line = live && io::stderr().is_terminal();
    config.events = live && !io::stdout().is_terminal() && !config.views.packets;
    config.progress = !live && io::stderr().is_terminal();
    // Colour only on a terminal (--no-color and NO_COLOR were applied by the CLI).
    config.color &= io::stdout().is_terminal();
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let result = netlens::run(&config, &mut out, &mut err);
    let flushed = out.flush();
    match result {
        Ok(_) => match flushed {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                let _ = writeln!(err, "netlens: cannot write output: {e}");
                ExitCode::from(1)
            }
            _ => ExitCode::SUCCESS,
        },
        Err(netlens::Error::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(err, "netlens: {e}");
            ExitCode::from(if e.is_usage() { 2 } else { 1 })
        }
    }
}

fn list_interfaces(json: bool) -> ExitCode {
    let list = netlens::capture::live::list_interfaces();
    let mut out = io::stdout().lock();
    let res = if json {
        serde_json::to_writer_pretty(&mut out, &list)
            .map_err(io::Error::other)
            .and_then(|_| writeln!(out))
    } else {
        netlens::report::table::write_interfaces(&mut out, &list)
    };
    match res {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            let _ = writeln!(io::stderr(), "netlens: cannot write output: {e}");
            ExitCode::from(1)
        }
        _ => ExitCode::SUCCESS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option index is a bare number (see `MI_OPTION_PURGE_DELAY`): if a libmimalloc-sys
    /// update shifts the enum, index 15 stops being the purge delay, whose v3 default of
    /// 1000 ms no other option has, and this fails instead of netlens quietly setting
    /// something else.
    #[test]
    fn option_15_is_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads and writes of mimalloc's option table.
        unsafe {
            assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY), 1000);
            set_purge_delay();
            assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY), 10);
        }
    }
}
