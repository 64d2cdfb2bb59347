//! The one launcher of the `tidesync` binary: start it with an environment,
//! read its JSON log lines, find its address, stop it by its own PID.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// How long a server may take to print a line we wait for.
const LINE_WAIT: Duration = Duration::from_secs(60);

/// A started binary whose log lines (JSON) arrive on a channel. Killed
/// (SIGKILL) when dropped, so a failing test leaves no server behind.
pub struct Proc {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    /// Starts `cmd` with JSON logs, both outputs read line by line.
    /// `RUST_LOG` is cleared unless `cmd` sets it itself.
    pub fn start(cmd: &mut Command) -> Proc {
        Proc::spawn(cmd, false)
    }

    /// [`Proc::start`], also copying the server's stderr to ours (so that a
    /// panic of a long-running server shows).
    pub fn start_echoing(cmd: &mut Command) -> Proc {
        Proc::spawn(cmd, true)
    }

    fn spawn(cmd: &mut Command, echo: bool) -> Proc {
        if !cmd.get_envs().any(|(k, _)| k == "RUST_LOG") {
            cmd.env_remove("RUST_LOG");
        }
        let mut child = cmd
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        let (tx, rx) = mpsc::channel();
        let outputs = [
            (
                Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
                false,
            ),
            (Box::new(child.stderr.take().expect("piped")), echo),
        ];
        for (stream, echo) in outputs {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if echo {
                        eprintln!("{line}");
                    }
                    let _ = tx.send(line);
                }
            });
        }
        Proc {
            child: Some(child),
            lines: rx,
            seen: vec![],
        }
    }

    /// The command line of `tidesync` on `database_url`, in `dir`, on a free
    /// port of 127.0.0.1, signing with `secret`, rate limits out of the way.
    /// Add to it, then [`Proc::start`] it.
    pub fn command(bin: &Path, dir: &Path, database_url: &str, secret: &str) -> Command {
        let mut cmd = Command::new(bin);
        cmd.current_dir(dir)
            .env("DATABASE_URL", database_url)
            .env("JWT_SECRET", secret)
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .env("RATE_LIMIT_PER_MINUTE", "1000000000")
            .env("AUTH_RATE_LIMIT_PER_MINUTE", "1000000000");
        cmd
    }

    /// Starts `cmd` and waits until it listens; returns it and its base URL.
    pub fn serve(cmd: &mut Command) -> (Proc, String) {
        let mut proc = Proc::start(cmd);
        let addr = proc.address();
        (proc, format!("http://{addr}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Waits for the log line containing `needle`.
    pub fn wait_for(&mut self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(LINE_WAIT)
                .unwrap_or_else(|_| panic!("no {needle:?} in output: {:#?}", self.seen));
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// The address from the "tidesync listening" line (`0.0.0.0` as
    /// `127.0.0.1`, where a client can reach it).
    pub fn address(&mut self) -> String {
        let line = self.wait_for("tidesync listening");
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("listening line is not JSON ({e}): {line}"));
        v["fields"]["address"]
            .as_str()
            .unwrap_or_else(|| panic!("no address in {line}"))
            .replace("0.0.0.0", "127.0.0.1")
    }

    /// SIGKILL: no shutdown, no flush, as in a crash.
    pub fn kill9(mut self) {
        self.kill_now();
    }

    /// SIGTERM and wait: whether it exited successfully, and every line
    /// it printed.
    pub fn terminate(mut self) -> (bool, Vec<String>) {
        let mut child = self.child.take().expect("running");
        // A positive PID: this process alone, never a group.
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -TERM {} failed", child.id());
        let status = child.wait().expect("wait");
        let mut seen = std::mem::take(&mut self.seen);
        seen.extend(self.lines.try_iter());
        // Readers may still be draining the pipes.
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(500)) {
            seen.push(l);
        }
        (status.success(), seen)
    }

    fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill_now();
    }
}
