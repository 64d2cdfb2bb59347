//! A pull as a need/feed machine, beside [`crate::Push`]: the user's view,
//! then (for a date cursor) where that date falls in each scope, then one
//! page. Backends answer each [`PullNeed`] inside one read snapshot and
//! never decide anything themselves.

use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::time::Millis;
use tidesync_protocol::ScopeId;

use crate::page::{self, FirstSince, Page, PageQuery, PullPlan};
use crate::{EngineError, SyncOutput, View};

/// A pull: from `cursor`, at most `limit` records and about `max_bytes` of them.
#[derive(Clone, Debug)]
pub struct PullInput {
    pub cursor: CursorStart,
    pub limit: usize,
    pub max_bytes: usize,
}

/// What a pull needs read next.
#[derive(Clone, Debug, PartialEq)]
pub enum PullNeed {
    /// The user's scopes, roles and heads: [`PullLoaded::View`].
    View,
    /// The first version written at or after `since` in each scope:
    /// [`PullLoaded::FirstSince`].
    FirstSince { scopes: Vec<ScopeId>, since: Millis },
    /// The page: [`PullLoaded::Page`].
    Page(PageQuery),
}

/// The answer to a [`PullNeed`].
#[derive(Debug)]
pub enum PullLoaded {
    View(View),
    FirstSince(FirstSince),
    Page(Page),
}

/// A pull in progress.
#[derive(Debug)]
pub struct Pull {
    input: PullInput,
    view: Option<View>,
    plan: Option<PullPlan>,
    page: Option<Page>,
}

impl Pull {
    pub fn new(input: PullInput) -> Pull {
        Pull {
            input,
            view: None,
            plan: None,
            page: None,
        }
    }

    /// What to read next; `None` when [`Pull::finish`] can answer.
    pub fn need(&self) -> Option<PullNeed> {
        let Some(view) = &self.view else {
            return Some(PullNeed::View);
        };
        match (&self.plan, &self.page) {
            (None, _) => {
                page::needs_first_since(&self.input.cursor).map(|since| PullNeed::FirstSince {
                    scopes: view.readable().iter().map(|s| s.id).collect(),
                    since,
                })
            }
            (Some(plan), None) => Some(PullNeed::Page(plan.page.clone())),
            (Some(_), Some(_)) => None,
        }
    }

    /// Takes the answer to the last need.
    pub fn feed(&mut self, loaded: PullLoaded) -> Result<(), EngineError> {
        match loaded {
            PullLoaded::View(view) => {
                self.view = Some(view);
                if page::needs_first_since(&self.input.cursor).is_none() {
                    self.plan_page(&FirstSince::new())?;
                }
            }
            PullLoaded::FirstSince(first) if self.view.is_some() => self.plan_page(&first)?,
            PullLoaded::Page(page) if self.plan.is_some() => self.page = Some(page),
            _ => return Err(EngineError::Protocol("a pull was fed out of order")),
        }
        Ok(())
    }

    fn plan_page(&mut self, first: &FirstSince) -> Result<(), EngineError> {
        let Some(view) = self.view.as_ref() else {
            return Err(EngineError::Protocol("a pull was fed out of order"));
        };
        self.plan = Some(page::plan(
            &self.input.cursor,
            view,
            first,
            self.input.limit,
            self.input.max_bytes,
        )?);
        Ok(())
    }

    /// The answer, once [`Pull::need`] is `None`.
    pub fn finish(self) -> Result<SyncOutput, EngineError> {
        match (self.plan, self.page) {
            (Some(plan), Some(page)) => Ok(SyncOutput::pulled(page, plan.removed_spaces)),
            _ => Err(EngineError::Protocol(
                "a pull finished before its page was read",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidesync_protocol::UserId;

    fn view() -> View {
        View::personal(
            UserId::from_uuid(tidesync_protocol::uuid::Uuid::from_u128(1)),
            ScopeId::new(7),
            3,
        )
    }

    fn input(cursor: CursorStart) -> PullInput {
        PullInput {
            cursor,
            limit: 10,
            max_bytes: 1 << 20,
        }
    }

    #[test]
    fn a_cursor_pull_reads_the_view_then_one_page() {
        let mut pull = Pull::new(input(CursorStart::personal(1)));
        assert_eq!(pull.need(), Some(PullNeed::View));
        pull.feed(PullLoaded::View(view())).unwrap();
        let Some(PullNeed::Page(q)) = pull.need() else {
            panic!("a page must be next");
        };
        assert_eq!(q.personal, ScopeId::new(7));
        assert_eq!(q.ranges.len(), 1);
        assert_eq!((q.ranges[0].after, q.ranges[0].upto), (1, 3));
        pull.feed(PullLoaded::Page(Page::default())).unwrap();
        assert_eq!(pull.need(), None);
        let out = pull.finish().unwrap();
        assert!(out.records.is_empty() && out.acks.is_empty());
    }

    #[test]
    fn a_date_cursor_asks_where_the_date_falls_in_each_readable_scope() {
        let mut pull = Pull::new(input(CursorStart::Since(1_000)));
        pull.feed(PullLoaded::View(view())).unwrap();
        assert_eq!(
            pull.need(),
            Some(PullNeed::FirstSince {
                scopes: vec![ScopeId::new(7)],
                since: 1_000
            })
        );
        let first = FirstSince::from([(ScopeId::new(7), 2)]);
        pull.feed(PullLoaded::FirstSince(first)).unwrap();
        assert!(matches!(pull.need(), Some(PullNeed::Page(_))));
    }

    #[test]
    fn feeding_out_of_order_is_a_protocol_error_not_a_panic() {
        let mut pull = Pull::new(input(CursorStart::Scratch));
        assert!(matches!(
            pull.feed(PullLoaded::Page(Page::default())),
            Err(EngineError::Protocol(_))
        ));
        assert!(matches!(
            Pull::new(input(CursorStart::Scratch)).finish(),
            Err(EngineError::Protocol(_))
        ));
    }
}
