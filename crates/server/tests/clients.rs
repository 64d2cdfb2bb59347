//! The TypeScript SDK and the demo app (`clients/`): their unit tests, the
//! package build, the bundle-size check, the reproducible demo build, and
//! the end-to-end tests in a real Chromium against this very binary, all
//! run by `clients/test.sh`. Part of `cargo test`, so the one test command
//! covers everything.
//!
//! Without Node.js and npm the test is reported ignored, with one note;
//! without Chromium, `clients/test.sh` runs everything but the browser
//! tests and prints its own one-line note.

use std::path::Path;
use std::process::Command;

use libtest_mimic::{Arguments, Failed, Trial};

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run() -> Result<(), Failed> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let status = Command::new("bash")
        .arg(repo.join("clients/test.sh"))
        .env("TIDESYNC_BIN", env!("CARGO_BIN_EXE_tidesync"))
        .status()
        .map_err(|e| Failed::from(format!("cannot run clients/test.sh: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failed::from(format!("clients/test.sh failed: {status}")))
    }
}

fn main() {
    let args = Arguments::from_args();
    let node = have("node") && have("npm");
    if !node && !args.list {
        eprintln!(
            "NOTE: client tests skipped: Node.js and npm are not installed (needed for clients/)"
        );
    }
    let trials =
        vec![Trial::test("clients::sdk_demo_and_browser_tests", run).with_ignored_flag(!node)];
    libtest_mimic::run(&args, trials).exit()
}
