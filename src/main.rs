//! The `netlens` binary: parse arguments, call the library, print errors, set exit codes.
//!
//! Exit codes: 0 success (a damaged capture read up to the damage included); 1 runtime
//! error; 2 usage error. A closed stdout (`| head`) ends the run quietly with 0.

mod cli;

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let config = cli.into_config();
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut err = io::stderr();
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
