//! `ticket-server [API_ADDR [FRONTEND_ADDR]]`: the minimal ticket server, the limit the
//! gateway's login rows are measured against (see `gateway_bench::ticket_server`).
//!
//! Binds both addresses (default `127.0.0.1:0` each), prints
//! `api=<addr> frontend=<addr>` on stdout and serves until killed. Run as `hello` and the
//! gateway run (`gateway_bench::runtime`), with the gateway's allocator.

use std::io::Write;
use std::process::ExitCode;

use tokio::net::TcpListener;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let api = args.next().unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let frontend = args.next().unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let runtime = match gateway_bench::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ticket-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(&api, &frontend)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ticket-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(api: &str, frontend: &str) -> std::io::Result<()> {
    let bind = |addr: &str| {
        let addr = addr.to_owned();
        async move {
            TcpListener::bind(&addr)
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("{addr}: {e}")))
        }
    };
    let (api, frontend) = (bind(api).await?, bind(frontend).await?);
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "api={} frontend={}",
        api.local_addr()?,
        frontend.local_addr()?
    )?;
    stdout.flush()?;
    gateway_bench::ticket_server::serve(api, frontend).await
}
