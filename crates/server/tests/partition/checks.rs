//! What the answers of each phase must be, and the figures of a run.

use std::time::Duration;

use crate::traffic::{Outcome, Phase, Sent};
use crate::{A, B};

/// What each phase's answers must be.
pub fn check_answers(sent: &[Sent]) {
    let ok = |s: &&Sent| matches!(s.outcome, Outcome::Acked { .. });
    let within = |s: &&Sent, p: Phase| s.started == p && s.ended == p;
    for s in sent.iter().filter(|s| within(s, Phase::Warm)) {
        assert!(ok(&s), "before any fault, {} got {:?}", s.device, s.outcome);
    }
    for dev in ["a0", "a1", "b0", "b1"] {
        let mine: Vec<&Sent> = sent.iter().filter(|s| s.device == dev).collect();
        // From the first fault on: the warm-up is all 200s.
        let timeline = || {
            mine.iter()
                .filter(|s| s.ended > Phase::Warm)
                .map(|s| {
                    format!(
                        "{:?}→{:?} {:?} in {:.1?}",
                        s.started, s.ended, s.outcome, s.took
                    )
                })
                .collect::<Vec<_>>()
                .join("\n  ")
        };
        let degraded_ok = mine
            .iter()
            .filter(|s| within(s, Phase::Degraded) && ok(s))
            .count();
        assert!(
            degraded_ok > 0,
            "{dev}: no push succeeded on the degraded link:\n  {}",
            timeline()
        );
        let cut: Vec<&&Sent> = mine.iter().filter(|s| within(s, Phase::Cut)).collect();
        if dev.starts_with('a') {
            let refused = mine
                .iter()
                .filter(|s| s.ended == Phase::Cut && !ok(s))
                .count();
            assert!(
                refused > 0,
                "{dev}: no push was refused during the cut:\n  {}",
                timeline()
            );
            for s in &cut {
                assert!(
                    !ok(s),
                    "{dev}: a push was acknowledged while A's database was cut off:\n  {}",
                    timeline()
                );
            }
        } else {
            let served = cut.iter().filter(|s| ok(s)).count();
            assert!(
                served >= 2,
                "{dev} (instance B) was served {served} times while A was cut off:\n  {}",
                timeline()
            );
        }
    }
}

/// The figures of this run, for the record (not asserted).
pub fn report(sent: &[Sent], recovered: Duration, poke: Duration, stored_unanswered: usize) {
    for phase in [Phase::Degraded, Phase::Cut, Phase::Restored] {
        for (host, name) in [(A, "A"), (B, "B")] {
            let s: Vec<&Sent> = sent
                .iter()
                .filter(|s| s.host == host && s.ended == phase)
                .collect();
            let ok = s
                .iter()
                .filter(|s| matches!(s.outcome, Outcome::Acked { .. }))
                .count();
            let first_ok = s
                .iter()
                .filter(|s| matches!(s.outcome, Outcome::Acked { .. }))
                .map(|s| s.at)
                .min();
            eprintln!(
                "partition: answered while {phase:?}, on {name}: {ok} of {} pushes acknowledged, \
                 the first {first_ok:.1?} into the phase",
                s.len()
            );
        }
    }
    eprintln!(
        "partition: every device served again {recovered:.1?} after the link returned; \
         poke through B reached A's stream in {poke:.1?}; \
         {stored_unanswered} refused batches had been committed (answer lost)"
    );
}
