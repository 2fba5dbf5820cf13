//! The `ticket-gateway` binary: everything lives in the library.

/// A login storm is a storm of small, short-lived allocations (request heads, JSON, log
/// lines) among long-lived ones (tickets, sessions); mimalloc's per-thread free lists
/// serve that mix at a fraction of the system allocator's cost.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ticket_gateway::cli::main()
}
