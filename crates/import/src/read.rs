//! Reading a `mongoexport` file one document at a time: a JSON array
//! (`--jsonArray`) or one document per line (the default), told apart by
//! the first character. Only one document is held at a time.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use serde::de::{Deserializer as _, SeqAccess, Visitor};
use serde_json::Value;

/// Where a document is: its line (one per line) or its position in the
/// array (from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loc {
    Line(u64),
    Element(u64),
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Line(n) => write!(f, "line {n}"),
            Loc::Element(n) => write!(f, "element {n}"),
        }
    }
}

/// One document, or why it could not be read.
pub type Doc = Result<Value, String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Array,
    Lines,
}

/// Calls `each` with every document of the file at `path`, in order.
/// A line that is not JSON is reported and skipped; in an array, a syntax
/// error ends the file (nothing after it can be framed), reported once.
/// Fails only when the file cannot be read.
pub fn documents(path: &Path, each: impl FnMut(Loc, Doc)) -> io::Result<Format> {
    let mut r = BufReader::with_capacity(1 << 16, File::open(path)?);
    read(&mut r, each)
}

/// [`documents`] on any buffered reader.
pub fn read<R: BufRead>(r: &mut R, mut each: impl FnMut(Loc, Doc)) -> io::Result<Format> {
    skip_bom_and_space(r)?;
    let first = r.fill_buf()?.first().copied();
    if first == Some(b'[') {
        let mut de = serde_json::Deserializer::from_reader(r);
        let mut v = Elements {
            each: &mut each,
            n: 0,
        };
        if let Err(e) = (&mut de).deserialize_seq(&mut v) {
            if e.is_io() {
                return Err(io::Error::other(e));
            }
            let n = v.n + 1;
            each(
                Loc::Element(n),
                Err(format!(
                    "not JSON ({e}); the rest of the array is unreadable"
                )),
            );
        }
        return Ok(Format::Array);
    }
    let mut n = 0;
    loop {
        // Bytes, not a String read: an invalid UTF-8 line is one bad
        // document, not the end of the file.
        let mut bytes = Vec::new();
        if r.read_until(b'\n', &mut bytes)? == 0 {
            return Ok(Format::Lines);
        }
        n += 1;
        let text = String::from_utf8_lossy(&bytes);
        let t = text.trim();
        if t.is_empty() {
            continue;
        }
        each(
            Loc::Line(n),
            serde_json::from_str::<Value>(t).map_err(|e| format!("not JSON ({e})")),
        );
    }
}

fn skip_bom_and_space<R: BufRead>(r: &mut R) -> io::Result<()> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
            r.consume(3);
            continue;
        }
        let n = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        if n == 0 {
            return Ok(());
        }
        r.consume(n);
    }
}

struct Elements<'a, F> {
    each: &'a mut F,
    n: u64,
}

impl<'de, F: FnMut(Loc, Doc)> Visitor<'de> for &mut Elements<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of documents")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<Value>()? {
            self.n += 1;
            (self.each)(Loc::Element(self.n), Ok(v));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> (Format, Vec<(Loc, Doc)>) {
        let mut out = Vec::new();
        let f = read(&mut text.as_bytes(), |l, d| out.push((l, d))).unwrap();
        (f, out)
    }

    #[test]
    fn lines_and_arrays_are_told_apart() {
        let (f, docs) = all("{\"a\":1}\n\n{\"a\":2}\r\n{bad\n{\"a\":3}");
        assert_eq!(f, Format::Lines);
        assert_eq!(docs.len(), 4);
        assert_eq!(docs[1].0, Loc::Line(3));
        assert!(docs[2].1.is_err());
        assert_eq!(docs[3].1.as_ref().unwrap()["a"], 3);

        let (f, docs) = all("\u{feff}  [ {\"a\":1},\n{\"a\":2} ]");
        assert_eq!(f, Format::Array);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].0, Loc::Element(2));
    }

    #[test]
    fn a_broken_array_reports_where_it_broke() {
        let (_, docs) = all("[{\"a\":1}, {\"a\": ]");
        assert_eq!(docs.len(), 2);
        assert!(docs[0].1.is_ok());
        assert_eq!(docs[1].0, Loc::Element(2));
        assert!(docs[1]
            .1
            .as_ref()
            .unwrap_err()
            .contains("rest of the array"));
        let (_, docs) = all("");
        assert!(docs.is_empty());
    }
}
