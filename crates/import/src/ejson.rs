//! MongoDB Extended JSON as `mongoexport` writes it, canonical or relaxed:
//! `{"$oid": …}`, `{"$date": "ISO"}`, `{"$date": {"$numberLong": "ms"}}`,
//! `{"$numberLong"|"$numberInt"|"$numberDouble"|"$numberDecimal": "…"}`.

use serde_json::{Map, Number, Value};
use tidesync_protocol::time::{in_range, parse_iso, to_iso, Millis};

/// The single `$`-key of a wrapper object, if `v` is one.
fn wrapper<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) if m.len() == 1 => m.get(key),
        _ => None,
    }
}

/// An ObjectId as 24 lower-case hex digits: `{"$oid": …}`, or the hex
/// string alone (some tools unwrap it).
pub fn object_id(v: &Value) -> Option<String> {
    let s = wrapper(v, "$oid").unwrap_or(v).as_str()?;
    (s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

/// The creation time an ObjectId carries (its first 4 bytes, in seconds).
pub fn object_id_time(hex: &str) -> Option<Millis> {
    i64::from_str_radix(hex.get(..8)?, 16)
        .ok()
        .map(|s| s * 1000)
}

/// A number wrapper's value.
fn number(v: &Value) -> Option<Value> {
    let Value::Object(m) = v else { return None };
    if m.len() != 1 {
        return None;
    }
    let (k, inner) = m.iter().next()?;
    let s = inner.as_str()?;
    match k.as_str() {
        "$numberInt" | "$numberLong" => match s.parse::<i64>() {
            Ok(n) => Some(Value::Number(n.into())),
            Err(_) => s.parse::<f64>().ok().and_then(float),
        },
        // NaN and the infinities have no JSON form: left as text, which a
        // number field then refuses.
        "$numberDouble" | "$numberDecimal" => Some(
            s.parse::<f64>()
                .ok()
                .and_then(float)
                .unwrap_or_else(|| Value::String(s.to_owned())),
        ),
        _ => None,
    }
}

fn float(x: f64) -> Option<Value> {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 9.007_199_254_740_992e15 {
        return Some(Value::Number((x as i64).into()));
    }
    Number::from_f64(x).map(Value::Number)
}

/// A date: `{"$date": "ISO"}`, `{"$date": {"$numberLong": "ms"}}`,
/// `{"$date": ms}`; also a bare ISO string or epoch milliseconds, as tools
/// that flatten Extended JSON leave them.
pub fn date(v: &Value) -> Option<Millis> {
    let inner = wrapper(v, "$date").unwrap_or(v);
    let ms = match inner {
        Value::String(s) => parse_iso(s)?,
        Value::Number(n) => n.as_i64()?,
        other => number(other)?.as_i64()?,
    };
    in_range(ms).then_some(ms)
}

/// Extended JSON to plain JSON, as a client of the original would have sent
/// the value: ObjectIds as their hex, dates as ISO strings, numbers as
/// numbers. Other wrappers (binary, regex, …) stay objects, which no field
/// of an entity accepts.
pub fn plain(v: Value) -> Value {
    match v {
        Value::Object(m) if m.len() == 1 => {
            let o = Value::Object(m);
            if o.get("$oid").is_some() {
                if let Some(id) = object_id(&o) {
                    return Value::String(id);
                }
            }
            if o.get("$date").is_some() {
                if let Some(ms) = date(&o) {
                    return Value::String(to_iso(ms));
                }
            }
            if let Some(n) = number(&o) {
                return n;
            }
            match o {
                Value::Object(m) => fields(m),
                other => other,
            }
        }
        Value::Object(m) => fields(m),
        Value::Array(a) => Value::Array(a.into_iter().map(plain).collect()),
        other => other,
    }
}

fn fields(m: Map<String, Value>) -> Value {
    Value::Object(m.into_iter().map(|(k, v)| (k, plain(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_in_every_form() {
        let ms = 1_735_689_600_123;
        for v in [
            json!({"$date": "2025-01-01T00:00:00.123Z"}),
            json!({"$date": "2025-01-01T01:00:00.123+01:00"}),
            json!({"$date": {"$numberLong": "1735689600123"}}),
            json!({"$date": 1_735_689_600_123_i64}),
            json!("2025-01-01T00:00:00.123Z"),
        ] {
            assert_eq!(date(&v), Some(ms), "{v}");
        }
        assert_eq!(date(&json!({"$date": "yesterday"})), None);
        assert_eq!(date(&json!(null)), None);
        assert_eq!(
            date(&json!({"$date": {"$numberLong": "999999999999999999"}})),
            None
        );
    }

    #[test]
    fn object_ids() {
        let hex = "65a1b2c3d4e5f60718293a4b";
        assert_eq!(object_id(&json!({"$oid": hex})).as_deref(), Some(hex));
        assert_eq!(object_id(&json!(hex.to_uppercase())).as_deref(), Some(hex));
        assert_eq!(object_id(&json!({"$oid": "xyz"})), None);
        assert_eq!(object_id_time(hex), Some(0x65a1b2c3 * 1000));
    }

    #[test]
    fn plain_json_from_extended() {
        let v = plain(json!({
            "a": {"$numberInt": "3"}, "b": {"$numberLong": "9007199254740993"},
            "c": {"$numberDouble": "1.5"}, "d": {"$numberDouble": "NaN"},
            "e": [{"$date": {"$numberLong": "0"}}], "f": {"$oid": "65a1b2c3d4e5f60718293a4b"},
            "g": {"nested": {"$numberInt": "-1"}}, "h": {"$binary": {"base64": "", "subType": "00"}},
            "i": {"$numberDouble": "2.0"}
        }));
        assert_eq!(
            v,
            json!({"a": 3, "b": 9007199254740993_i64, "c": 1.5, "d": "NaN",
                   "e": ["1970-01-01T00:00:00.000Z"], "f": "65a1b2c3d4e5f60718293a4b",
                   "g": {"nested": -1}, "h": {"$binary": {"base64": "", "subType": "00"}},
                   "i": 2})
        );
    }
}
