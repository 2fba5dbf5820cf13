//! Property tests: the readers never panic on arbitrary input, and what they accept survives
//! a write/read round trip.

use http::{HeaderMap, HeaderValue, Method};
use proptest::prelude::*;
use ticket_gateway::fuzzing::{
    self as h, describe, json, parse_query, xml, xrf, SessionRequest, TicketRequest,
};
use ticket_gateway::{Settings, Side};

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_json_reader_never_panics_and_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(v) = json::parse(&bytes) {
            let text = v.to_json();
            prop_assert_eq!(json::parse(text.as_bytes()).unwrap(), v.clone());
            let _ = TicketRequest::from_json(&v);
        }
    }

    #[test]
    fn json_like_text_never_panics(text in r#"[\{\}\[\]'",: a-zA-Z0-9\\/*\n-]{0,64}"#) {
        let _ = json::parse(text.as_bytes());
    }

    /// The one-pass readers of ticket and session requests decide exactly as parsing the
    /// document and binding the tree do, errors included.
    #[test]
    fn one_pass_request_reading_matches_parsing_then_binding(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        same_outcomes(&bytes)?;
    }

    #[test]
    fn one_pass_request_reading_matches_on_request_like_documents(doc in request_like()) {
        same_outcomes(doc.as_bytes())?;
    }
}

/// Documents shaped like ticket and session requests: the members they bind, in any
/// casing, repeated, with every kind of value, and now and then a syntax error.
fn request_like() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("\"UserDirectory\""),
        Just("\"userdirectory\""),
        Just("\"UserId\""),
        Just("USERID"),
        Just("'Attributes'"),
        Just("\"TargetId\""),
        Just("SessionId"),
        Just("\"x\""),
    ];
    let scalar = prop_oneof![
        Just("\"ACME\""),
        Just("' jdoe '"),
        Just("\"a\\\\b\""),
        Just("\"\""),
        Just("\"  \""),
        Just("null"),
        Just("undefined"),
        Just("true"),
        Just("-1.5e2"),
        Just("\"\\u00e9\""),
    ];
    let attribute = prop_oneof![
        Just("{\"Group\":\"Sales\"}"),
        Just("{'a':null,b:2}"),
        Just("{}"),
        Just("{\"k\":{}}"),
        Just("{\"k\":[1]}"),
        Just("\"text\""),
        Just("[]"),
        Just("null"),
    ];
    let attributes = proptest::collection::vec(attribute, 0..4)
        .prop_map(|items| format!("[{}]", items.join(",")));
    let value = prop_oneof![
        4 => scalar.prop_map(str::to_owned),
        3 => attributes,
        1 => Just("{\"a\":[{}]}".to_owned()),
        1 => Just("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]".to_owned()),
    ];
    let member = (key, value).prop_map(|(k, v)| format!("{k}:{v}"));
    let tail = prop_oneof![8 => Just("}"), 1 => Just(",}"), 1 => Just(""), 1 => Just("} x"), 1 => Just("]")];
    (proptest::collection::vec(member, 0..6), tail)
        .prop_map(|(members, tail)| format!("{{{}{tail}", members.join(",")))
}

fn same_outcomes(bytes: &[u8]) -> Result<(), TestCaseError> {
    let tree = json::parse(bytes).map_err(|e| format!("Invalid JSON: {e}."));
    let ticket = tree.clone().and_then(|v| TicketRequest::from_json(&v));
    prop_assert_eq!(TicketRequest::read(bytes), ticket);
    let session = tree.and_then(|v| SessionRequest::from_json(&v));
    prop_assert_eq!(SessionRequest::read(bytes), session);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn ticket_requests_round_trip(dir in "[A-Za-z0-9 _.-]{1,12}", user in "[^\\\\\u{0}]{1,12}",
                                  attrs in proptest::collection::vec(("[a-zA-Z]{1,6}", ".{0,8}"), 0..4)) {
        prop_assume!(!dir.trim().is_empty() && !user.trim().is_empty());
        let doc = serde_json::to_string(&dir).unwrap();
        let u = serde_json::to_string(&user).unwrap();
        let a = serde_json::to_string(
            &attrs.iter().map(|(k, v)| serde_json::json!({ k: v })).collect::<Vec<_>>(),
        )
        .unwrap();
        let body = format!("{{\"UserDirectory\":{doc},\"UserId\":{u},\"Attributes\":{a}}}");
        let r = TicketRequest::from_json(&json::parse(body.as_bytes()).unwrap()).unwrap();
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
        let p = parse_query(&q);
        let base = url::Url::parse("http://localhost:8080/QvAJAXZfc/Authenticate.aspx").unwrap();
        let hosts = h::Hosts::new(["http://localhost:8080"], &["portal.example.com".to_owned()]);
        for t in [p.try_, p.back].into_iter().flatten() {
            if let Some(sent) = h::location(&t, &base, &hosts) {
                // What is sent is a valid header, and a browser resolving it lands on an
                // admitted host without credentials.
                prop_assert!(HeaderValue::from_str(&sent).is_ok(), "{:?}", sent);
                let again = base.join(&sent).unwrap();
                prop_assert!(hosts.admit(&again) && again.username().is_empty(), "{:?}", sent);
            }
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
