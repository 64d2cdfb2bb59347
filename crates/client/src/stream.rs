//! The event stream (`GET /api/sync/stream`) as a `Stream` of change events.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use tidesync_protocol::sync::ChangeEvent;

use reqwest::header::{ACCEPT, CONTENT_TYPE};

use crate::error::{self, Error};
use crate::sse::{SseEvent, SseParser};
use crate::{Client, Result};

type Chunks = Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// An open event stream. Each item is a `change` event: another device of
/// the user committed something, and `sync_timestamp` is the cursor it
/// reached; pull from your own cursor when one arrives. The stream ends
/// (`None`) when the server closes it: token revoked, account deleted, or
/// shutdown. Reconnect after a delay with
/// [`StreamRequest::last_event_id`](StreamRequest::last_event_id) set
/// to [`EventStream::last_event_id`], so that a change missed meanwhile is
/// announced at once.
///
/// Use it as a [`futures_core::Stream`] or call [`EventStream::next_event`].
pub struct EventStream {
    chunks: Chunks,
    parser: SseParser,
    ready: VecDeque<SseEvent>,
    done: bool,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("last_event_id", &self.last_event_id())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl EventStream {
    pub(crate) fn new(res: reqwest::Response) -> Self {
        EventStream {
            chunks: Box::pin(res.bytes_stream()),
            parser: SseParser::new(),
            ready: VecDeque::new(),
            done: false,
        }
    }

    /// The next change event; `None` once the server ended the stream.
    pub async fn next_event(&mut self) -> Option<Result<ChangeEvent, Error>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// The id of the last event received: send it as `Last-Event-ID` when
    /// reconnecting.
    pub fn last_event_id(&self) -> Option<&str> {
        self.parser.last_event_id()
    }

    /// The reconnection delay the server asked for, if it did.
    pub fn retry(&self) -> Option<std::time::Duration> {
        self.parser.retry()
    }
}

/// A `change` event's data is `{"syncTimestamp": …}`; its id is the same
/// cursor, used when the data is missing.
fn to_change(ev: SseEvent) -> Option<Result<ChangeEvent, Error>> {
    if ev.event != "change" {
        return None; // other event types are for newer clients
    }
    if ev.data.trim().is_empty() {
        return ev
            .id
            .map(|sync_timestamp| Ok(ChangeEvent { sync_timestamp }));
    }
    Some(
        serde_json::from_str::<ChangeEvent>(&ev.data).map_err(|e| Error::Decode {
            status: reqwest::StatusCode::OK,
            reason: format!("change event data {:?}: {e}", ev.data),
        }),
    )
}

impl Stream for EventStream {
    type Item = Result<ChangeEvent, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            while let Some(ev) = this.ready.pop_front() {
                if let Some(item) = to_change(ev) {
                    return Poll::Ready(Some(item));
                }
            }
            if this.done {
                return Poll::Ready(None);
            }
            match this.chunks.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => this.done = true,
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(Error::Transport(e))));
                }
                Poll::Ready(Some(Ok(bytes))) => this.ready.extend(this.parser.feed(&bytes)),
            }
        }
    }
}

/// How to open an event stream: with this client's token (the default) or
/// a stream ticket, and from where (`Last-Event-ID`).
#[must_use = "call .open() to connect"]
pub struct StreamRequest {
    pub(crate) client: Client,
    pub(crate) device_id: String,
    pub(crate) last_event_id: Option<String>,
    pub(crate) ticket: Option<String>,
}

impl StreamRequest {
    /// The id of the last event received before a reconnect: if the user's
    /// data moved past it, the server announces that at once.
    pub fn last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = Some(id.into());
        self
    }

    /// Authenticate with a ticket from [`Client::stream_ticket`] instead of
    /// the token (no `Authorization` header is sent then).
    pub fn ticket(mut self, ticket: impl Into<String>) -> Self {
        self.ticket = Some(ticket.into());
        self
    }

    pub async fn open(self) -> Result<EventStream> {
        let mut url = self.client.url("/api/sync/stream")?;
        url.query_pairs_mut()
            .append_pair("deviceId", &self.device_id);
        if let Some(t) = &self.ticket {
            url.query_pairs_mut().append_pair("ticket", t);
        }
        let mut req = self.client.http.get(url);
        if let (None, Some(token)) = (&self.ticket, &self.client.token) {
            req = req.bearer_auth(token);
        }
        if let Some(id) = &self.last_event_id {
            req = req.header("last-event-id", id);
        }
        let res = req.header(ACCEPT, "text/event-stream").send().await?;
        let status = res.status();
        if !status.is_success() {
            let headers = res.headers().clone();
            let body = res.bytes().await?;
            return Err(error::error_from_response(status, &headers, &body));
        }
        let ctype = res
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !ctype.starts_with("text/event-stream") {
            return Err(Error::Protocol(format!(
                "the stream answered {status} with content-type {ctype:?}"
            )));
        }
        Ok(EventStream::new(res))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
            id: id.map(Into::into),
        }
    }

    #[test]
    fn change_events_are_decoded_and_others_skipped() {
        let c = to_change(ev(
            "change",
            r#"{"syncTimestamp":"v1.u.3"}"#,
            Some("v1.u.3"),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(c.sync_timestamp, "v1.u.3");
        assert!(to_change(ev("message", "hello", None)).is_none());
        let from_id = to_change(ev("change", "", Some("v1.u.8")))
            .unwrap()
            .unwrap();
        assert_eq!(from_id.sync_timestamp, "v1.u.8");
        assert!(matches!(
            to_change(ev("change", "{oops", None)),
            Some(Err(Error::Decode { .. }))
        ));
    }
}
