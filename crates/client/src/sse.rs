//! An incremental Server-Sent Events parser (the WHATWG `text/event-stream`
//! rules), independent of any transport: feed it bytes as they arrive.

use std::time::Duration;

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `"message"` when the event had none.
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The last event id at dispatch (what to send back as `Last-Event-ID`).
    pub id: Option<String>,
}

#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of an unfinished line.
    line: Vec<u8>,
    /// A `\r` ended the last chunk: a `\n` starting the next one belongs to it.
    after_cr: bool,
    started: bool,
    event: String,
    data: String,
    has_data: bool,
    last_id: Option<String>,
    retry: Option<Duration>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `bytes`, returning the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let mut rest = bytes;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(i) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&rest[..i]);
            let cr = rest[i] == b'\r';
            rest = &rest[i + 1..];
            if cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.after_cr = true,
                    _ => {}
                }
            }
            let line = std::mem::take(&mut self.line);
            if let Some(ev) = self.line_done(&line) {
                out.push(ev);
            }
        }
        self.line.extend_from_slice(rest);
        out
    }

    /// The id to reconnect with (`Last-Event-ID`), if any event set one.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// The reconnection delay the server asked for with `retry:`.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    fn line_done(&mut self, raw: &[u8]) -> Option<SseEvent> {
        let mut line = String::from_utf8_lossy(raw).into_owned();
        if !self.started {
            self.started = true;
            if let Some(stripped) = line.strip_prefix('\u{feff}') {
                line = stripped.to_owned();
            }
        }
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None; // a comment (the server's heartbeat)
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok().map(Duration::from_millis);
            }
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        Some(SseEvent {
            event: if event.is_empty() {
                "message".into()
            } else {
                event
            },
            data,
            id: self.last_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> (Vec<SseEvent>, SseParser) {
        let mut p = SseParser::new();
        let evs = chunks.iter().flat_map(|c| p.feed(c)).collect();
        (evs, p)
    }

    fn change(id: &str) -> SseEvent {
        SseEvent {
            event: "change".into(),
            data: format!(r#"{{"syncTimestamp":"{id}"}}"#),
            id: Some(id.into()),
        }
    }

    #[test]
    fn the_servers_change_events_and_heartbeats() {
        let wire = b": heartbeat\n\nevent: change\nid: v1.u.4\ndata: {\"syncTimestamp\":\"v1.u.4\"}\n\n:\n\nevent: change\nid: v1.u.9\ndata: {\"syncTimestamp\":\"v1.u.9\"}\n\n";
        let (evs, p) = all(&[wire]);
        assert_eq!(evs, vec![change("v1.u.4"), change("v1.u.9")]);
        assert_eq!(p.last_event_id(), Some("v1.u.9"));
    }

    #[test]
    fn any_split_of_the_bytes_gives_the_same_events() {
        let wire: &[u8] =
            b"event: change\r\nid: v1.u.4\r\ndata: {\"syncTimestamp\":\"v1.u.4\"}\r\n\r\nevent: change\rid: v1.u.5\rdata: {\"syncTimestamp\":\"v1.u.5\"}\r\r";
        let want = vec![change("v1.u.4"), change("v1.u.5")];
        for cut in 0..wire.len() {
            let (evs, _) = all(&[&wire[..cut], &wire[cut..]]);
            assert_eq!(evs, want, "split at {cut}");
        }
        let bytes: Vec<&[u8]> = wire.chunks(1).flat_map(|b| [b, &b""[..]]).collect();
        assert_eq!(
            all(&bytes).0,
            want,
            "one byte at a time, empty chunks between"
        );
    }

    #[test]
    fn field_rules() {
        let (evs, p) = all(&[
            "\u{feff}data: a\ndata:b\ndata\n\nid: x\nretry: 2500\n\nevent: e\ndata:  two spaces\nunknown: 1\n\nid: bad\0id\ndata: z\n\ndata: never dispatched".as_bytes(),
        ]);
        assert_eq!(
            evs,
            vec![
                SseEvent {
                    event: "message".into(),
                    data: "a\nb\n".into(),
                    id: None
                },
                SseEvent {
                    event: "e".into(),
                    data: " two spaces".into(),
                    id: Some("x".into())
                },
                SseEvent {
                    event: "message".into(),
                    data: "z".into(),
                    id: Some("x".into())
                },
            ]
        );
        assert_eq!(p.retry(), Some(Duration::from_millis(2500)));
        assert_eq!(p.last_event_id(), Some("x"), "an id with NUL is ignored");
    }

    #[test]
    fn multibyte_characters_split_across_chunks() {
        let wire = "data: é😀\n\n".as_bytes();
        let (evs, _) = all(&[&wire[..7], &wire[7..]]);
        assert_eq!(evs[0].data, "é😀");
    }
}
