//! HTTP helpers both dialects share: bodies ([`body`]), the gateway's own responses and
//! error page ([`response`]), query strings and percent-encoding ([`query`]), cookies
//! ([`cookie`]), header values from user data ([`headers`]), and the redirect guard
//! ([`redirect`]).

pub(crate) mod body;
pub(crate) mod cookie;
pub(crate) mod decorate;
pub(crate) mod headers;
pub(crate) mod pace;
pub(crate) mod query;
pub(crate) mod redirect;
pub(crate) mod response;

pub(crate) use body::{empty, read_body, Body, BodyError, BoxError};
pub(crate) use cookie::{cookies, expired_cookie, session_cookie};
pub(crate) use query::{
    percent_decode, percent_encode_lower, push_percent_encoded_lower, query_param, query_without,
    split_ascii, split_once_ascii,
};
pub(crate) use response::{found, head_too_large, page, respond, HTML, JSON, TEXT};
