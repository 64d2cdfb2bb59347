//! Progress of the long subcommands (`import mongo`, `gc`, `backup`,
//! `restore`) on standard error, only when it is a terminal: in scripts,
//! cron jobs and logs the bars are hidden and cost nothing, so the output
//! is what it always was.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

fn target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

fn styled(bar: ProgressBar, template: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("=> ");
    bar.set_style(style);
    // Kept moving (the spinner, the time) while the work reports nothing;
    // no ticker thread when nothing is shown.
    if !bar.is_hidden() {
        bar.enable_steady_tick(Duration::from_millis(200));
    }
    bar
}

/// A spinner with a message and the time spent, for work of unknown size.
pub fn spinner(message: &'static str) -> ProgressBar {
    let bar = styled(
        ProgressBar::with_draw_target(None, target()),
        "{spinner} {msg} ({elapsed})",
    );
    bar.set_message(message);
    bar
}

/// A bar over `total` bytes.
pub fn bytes(total: u64, message: &'static str) -> ProgressBar {
    let bar = styled(
        ProgressBar::with_draw_target(Some(total), target()),
        "{msg} [{bar:30}] {bytes}/{total_bytes} ({elapsed}, {eta} left)",
    );
    bar.set_message(message);
    bar
}

/// A bar over `total` steps, with a message that the work updates.
pub fn steps(total: u64, unit: &'static str) -> ProgressBar {
    styled(
        ProgressBar::with_draw_target(Some(total), target()),
        &format!("{{msg}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{elapsed}}, {{eta}} left)"),
    )
}

/// A counter of things done, for work whose total is unknown.
pub fn counter(unit: &'static str) -> ProgressBar {
    styled(
        ProgressBar::with_draw_target(None, target()),
        &format!("{{spinner}} {{msg}}: {{human_pos}} {unit} ({{elapsed}})"),
    )
}
