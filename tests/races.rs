//! Single use under races: of 16 concurrent redemptions of one ticket, exactly one gets a
//! session, for each of 1,000 tickets.

use std::sync::Arc;

use bytes::Bytes;
use gateway_tests::TestGateway;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const TICKETS: usize = 1_000;
const RACERS: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_racers_redeem_each_ticket_exactly_once() {
    // Every ticket is for one user; lift Qlik's five-sessions limit so only single use
    // decides who wins.
    let gw =
        TestGateway::start("[[virtual_proxy]]\nprefix = \"\"\nmax_sessions_per_user = 100000\n")
            .await;
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let client = Arc::new(client);

    let mut tickets = Vec::with_capacity(TICKETS);
    for _ in 0..TICKETS {
        tickets.push(gateway_tests::ticket(gw.api, "").await);
    }
    let mut winners_per_ticket = Vec::with_capacity(TICKETS);
    for ticket in &tickets {
        let mut racers = Vec::with_capacity(RACERS);
        for _ in 0..RACERS {
            let client = client.clone();
            let uri: hyper::Uri = format!("http://{}/hub/?qlikTicket={ticket}", gw.frontend)
                .parse()
                .unwrap();
            racers.push(tokio::spawn(async move {
                let res = client.get(uri).await.expect("request");
                let status = res.status().as_u16();
                let cookie = res.headers().contains_key(http::header::SET_COOKIE);
                let _ = res.into_body().collect().await;
                (status, cookie)
            }));
        }
        let mut winners = 0;
        for r in racers {
            let (status, cookie) = r.await.unwrap();
            match status {
                200 => {
                    assert!(cookie, "a redemption without a session cookie");
                    winners += 1;
                }
                302 => assert!(!cookie),
                other => panic!("unexpected status {other}"),
            }
        }
        winners_per_ticket.push(winners);
    }
    assert!(
        winners_per_ticket.iter().all(|&w| w == 1),
        "tickets with other than one winner: {:?}",
        winners_per_ticket
            .iter()
            .enumerate()
            .filter(|(_, &w)| w != 1)
            .take(10)
            .collect::<Vec<_>>()
    );
}
