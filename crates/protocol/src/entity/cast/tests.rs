//! Tests of the casts, each against what Mongoose 8 does with the same value.

use super::*;
use serde_json::json;

fn cast(f: fn(&Value) -> Option<Cast>, v: Value) -> Option<(Value, bool)> {
    f(&v).map(|c| (c.value, c.coerced))
}

#[test]
fn strings_take_numbers_and_booleans_as_javascript_prints_them() {
    for (input, out) in [
        (json!(27205), "27205"),
        (json!(1.5), "1.5"),
        (json!(-3), "-3"),
        (json!(0.1), "0.1"),
        (json!(-0.0), "0"),
        (json!(1e21), "1e+21"),
        (json!(1.5e300), "1.5e+300"),
        (json!(1e20), "100000000000000000000"),
        (json!(0.000001), "0.000001"),
        (json!(1e-7), "1e-7"),
        (json!(1.25e-7), "1.25e-7"),
        (json!(123456.789), "123456.789"),
        (json!(12345678901234567890u64), "12345678901234567000"),
        (json!(9007199254740993i64), "9007199254740992"),
        (json!(true), "true"),
        (json!(false), "false"),
    ] {
        assert_eq!(
            cast(string, input.clone()),
            Some((json!(out), true)),
            "{input}"
        );
    }
    assert_eq!(cast(string, json!("27205")), Some((json!("27205"), false)));
    assert_eq!(cast(string, json!("")), Some((json!(""), false)));
}

#[test]
fn strings_refuse_objects_and_arrays() {
    for v in [
        json!({}),
        json!({"_id": "x"}),
        json!(["a"]),
        json!([]),
        json!([1]),
    ] {
        assert_eq!(cast(string, v.clone()), None, "{v}");
    }
}

#[test]
fn number_to_string_matches_javascript_at_the_notation_bounds() {
    assert_eq!(js_number_to_string(123e-20), "1.23e-18");
    assert_eq!(js_number_to_string(1e-6), "0.000001");
    assert_eq!(js_number_to_string(1.5e-6), "0.0000015");
    assert_eq!(
        js_number_to_string(999999999999999900000.0),
        "999999999999999900000"
    );
    assert_eq!(js_number_to_string(f64::MAX), "1.7976931348623157e+308");
    assert_eq!(js_number_to_string(5e-324), "5e-324");
    assert_eq!(js_number_to_string(-1e21), "-1e+21");
}

#[test]
fn numbers_take_numeric_strings_and_booleans() {
    for (input, out) in [
        (json!("27205"), json!(27205)),
        (json!(" 42\n"), json!(42)),
        (json!("\u{FEFF}\u{A0}7\u{3000}"), json!(7)),
        (json!("1.5"), json!(1.5)),
        (json!("-2.5e3"), json!(-2500)),
        (json!("+3"), json!(3)),
        (json!(".5"), json!(0.5)),
        (json!("5."), json!(5)),
        (json!("1E2"), json!(100)),
        (json!("0x1A"), json!(26)),
        (json!("0o17"), json!(15)),
        (json!("0B101"), json!(5)),
        (json!("-0"), json!(0)),
        (json!("   "), json!(0)), // Number("   ") is 0, and only "" is null
        (json!(""), Value::Null),
        (json!(true), json!(1)),
        (json!(false), json!(0)),
    ] {
        assert_eq!(cast(number, input.clone()), Some((out, true)), "{input}");
    }
    assert_eq!(cast(number, json!(3.25)), Some((json!(3.25), false)));
    assert_eq!(cast(number, json!(-7)), Some((json!(-7), false)));
}

#[test]
fn numbers_refuse_nan_infinity_and_structures() {
    for v in [
        json!("abc"),
        json!("12abc"),
        json!("1_000"),
        json!("1,5"),
        json!("0x"),
        json!("-0x10"),
        json!("0xG"),
        json!("."),
        json!("e5"),
        json!("1e"),
        json!("inf"),
        json!("nan"),
        json!("NaN"),
        json!("Infinity"),
        json!("-Infinity"),
        json!("1e400"),
        json!({}),
        json!([5]),
    ] {
        assert_eq!(cast(number, v.clone()), None, "{v}");
    }
}

#[test]
fn booleans_take_mongooses_lists_exactly() {
    for (input, out) in [
        (json!("true"), true),
        (json!("1"), true),
        (json!("yes"), true),
        (json!(1), true),
        (json!(1.0), true),
        (json!("false"), false),
        (json!("0"), false),
        (json!("no"), false),
        (json!(0), false),
        (json!(-0.0), false),
    ] {
        assert_eq!(
            cast(boolean, input.clone()),
            Some((json!(out), true)),
            "{input}"
        );
    }
    assert_eq!(cast(boolean, json!(true)), Some((json!(true), false)));
    for v in [
        json!("TRUE"),
        json!("Yes"),
        json!(" true"),
        json!("on"),
        json!(""),
        json!(2),
        json!(0.5),
        json!({}),
        json!([true]),
    ] {
        assert_eq!(cast(boolean, v.clone()), None, "{v}");
    }
}

#[test]
fn dates_take_iso_forms_and_epoch_milliseconds() {
    let jan1 = json!("2025-01-01T00:00:00.000Z");
    for input in [
        json!(1_735_689_600_000i64),
        json!(1_735_689_600_000.9), // new Date truncates
        json!("1735689600000"),
        json!(" 1735689600000 "),
        json!("2025"),
        json!("2025-01"),
        json!("2025-01-01"),
        json!("2025-01-01T00:00"),
        json!("2025-01-01T00:00:00"),
        json!("2025-01-01T00:00:00.0001"),
        json!("2025-01-01T02:00+02:00"),
        json!("+002025-01-01"),
    ] {
        assert_eq!(
            cast(date, input.clone()),
            Some((jan1.clone(), true)),
            "{input}"
        );
    }
    assert_eq!(
        cast(date, json!("2025-06-30T23:59:59.12")),
        Some((json!("2025-06-30T23:59:59.120Z"), true))
    );
    assert_eq!(
        cast(date, json!(-1)),
        Some((json!("1969-12-31T23:59:59.999Z"), true))
    );
    // Mongoose's threshold: a numeric string from -271820 up to 275760
    // is a year, not milliseconds.
    assert_eq!(
        cast(date, json!("275761")),
        Some((json!("1970-01-01T00:04:35.761Z"), true))
    );
    assert_eq!(cast(date, json!("")), Some((Value::Null, true)));
    // What the strict rule took stays uncoerced (only normalised).
    assert_eq!(
        cast(date, json!("2025-01-01T02:00:00+02:00")),
        Some((jan1, false))
    );
}

#[test]
fn dates_refuse_the_rest() {
    for v in [
        json!(true),
        json!(false),
        json!({}),
        json!(["2025-01-01"]),
        json!("last tuesday"),
        json!("Jan 1 2025"),
        json!("12"), // a year below 275761 that is not YYYY: engine-specific in JS
        json!("2025-13-01"),
        json!("2025-02-30"),
        json!("2025-01-01T24:00"),
        json!("2025-01-01T10"),
        json!("2025-01-01T10:00:60"),
        json!("2025-01-01T10:00:00."),
        json!("2025-01-01Z"),
        json!("2025-01-01T10:00+0200"),
        json!("-000000-01-01"),
        json!("+010000-01-01"),        // beyond year 9999
        json!(253_402_300_800_000i64), // 10000-01-01
        json!("8640000000000001"),
        json!("Infinity"),
    ] {
        assert_eq!(cast(date, v.clone()), None, "{v}");
    }
}
