//! The route table's tests: what real clients send reaches the right handler.

use http::{HeaderMap, Method};

use super::*;
use crate::conn::Side;

fn settings() -> Settings {
    Settings::from_toml(
        "[[virtual_proxy]]\nprefix = \"ext\"\n[[virtual_proxy]]\nprefix = \"ticket\"\n",
    )
    .unwrap()
}

fn api(path: &str) -> String {
    let s = settings();
    match route(&s, Side::Api, &Method::POST, path, &HeaderMap::new()) {
        Route::AddTicket(VpRef::Known(vp)) => format!("ticket@{}", vp.prefix),
        Route::AddTicket(VpRef::Unknown(p)) => format!("unknown@{p}"),
        other => format!("{other:?}"),
    }
}

#[test]
fn api_paths_tolerate_what_clients_send() {
    assert_eq!(api("/qps/ticket"), "ticket@");
    assert_eq!(api("/QPS/Ticket/"), "ticket@");
    assert_eq!(api("/qps//ticket"), "ticket@");
    assert_eq!(api("/qps/ext/ticket"), "ticket@ext");
    assert_eq!(api("/qps/EXT//TICKET"), "ticket@ext");
    assert_eq!(api("/qps/ticket/ticket"), "ticket@ticket");
    assert_eq!(api("/qps/nope/ticket"), "unknown@nope");
    assert_eq!(api("/qps/ext/tickets"), "NotFound");
    assert_eq!(api("/other/ticket"), "NotFound");
    let s = settings();
    assert_eq!(
        route(
            &s,
            Side::Api,
            &Method::GET,
            "/qps/ext/ticket",
            &HeaderMap::new()
        ),
        Route::MethodNotAllowed("POST")
    );
}

#[test]
fn frontend_paths_pick_the_virtual_proxy() {
    let s = settings();
    let vp = |p: &str| match route(&s, Side::Frontend, &Method::GET, p, &HeaderMap::new()) {
        Route::Frontend(vp) => vp.prefix.clone(),
        other => format!("{other:?}"),
    };
    assert_eq!(vp("/ext/hub/"), "ext");
    assert_eq!(vp("/EXT/hub/"), "ext");
    assert_eq!(vp("/hub/"), "");
    assert_eq!(vp("/extra/hub"), "");
    assert_eq!(vp("/"), "");
    assert_eq!(vp("/demo/login"), "DemoLoginForm");
}

#[test]
fn qlikview_paths_in_any_casing() {
    let s = settings();
    let r =
        |m: Method, p: &str| format!("{:?}", route(&s, Side::Frontend, &m, p, &HeaderMap::new()));
    assert_eq!(
        r(Method::POST, "/QvAJAXZfc/GetWebTicket.aspx"),
        "GetWebTicket"
    );
    assert_eq!(
        r(Method::POST, "/qvajaxzfc/getwebticket.aspx"),
        "GetWebTicket"
    );
    assert_eq!(
        r(Method::POST, "/QVAJAXZFC/getwebticket.aspx"),
        "GetWebTicket"
    );
    assert_eq!(
        r(Method::GET, "/QvAJAXZfc/GetWebTicket.aspx"),
        "QlikViewMethodNotAllowed(\"POST\")"
    );
    assert_eq!(
        r(Method::GET, "/qvajaxzfc/Authenticate.aspx"),
        "Authenticate"
    );
    assert_eq!(
        r(Method::POST, "/QvAJAXZfc/AccessPoint.aspx"),
        "AccessPoint"
    );
    assert_eq!(r(Method::POST, "/Accesspoint.aspx"), "AccessPoint");
    assert_eq!(r(Method::GET, "/QvAJAXZfc/opendoc.htm"), "QlikViewPage");
    assert_eq!(r(Method::GET, "/QlikView/"), "QlikViewPage");
    assert_eq!(r(Method::GET, "/qlikviewx/"), r(Method::GET, "/hub/"));
    assert_eq!(r(Method::GET, "/demo/qlikview/"), "DemoPortalForm");
}
