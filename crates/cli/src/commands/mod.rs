//! One module per subcommand group.

mod eval;
mod export;
mod inspect;
mod judge;
mod layers;
mod report;
mod run;

use crate::Failure;
use crate::args::{Cli, Command};

pub fn dispatch(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Run(a) => run::run(a),
        Command::Resume(a) => run::resume(a),
        Command::Eval(a) => eval::eval(a),
        Command::List(a) => inspect::list(a),
        Command::Show(a) => inspect::show(a),
        Command::Report(a) => report::report(a),
        Command::Compare(a) => report::compare(a),
        Command::Export(a) => export::export(a),
        Command::Judge(a) => judge::judge(a),
    }
}
