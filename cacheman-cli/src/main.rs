//! `cacheman`: see, verify and manage cacheman caches from the shell. Everything is in
//! [`cacheman::cli`]; `cacheman --help` lists the commands.

fn main() -> std::process::ExitCode {
    cacheman::cli::run()
}
