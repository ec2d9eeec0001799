#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use dbhook::cli::{self, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Check(args) => cli::check::run(&args),
        Command::Mutate(args) => cli::mutate::run(&args),
        Command::Policy => {
            print!("{}", dbhook::policy::DEFAULT_POLICY_YAML);
            cli::exit::OK
        }
        Command::Rules(args) => {
            print!("{}", cli::print_rules(&args));
            cli::exit::OK
        }
        Command::Explain(args) => cli::explain::run(&args),
        Command::Serve(args) => cli::serve(&args),
        Command::Certs(args) => cli::certs(&args),
    };
    ExitCode::from(code)
}
