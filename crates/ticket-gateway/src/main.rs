//! The `ticket-gateway` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    ticket_gateway::cli::main()
}
