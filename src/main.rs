fn main() -> std::process::ExitCode {
    drplan::cli::main()
}
