//! Mongoose-compatible scalar casts.
//!
//! The original server stored every change through Mongoose schemas, which
//! cast a value to the field's declared type before validating it: a numeric
//! `movieId` became `"27205"`, `"true"` became `true`. Clients written
//! against it rely on that, so each caster here follows the matching file of
//! Mongoose 8 (`lib/cast/string.js`, `number.js`, `boolean.js`, `date.js`)
//! and, under it, the JavaScript conversions they call (`String(n)`,
//! `Number(s)`, `new Date(x)`). Where tidesync deliberately differs, the
//! function says so; `docs/DATA_MODELS.md` has the table.
//!
//! Every caster takes a non-null JSON value and returns the cast value and
//! whether a cast happened (the ack's `coercedFields`), or `None` when
//! Mongoose would throw a `CastError` (or tidesync refuses on purpose).

use serde_json::Value;

use crate::time::{in_range, parse_iso, to_iso, Millis};

mod es_date;
use es_date::parse_es_date;

/// A value accepted for a field, after casting.
#[derive(Clone, Debug, PartialEq)]
pub struct Cast {
    pub value: Value,
    /// The value was converted: its JSON type (or, for dates, its form)
    /// differs from what the field holds without a cast.
    pub coerced: bool,
}

impl Cast {
    fn same(v: &Value) -> Self {
        Cast {
            value: v.clone(),
            coerced: false,
        }
    }

    fn to(value: Value) -> Self {
        Cast {
            value,
            coerced: true,
        }
    }
}

/// A `String` field (`cast/string.js`): numbers and booleans become their
/// `toString()`. Objects and arrays are refused; Mongoose would unwrap a
/// document's string `_id` and (in recent versions) a one-element array,
/// tidesync does not: neither is something a sync client means to send.
pub fn string(v: &Value) -> Option<Cast> {
    match v {
        Value::String(_) => Some(Cast::same(v)),
        Value::Number(n) => Some(Cast::to(Value::String(js_number_to_string(n.as_f64()?)))),
        Value::Bool(b) => Some(Cast::to(Value::String(b.to_string()))),
        _ => None,
    }
}

/// A `Number` field (`cast/number.js`): `""` becomes `null`, other strings
/// and booleans go through JavaScript's `Number()`; `NaN` is refused, and so
/// is an infinity (`"Infinity"`, `"1e400"`), which JSON cannot carry.
pub fn number(v: &Value) -> Option<Cast> {
    match v {
        Value::Number(_) => Some(Cast::same(v)),
        Value::Bool(b) => Some(Cast::to(Value::from(u8::from(*b)))),
        Value::String(s) if s.is_empty() => Some(Cast::to(Value::Null)),
        Value::String(s) => {
            let x = js_string_to_number(s).filter(|x| x.is_finite())?;
            Some(Cast::to(number_value(x)))
        }
        _ => None,
    }
}

/// A `Boolean` field (`cast/boolean.js`): Mongoose 8's `convertToTrue`
/// (`true`, `'true'`, `1`, `'1'`, `'yes'`) and `convertToFalse` (`false`,
/// `'false'`, `0`, `'0'`, `'no'`), compared exactly (so `"TRUE"`, `" 1"`
/// and `2` are refused). `1.0` and `-0` count as `1` and `0`, as in a JS `Set`.
pub fn boolean(v: &Value) -> Option<Cast> {
    let b = match v {
        Value::Bool(_) => return Some(Cast::same(v)),
        Value::Number(n) => {
            // Compared as numbers, so -0 is 0 (a float pattern would hide that).
            let x = n.as_f64()?;
            if x == 1.0 {
                true
            } else if x == 0.0 {
                false
            } else {
                return None;
            }
        }
        Value::String(s) => match s.as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => return None,
        },
        _ => return None,
    };
    Some(Cast::to(Value::Bool(b)))
}

/// A `Date` field (`cast/date.js`), stored as `YYYY-MM-DDTHH:MM:SS.mmmZ`:
///
/// - an RFC 3339 date-time with offset is taken as before (not a cast);
/// - `""` becomes `null`;
/// - a number is epoch milliseconds (`new Date(n)`, fraction truncated);
/// - a numeric string `>= 275761` or `< -271820` is epoch milliseconds too
///   (Mongoose's rule: smaller numbers read as years);
/// - any other string must be in ECMAScript's date-time string format
///   (`2025`, `2025-06`, `2025-06-01`, `2025-06-01T10:00`, `…:30.5`, with an
///   optional `Z` / `±HH:MM`). Without an offset it is **UTC**: JavaScript
///   reads a date-time without offset in the server's local zone, which on
///   the original's servers is UTC too. Other text `new Date()` might guess
///   at (`"Jan 1 2025"`, `"12"`) depends on the engine and is refused.
///
/// Booleans, objects and arrays are refused (Mongoose asserts on booleans;
/// an object never makes a valid date). The instant must lie in years
/// 0000–9999, the range the stored form can write.
pub fn date(v: &Value) -> Option<Cast> {
    let iso = |ms: Millis| Value::String(to_iso(ms));
    match v {
        Value::String(s) if s.is_empty() => Some(Cast::to(Value::Null)),
        Value::String(s) => {
            if let Some(ms) = parse_iso(s) {
                return Some(Cast {
                    value: iso(ms),
                    coerced: false,
                });
            }
            let ms = match js_string_to_number(s) {
                Some(x) if !(-271_820.0..275_761.0).contains(&x) => epoch(x)?,
                _ => parse_es_date(s)?,
            };
            Some(Cast::to(iso(ms)))
        }
        Value::Number(n) => Some(Cast::to(iso(epoch(n.as_f64()?)?))),
        _ => None,
    }
}

/// `new Date(x)`'s time value: TimeClip truncates toward zero; NaN and
/// infinities are invalid dates.
fn epoch(x: f64) -> Option<Millis> {
    if !x.is_finite() || x.abs() > 8.64e15 {
        return None;
    }
    let ms = x.trunc() as Millis;
    in_range(ms).then_some(ms)
}

/// A JSON number for a cast result: integral values below 2^53 as integers,
/// so `"27205"` is stored as `27205` (what `JSON.stringify` prints), not
/// `27205.0`; `-0` as `0`, as `JSON.stringify` prints it.
fn number_value(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 {
        Value::from(x as i64)
    } else {
        Value::from(x)
    }
}

/// JavaScript's `Number::toString(10)` (ECMA-262 §6.1.6.1.20): the shortest
/// digits that round-trip, in plain notation for exponents from -7 to 20 and
/// in `1.5e+21` notation outside. Integers beyond 2^53 print as the double
/// JavaScript parsed them to (`12345678901234567890` → `"12345678901234567000"`),
/// exactly as the original stored them.
pub fn js_number_to_string(x: f64) -> String {
    if x == 0.0 {
        return "0".into(); // and -0
    }
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    // Rust's `{:e}` without precision prints the shortest round-trip digits.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` has an exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i64;
    let n = exp.parse::<i64>().expect("`{:e}` exponent is an integer") + 1;
    let zeros = |count: i64| "0".repeat(count as usize);
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", zeros(n - k))
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", zeros(-n))
    } else {
        let e = n - 1;
        let sign = if e < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at(1);
        if rest.is_empty() {
            format!("{first}e{sign}{}", e.abs())
        } else {
            format!("{first}.{rest}e{sign}{}", e.abs())
        }
    };
    if x < 0.0 {
        format!("-{body}")
    } else {
        body
    }
}

/// ECMAScript's StrWhiteSpaceChar: WhiteSpace and LineTerminator. Not
/// `char::is_whitespace`, which also has U+0085 and lacks U+FEFF.
fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{FEFF}'
    )
}

/// JavaScript's `Number(s)` for a string (ECMA-262 StringToNumber); `None`
/// is `NaN`. Surrounding whitespace is trimmed and an empty or blank string
/// is `0`; `0x`/`0o`/`0b` integers (unsigned), decimals with an optional
/// sign, fraction and exponent, and `Infinity` are accepted. Not `1_000`,
/// not `inf`/`nan`, which Rust's parser would take.
pub fn js_string_to_number(s: &str) -> Option<f64> {
    let t = s.trim_matches(is_js_space);
    if t.is_empty() {
        return Some(0.0);
    }
    let b = t.as_bytes();
    if b.len() > 2 && b[0] == b'0' {
        let radix = match b[1] {
            b'x' | b'X' => Some(16),
            b'o' | b'O' => Some(8),
            b'b' | b'B' => Some(2),
            _ => None,
        };
        if let Some(radix) = radix {
            return parse_radix(&t[2..], radix);
        }
    }
    let (sign, unsigned) = match b[0] {
        b'+' => (1.0, &t[1..]),
        b'-' => (-1.0, &t[1..]),
        _ => (1.0, t),
    };
    if unsigned == "Infinity" {
        return Some(sign * f64::INFINITY);
    }
    if !is_decimal_literal(unsigned) {
        return None;
    }
    // The grammar is checked; Rust's parser rounds correctly, like JS's.
    unsigned.parse::<f64>().ok().map(|x| sign * x)
}

/// StrUnsignedDecimalLiteral without `Infinity`: `1`, `1.`, `1.5`, `.5`,
/// each with an optional `e`/`E`, sign and digits.
fn is_decimal_literal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let mut mantissa = digits(&mut i);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        mantissa += digits(&mut i);
    }
    if mantissa == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

fn parse_radix(digits: &str, radix: u32) -> Option<f64> {
    if digits.is_empty() {
        return None;
    }
    // Exact while it fits in a u128, then (beyond 3.4e38) accumulated as a
    // double, which may differ from JS in the last bit for such huge values.
    let mut exact: Option<u128> = Some(0);
    let mut approx = 0.0f64;
    for c in digits.chars() {
        let d = c.to_digit(radix)?;
        exact = exact
            .and_then(|v| v.checked_mul(u128::from(radix)))
            .and_then(|v| v.checked_add(u128::from(d)));
        approx = approx * f64::from(radix) + f64::from(d);
    }
    Some(exact.map_or(approx, |v| v as f64))
}

#[cfg(test)]
mod tests;
