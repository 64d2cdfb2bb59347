//! The ECMAScript Date Time String Format, the one text form `new Date(s)`
//! reads alike in every engine: [`date`](super::date)'s parser for text that
//! is not already the stored ISO 8601 form.

use crate::time::{in_range, Millis};

/// ECMAScript's Date Time String Format (ECMA-262 §21.4.1.32): `YYYY`,
/// `YYYY-MM`, `YYYY-MM-DD` or the six-digit `±YYYYYY` forms, optionally
/// followed by `THH:mm`, `THH:mm:ss` or `THH:mm:ss.sss` (any number of
/// fraction digits, as V8 takes, truncated to milliseconds) and, after a
/// time, `Z` or `±HH:mm`. Without an offset the instant is UTC.
pub(super) fn parse_es_date(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    if b.len() > 64 || !s.is_ascii() {
        return None;
    }
    let mut p = Parser { b, i: 0 };
    let year: i32 = match b.first()? {
        c @ (b'+' | b'-') => {
            p.i += 1;
            let y = p.fixed(6)? as i32;
            if *c == b'-' && y == 0 {
                return None; // `-000000` is not a year (ECMA-262)
            }
            if *c == b'-' {
                -y
            } else {
                y
            }
        }
        _ => p.fixed(4)? as i32,
    };
    let mut month = 1;
    let mut day = 1;
    if p.eat(b'-') {
        month = p.fixed(2)?;
        if p.eat(b'-') {
            day = p.fixed(2)?;
        }
    }
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()?;
    let mut ms_of_day: i64 = 0;
    let mut offset_min: i64 = 0;
    if p.eat(b'T') {
        let h = p.fixed(2)?;
        p.expect(b':')?;
        let m = p.fixed(2)?;
        let mut sec = 0;
        let mut milli = 0;
        if p.eat(b':') {
            sec = p.fixed(2)?;
            if p.eat(b'.') {
                let start = p.i;
                while p.i < b.len() && b[p.i].is_ascii_digit() {
                    p.i += 1;
                }
                let frac = &s[start..p.i];
                if frac.is_empty() {
                    return None;
                }
                milli = format!("{frac:0<3}")[..3].parse::<i64>().ok()?;
            }
        }
        if h > 23 || m > 59 || sec > 59 {
            return None;
        }
        ms_of_day = ((h * 60 + m) * 60 + sec) * 1000 + milli;
        match b.get(p.i) {
            Some(b'Z') => p.i += 1,
            Some(&c @ (b'+' | b'-')) => {
                p.i += 1;
                let oh = p.fixed(2)?;
                p.expect(b':')?;
                let om = p.fixed(2)?;
                if oh > 23 || om > 59 {
                    return None;
                }
                offset_min = (oh * 60 + om) * if c == b'-' { -1 } else { 1 };
            }
            _ => {}
        }
    }
    if p.i != b.len() {
        return None;
    }
    // Julian day 2440588 is 1970-01-01.
    let days = i64::from(date.to_julian_day()) - 2_440_588;
    let ms = days * 86_400_000 + ms_of_day - offset_min * 60_000;
    in_range(ms).then_some(ms)
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    /// Exactly `n` ASCII digits.
    fn fixed(&mut self, n: usize) -> Option<i64> {
        let digits = self.b.get(self.i..self.i + n)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(
            digits
                .iter()
                .fold(0, |acc, d| acc * 10 + i64::from(d - b'0')),
        )
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.b.get(self.i) == Some(&c);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        self.eat(c).then_some(())
    }
}
