//! Property tests: the readers never panic on arbitrary input, and what they accept survives
//! a write/read round trip.

use http::{HeaderMap, HeaderValue, Method};
use proptest::prelude::*;
use ticket_gateway::qlikview::{authenticate, xml};
use ticket_gateway::qps::{json, wire, xrf};
use ticket_gateway::router::{describe, Side};
use ticket_gateway::{http as h, redirect, Settings};

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_json_reader_never_panics_and_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(v) = json::parse(&bytes) {
            let text = v.to_json();
            prop_assert_eq!(json::parse(text.as_bytes()).unwrap(), v.clone());
            let _ = wire::TicketRequest::from_json(&v);
        }
    }

    #[test]
    fn json_like_text_never_panics(text in r#"[\{\}\[\]'",: a-zA-Z0-9\\/*\n-]{0,64}"#) {
        let _ = json::parse(text.as_bytes());
    }

    #[test]
    fn ticket_requests_round_trip(dir in "[A-Za-z0-9 _.-]{1,12}", user in "[^\\\\\u{0}]{1,12}",
                                  attrs in proptest::collection::vec(("[a-zA-Z]{1,6}", ".{0,8}"), 0..4)) {
        prop_assume!(!dir.trim().is_empty() && !user.trim().is_empty());
        let mut doc = String::new();
        json::write_string(&mut doc, &dir);
        let mut u = String::new();
        json::write_string(&mut u, &user);
        let mut a = String::new();
        wire::write_attributes(&mut a, &attrs);
        let body = format!("{{\"UserDirectory\":{doc},\"UserId\":{u},\"Attributes\":{a}}}");
        let r = wire::TicketRequest::from_json(&json::parse(body.as_bytes()).unwrap()).unwrap();
        prop_assert_eq!(r.user_directory, dir.trim());
        prop_assert_eq!(r.user_id, user.trim());
        prop_assert_eq!(r.attributes, attrs);
    }

    #[test]
    fn the_xml_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = xml::parse(&bytes);
    }

    #[test]
    fn xml_like_text_never_panics(text in r#"[<>/="' a-zA-Z!&;\[\]?-]{0,96}"#) {
        let _ = xml::parse(text.as_bytes());
    }

    #[test]
    fn web_ticket_requests_round_trip(user in "[a-zA-Z0-9\\\\ &<>\"'.-]{1,16}",
                                      groups in proptest::option::of(proptest::collection::vec("[a-zA-Z0-9 &<>.-]{1,10}", 0..4)),
                                      names in proptest::option::of(any::<bool>())) {
        let req = xml::WebTicketRequest {
            root: "Global".into(),
            method: Some("GetWebTicket".into()),
            user_id: Some(user.trim().to_owned()),
            groups: groups.map(|g| g.iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()),
            groups_is_names: names,
        };
        prop_assert_eq!(xml::parse(xml::write(&req).as_bytes()).unwrap(), req);
    }

    #[test]
    fn the_authenticate_parser_never_panics_and_yields_safe_locations(q in ".{0,128}") {
        let p = authenticate::parse_query(&q);
        for t in [p.try_, p.back].into_iter().flatten() {
            let _ = redirect::is_allowed(&t, &["http://localhost:8080"], &[]);
            prop_assert!(HeaderValue::from_str(&redirect::location_safe(&t)).is_ok());
        }
    }

    #[test]
    fn xrfkey_and_cookie_readers_never_panic(query in ".{0,64}", header in "[ -~]{0,64}") {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&header) {
            headers.insert("x-qlik-xrfkey", v.clone());
            headers.insert("cookie", v);
        }
        if xrf::check(Some(&query), &headers) {
            prop_assert!(xrf::well_formed(&h::query_param(Some(&query), "xrfkey").unwrap()));
        }
        let _: Vec<&str> = h::cookies(&headers, "X-Qlik-Session").collect();
        let _ = h::query_without(Some(&query), "qlikTicket");
        let _ = h::percent_decode(&query);
    }

    #[test]
    fn the_router_never_panics(path in "(/[a-zA-Z%0-9.]{0,8}){0,6}/?", method in "(GET|POST|DELETE|PUT|HEAD|[A-Z]{1,7})") {
        let settings = Settings::from_toml("[[virtual_proxy]]\nprefix = \"ext\"\n").unwrap();
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        for side in [Side::Frontend, Side::Api] {
            let _ = describe(&settings, side, &method, &path);
        }
    }
}
