fn main() -> std::process::ExitCode {
    upledger::cli::main()
}
