fn main() -> std::process::ExitCode {
    art_cli::main()
}
