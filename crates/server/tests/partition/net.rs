//! Two "hosts" as network namespaces, each with two veth links to the root
//! namespace: a client link (the test's HTTP clients reach the instance
//! over it) and a database link (the instance reaches PostgreSQL over it),
//! so that the database link can be cut or degraded while clients still
//! reach the instance. Everything is removed when [`Net`] is dropped.
//!
//! Packets are dropped by a `tc` filter on both ends of a database link:
//! classic BPF (`ld rand`, for a share of them, or all of them) that sends
//! the matching packets to an IFB device that is down, where they vanish.
//! Not `netem`: the kernel this was written on is built without `sch_netem`
//! (and without `act_gact`); this needs only `clsact`, `cls_bpf`,
//! `act_mirred` and `ifb`. Delay is added by the forwarder (forward.rs).

use std::process::{Command, Stdio};

pub const IP: &str = "/usr/sbin/ip";
pub const TC: &str = "/usr/sbin/tc";
/// Namespaces of this test are `tsp-<pid>-<host>`: a later run removes
/// those whose process is gone (a run killed before it could clean up).
const PREFIX: &str = "tsp-";

/// Runs a command; its stderr in the error.
pub fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Why this machine cannot run the test (not root, no namespaces, none of
/// the tc parts used here), or `None`. Leaves nothing behind.
pub fn unsupported() -> Option<String> {
    let ns = format!("{PREFIX}probe-{}", std::process::id());
    if let Err(e) = run(IP, &["netns", "add", &ns]) {
        return Some(format!("network namespaces are not permitted ({e})"));
    }
    let probe = (|| {
        in_ns(&ns, IP, &["link", "add", "sink", "type", "ifb"])?;
        in_ns(&ns, TC, &["qdisc", "add", "dev", "lo", "clsact"])?;
        let args = filter("lo", "sink", Loss::All);
        in_ns(
            &ns,
            TC,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    })();
    let _ = run(IP, &["netns", "del", &ns]);
    probe
        .err()
        .map(|e| format!("tc cannot drop packets here ({e})"))
}

/// `program args…` inside namespace `ns`.
fn in_ns(ns: &str, program: &str, args: &[&str]) -> Result<(), String> {
    let mut all = vec!["netns", "exec", ns, program];
    all.extend_from_slice(args);
    run(IP, &all)
}

/// Which packets a link's filter drops.
#[derive(Clone, Copy, Debug)]
pub enum Loss {
    /// This percentage of them, at random.
    Share(u32),
    /// Every one: a silent cut (no RST, no ICMP), as when a switch or a
    /// route between two hosts fails.
    All,
}

/// The arguments of `tc` that (re)place the drop filter on `dev`'s egress.
fn filter(dev: &str, sink: &str, d: Loss) -> Vec<String> {
    // Classic BPF for cls_bpf: a non-zero return is a match. `ld rand` is
    // the ancillary load SKF_AD_OFF + SKF_AD_RANDOM (-4096 + 56).
    let bytecode = match d {
        Loss::All => "1,6 0 0 4294967295".to_owned(),
        Loss::Share(pct) => {
            let below = (u64::from(pct.min(100)) << 32) / 100;
            let threshold = below.saturating_sub(1).min(u64::from(u32::MAX));
            format!("4,32 0 0 4294963256,37 0 1 {threshold},6 0 0 0,6 0 0 4294967295")
        }
    };
    [
        "filter", "replace", "dev", dev, "egress", "pref", "1", "handle", "1", "bpf", "bytecode",
        &bytecode, "action", "mirred", "egress", "redirect", "dev", sink,
    ]
    .map(String::from)
    .to_vec()
}

/// Whether process `pid` is gone.
fn gone(pid: &str) -> bool {
    pid.parse::<u32>().is_ok() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes namespaces, and the root ends of their drop sinks, left by runs
/// whose process no longer exists.
fn remove_stale() {
    if let Ok(out) = Command::new(IP)
        .args(["-o", "link", "show", "type", "ifb"])
        .output()
    {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // `7: t12345asr: <…>`: t, the PID, the host, `sr`.
            let name = line.split(':').nth(1).unwrap_or("").trim();
            let pid = name
                .strip_prefix('t')
                .and_then(|n| n.strip_suffix("sr"))
                .map(|n| &n[..n.len().saturating_sub(1)]);
            if pid.is_some_and(gone) {
                let _ = run(IP, &["link", "del", name]);
            }
        }
    }
    let Ok(out) = Command::new(IP).args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run(IP, &["netns", "del", name]);
        }
    }
}

/// One veth pair: `root` end in the root namespace, `ns` end in the host.
pub struct Link {
    pub root_if: String,
    pub ns_if: String,
    pub root_ip: String,
    pub ns_ip: String,
}

/// One namespace and its two links.
pub struct Host {
    pub ns: String,
    pub client: Link,
    pub db: Link,
    /// The IFB devices (down) that dropped packets are sent to: in the
    /// root namespace and in the host.
    sink_root: String,
    sink_ns: String,
}

pub struct Net {
    pub hosts: Vec<Host>,
}

impl Net {
    /// Namespaces `tsp-<pid>-a`, `tsp-<pid>-b`, …, one per name in `hosts`.
    /// Addresses: four /30 per host in 10.X.Y.0/24, X and Y from the PID,
    /// so that concurrent runs (other worktrees) do not collide.
    pub fn new(hosts: &[&str]) -> Result<Net, String> {
        remove_stale();
        let pid = std::process::id();
        let (x, y) = (64 + (pid >> 8) % 128, pid % 256);
        let mut net = Net { hosts: vec![] };
        for (i, name) in hosts.iter().enumerate() {
            let ns = format!("{PREFIX}{pid}-{name}");
            run(IP, &["netns", "add", &ns])?;
            // Pushed before it is complete, so that Drop removes a half-built host.
            net.hosts.push(Host {
                ns: ns.clone(),
                client: link(pid, name, 'c', x, y, 8 * i as u32),
                db: link(pid, name, 'd', x, y, 8 * i as u32 + 4),
                sink_root: format!("t{pid}{name}sr"),
                sink_ns: format!("t{pid}{name}sn"),
            });
            let h = net.hosts.last().expect("just pushed");
            run(IP, &["netns", "exec", &ns, IP, "link", "set", "lo", "up"])?;
            for l in [&h.client, &h.db] {
                run(
                    IP,
                    &[
                        "link", "add", &l.root_if, "type", "veth", "peer", "name", &l.ns_if,
                        "netns", &ns,
                    ],
                )?;
                run(
                    IP,
                    &[
                        "addr",
                        "add",
                        &format!("{}/30", l.root_ip),
                        "dev",
                        &l.root_if,
                    ],
                )?;
                run(IP, &["link", "set", &l.root_if, "up"])?;
                let addr = format!("{}/30", l.ns_ip);
                run(
                    IP,
                    &[
                        "netns", "exec", &ns, IP, "addr", "add", &addr, "dev", &l.ns_if,
                    ],
                )?;
                run(
                    IP,
                    &["netns", "exec", &ns, IP, "link", "set", &l.ns_if, "up"],
                )?;
            }
            run(IP, &["link", "add", &h.sink_root, "type", "ifb"])?;
            in_ns(&ns, IP, &["link", "add", &h.sink_ns, "type", "ifb"])?;
            run(TC, &["qdisc", "add", "dev", &h.db.root_if, "clsact"])?;
            in_ns(&ns, TC, &["qdisc", "add", "dev", &h.db.ns_if, "clsact"])?;
        }
        Ok(net)
    }

    /// Drops packets on host `i`'s database link, both directions
    /// (`None`: none). Replaces the previous rule, so that phases follow
    /// each other mid-traffic.
    pub fn drop_db(&self, i: usize, d: Option<Loss>) -> Result<(), String> {
        let h = &self.hosts[i];
        let ends = [
            (None, &h.db.root_if, &h.sink_root),
            (Some(&h.ns), &h.db.ns_if, &h.sink_ns),
        ];
        for (ns, dev, sink) in ends {
            let args = match d {
                Some(d) => filter(dev, sink, d),
                None => ["filter", "del", "dev", dev, "egress", "pref", "1"]
                    .map(String::from)
                    .to_vec(),
            };
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let done = match ns {
                Some(ns) => in_ns(ns, TC, &args),
                None => run(TC, &args),
            };
            match done {
                // Clearing a link that had no filter.
                Err(e) if d.is_none() && e.contains("No such file") => {}
                other => other?,
            }
        }
        Ok(())
    }
}

fn link(pid: u32, host: &str, kind: char, x: u32, y: u32, base: u32) -> Link {
    Link {
        // At most 15 characters: `t` + PID (7) + host + kind + end.
        root_if: format!("t{pid}{host}{kind}r"),
        ns_if: format!("t{pid}{host}{kind}n"),
        root_ip: format!("10.{x}.{y}.{}", base + 1),
        ns_ip: format!("10.{x}.{y}.{}", base + 2),
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for h in &self.hosts {
            // Deleting the namespace deletes its veth ends, and with them
            // their peers; the explicit deletes cover a half-built host.
            let _ = run(IP, &["netns", "del", &h.ns]);
            for dev in [&h.client.root_if, &h.db.root_if, &h.sink_root] {
                let _ = Command::new(IP)
                    .args(["link", "del", dev])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}
