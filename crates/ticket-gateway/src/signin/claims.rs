//! Reading a verified token's claims into a user: the same rules for a JWT and an OpenID
//! Connect ID token. A string claim gives one value, an array one per string, number or
//! boolean element, in order; anything else (objects, nulls) gives nothing.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::AttributeMap;

/// A token's claims, by name.
pub(crate) type Claims = BTreeMap<String, Value>;

/// A claim's one value as text, if it is a non-empty string, number or boolean.
pub(crate) fn text(claims: &Claims, name: &str) -> Option<String> {
    claims
        .get(name)
        .and_then(scalar)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A claim's values: one for a scalar, one per element of an array.
pub(crate) fn values(claims: &Claims, name: &str) -> Vec<String> {
    match claims.get(name) {
        Some(Value::Array(items)) => items.iter().filter_map(scalar).collect(),
        Some(v) => scalar(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// The attributes `maps` make of `claims`, appended to `out`; `Err` when a mandatory
/// claim gives nothing.
pub(crate) fn map_attributes(
    claims: &Claims,
    maps: &[AttributeMap],
    out: &mut Vec<(String, String)>,
) -> Result<(), &'static str> {
    for map in maps {
        let values = values(claims, &map.claim);
        if values.is_empty() && map.mandatory {
            return Err("the token lacks a mandatory claim");
        }
        out.extend(values.into_iter().map(|v| (map.attribute.clone(), v)));
    }
    Ok(())
}

/// A claim's value as text: strings as they are, numbers and booleans written out.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_and_arrays_become_values_in_order() {
        let claims: Claims = serde_json::from_str(
            r#"{"s":" a ","n":7,"b":true,"arr":["x",1,{"o":1},null,"y"],"o":{"k":"v"},"e":""}"#,
        )
        .unwrap();
        assert_eq!(text(&claims, "s").as_deref(), Some("a"));
        assert_eq!(text(&claims, "n").as_deref(), Some("7"));
        assert_eq!(text(&claims, "e"), None);
        assert_eq!(text(&claims, "o"), None);
        assert_eq!(values(&claims, "arr"), ["x", "1", "y"]);
        assert_eq!(values(&claims, "b"), ["true"]);
        let maps = [
            AttributeMap {
                claim: "arr".into(),
                attribute: "Group".into(),
                mandatory: false,
            },
            AttributeMap {
                claim: "missing".into(),
                attribute: "M".into(),
                mandatory: false,
            },
        ];
        let mut out = Vec::new();
        map_attributes(&claims, &maps, &mut out).unwrap();
        assert_eq!(out.len(), 3);
        let must = [AttributeMap {
            claim: "o".into(),
            attribute: "O".into(),
            mandatory: true,
        }];
        assert!(map_attributes(&claims, &must, &mut out).is_err());
    }
}
