//! The `faxgate` binary: the command line lives in [`faxgate::cli`].

fn main() -> std::process::ExitCode {
    faxgate::cli::main()
}
