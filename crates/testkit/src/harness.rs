//! The HTTP test binary's harness (`harness = false`, on libtest-mimic):
//! libtest cannot decide at run time that a test is ignored, so without
//! `TIDESYNC_TEST_POSTGRES_URL` every PostgreSQL variant would report `ok`
//! having done nothing. Here they are reported `ignored`, with one note.
//!
//! Each test gets its own multi-thread tokio runtime (2 workers) and a
//! time bound, and a test's name is `module::backend::name` as before, so
//! `cargo test -p tidesync --test api sync::sqlite::` still filters.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::mpsc;
use std::time::Duration;

use libtest_mimic::{Arguments, Failed, Trial};

use crate::db::{postgres_url, Db, PG_ENV};

pub type TestFuture = Pin<Box<dyn Future<Output = ()>>>;

/// The bound on each test, unless `TIDESYNC_TEST_TIMEOUT_SECS` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Beyond the bound, how long a test that does not yield (blocked in a
/// synchronous call) is given before it is abandoned.
const GRACE: Duration = Duration::from_secs(30);

pub enum Body {
    Sync(fn()),
    Async(fn() -> TestFuture),
    Backend(fn(Db) -> TestFuture, Db),
}

pub struct Test {
    pub name: String,
    /// Needs PostgreSQL: ignored when it is not configured.
    pub postgres: bool,
    pub body: Body,
}

/// `api::sync` → `sync`: names relative to the test crate, as libtest has them.
fn module(path: &str) -> &str {
    path.split_once("::").map_or("", |(_, rest)| rest)
}

fn join(module: &str, parts: &[&str]) -> String {
    let mut name = module.to_owned();
    for p in parts {
        if !name.is_empty() {
            name.push_str("::");
        }
        name.push_str(p);
    }
    name
}

impl Test {
    /// `module::sqlite::name` or `module::postgres::name`.
    pub fn backend(path: &str, name: &str, db: Db, f: fn(Db) -> TestFuture) -> Test {
        let backend = match db {
            Db::Sqlite => "sqlite",
            Db::Postgres => "postgres",
        };
        Test {
            name: join(module(path), &[backend, name]),
            postgres: db == Db::Postgres,
            body: Body::Backend(f, db),
        }
    }

    pub fn plain(path: &str, name: &str, f: fn()) -> Test {
        Test {
            name: join(module(path), &[name]),
            postgres: false,
            body: Body::Sync(f),
        }
    }

    pub fn plain_async(path: &str, name: &str, postgres: bool, f: fn() -> TestFuture) -> Test {
        Test {
            name: join(module(path), &[name]),
            postgres,
            body: Body::Async(f),
        }
    }
}

/// Declares a module's tests as `pub fn tests() -> Vec<Test>`:
///
/// ```ignore
/// backend_tests!(a, b); // async fn a(db: Db): mod::sqlite::a and mod::postgres::a
/// backend_tests! {
///     backend: [a, b],
///     postgres: [c],        // async fn c(db: Db), PostgreSQL only: mod::postgres::c
///     plain: [d],           // fn d()
///     plain_async: [e],     // async fn e()
///     postgres_async: [f],  // async fn f(), needs PostgreSQL: mod::f
/// }
/// ```
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $crate::backend_tests! { backend: [$($name),*] }
    };
    (
        $(backend: [$($b:ident),* $(,)?] $(,)?)?
        $(postgres: [$($p:ident),* $(,)?] $(,)?)?
        $(plain: [$($s:ident),* $(,)?] $(,)?)?
        $(plain_async: [$($a:ident),* $(,)?] $(,)?)?
        $(postgres_async: [$($pa:ident),* $(,)?] $(,)?)?
    ) => {
        /// This module's tests, for the harness.
        pub fn tests() -> ::std::vec::Vec<$crate::harness::Test> {
            use $crate::harness::Test;
            let m = ::std::module_path!();
            #[allow(unused_mut)]
            let mut v = ::std::vec::Vec::new();
            $($(
                for db in [$crate::Db::Sqlite, $crate::Db::Postgres] {
                    v.push(Test::backend(m, ::std::stringify!($b), db, |db| ::std::boxed::Box::pin($b(db))));
                }
            )*)?
            $($(
                v.push(Test::backend(m, ::std::stringify!($p), $crate::Db::Postgres, |db| ::std::boxed::Box::pin($p(db))));
            )*)?
            $($(
                v.push(Test::plain(m, ::std::stringify!($s), $s));
            )*)?
            $($(
                v.push(Test::plain_async(m, ::std::stringify!($a), false, || ::std::boxed::Box::pin($a())));
            )*)?
            $($(
                v.push(Test::plain_async(m, ::std::stringify!($pa), true, || ::std::boxed::Box::pin($pa())));
            )*)?
            v
        }
    };
}

/// Runs every test of `groups` (each a module's `tests`) and exits.
pub fn main(groups: &[fn() -> Vec<Test>]) -> ! {
    let (args, filters) = arguments(std::env::args().collect());
    let postgres = postgres_url().is_some();
    let mut tests: Vec<Test> = groups.iter().flat_map(|g| g()).collect();
    tests.sort_by(|a, b| a.name.cmp(&b.name));
    if !filters.is_empty() {
        tests.retain(|t| {
            filters.iter().any(|f| {
                if args.exact {
                    t.name == *f
                } else {
                    t.name.contains(f.as_str())
                }
            })
        });
    }
    if let Some(dup) = tests.windows(2).find(|w| w[0].name == w[1].name) {
        panic!("two tests named {}", dup[0].name);
    }
    if !postgres && !args.list && tests.iter().any(|t| t.postgres) {
        eprintln!(
            "NOTE: PostgreSQL tests skipped: {PG_ENV} is not set (e.g. postgres://postgres@127.0.0.1:5432/test)"
        );
    }
    let limit = std::env::var("TIDESYNC_TEST_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let trials = tests
        .into_iter()
        .map(|t| {
            let ignored = t.postgres && !postgres;
            let name = t.name.clone();
            Trial::test(name, move || run(t, limit)).with_ignored_flag(ignored)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit()
}

/// libtest takes several name filters (`api sync:: auth::`); libtest-mimic
/// one. With more than one, they are taken out here and applied by `main`.
fn arguments(argv: Vec<String>) -> (Arguments, Vec<String>) {
    const WITH_VALUE: [&str; 6] = [
        "--test-threads",
        "--logfile",
        "--skip",
        "--color",
        "--format",
        "-Z",
    ];
    let mut rest = Vec::new();
    let mut filters = Vec::new();
    let mut it = argv.into_iter();
    rest.extend(it.next()); // the program
    while let Some(a) = it.next() {
        if WITH_VALUE.contains(&a.as_str()) {
            rest.push(a);
            rest.extend(it.next());
        } else if a.starts_with('-') {
            rest.push(a);
        } else {
            filters.push(a);
        }
    }
    if filters.len() == 1 {
        rest.append(&mut filters);
    }
    (Arguments::from_iter(rest), filters)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs one test on a thread of its own (named after it, so a panic
/// message says which test), bounded by `limit`.
fn run(t: Test, limit: Duration) -> Result<(), Failed> {
    let name = t.name.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let r = catch_unwind(AssertUnwindSafe(|| body(t, limit)));
            let _ = tx.send(r);
        })
        .map_err(|e| Failed::from(format!("spawning the test thread: {e}")))?;
    match rx.recv_timeout(limit + GRACE) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(payload)) => Err(Failed::from(panic_message(&*payload))),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(Failed::from(format!(
            "{name}: still running after {:?} and not yielding (blocked outside async code); abandoned",
            limit + GRACE
        ))),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(Failed::from(format!("{name}: the test thread died")))
        }
    }
}

fn body(t: Test, limit: Duration) {
    let name = t.name;
    let body = t.body;
    if let Body::Sync(f) = body {
        return f();
    }
    runtime().block_on(async move {
        // Made inside the runtime: a test future may need it on creation.
        let fut = match body {
            Body::Sync(_) => unreachable!(),
            Body::Async(f) => f(),
            Body::Backend(f, db) => f(db),
        };
        if tokio::time::timeout(limit, fut).await.is_err() {
            panic!("{name} did not finish within {limit:?} (TIDESYNC_TEST_TIMEOUT_SECS changes the bound)");
        }
    });
}

/// Runs one future, made by `make`, on a fresh runtime within `bound`: the
/// body of a test in a binary with its own `main` (tests/pgbouncer.rs,
/// tests/partition.rs). A panic or the bound fails the test with its reason.
pub fn run_bounded<F: Future<Output = ()>>(
    bound: Duration,
    make: impl FnOnce() -> F,
) -> Result<(), Failed> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failed::from(format!("runtime: {e}")))?;
    let r = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async { tokio::time::timeout(bound, make()).await })
    }));
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Failed::from(format!("did not finish within {bound:?}"))),
        Err(p) => Err(Failed::from(panic_message(&*p))),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_relative_to_the_test_crate() {
        fn f(_: Db) -> TestFuture {
            Box::pin(async {})
        }
        let t = Test::backend("api::sync", "retries", Db::Sqlite, f);
        assert_eq!(t.name, "sync::sqlite::retries");
        assert!(!t.postgres);
        let t = Test::backend("api::sync_sim", "cursor", Db::Postgres, f);
        assert_eq!(t.name, "sync_sim::postgres::cursor");
        assert!(t.postgres);
        assert_eq!(
            Test::plain("api::binary", "help", || {}).name,
            "binary::help"
        );
    }

    #[test]
    fn several_filters_are_applied_here_one_by_libtest_mimic() {
        let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        let (a, f) = arguments(argv(&["api", "sync::", "--test-threads", "1", "auth::"]));
        assert_eq!(f, vec!["sync::", "auth::"]);
        assert_eq!((a.filter, a.test_threads), (None, Some(1)));
        let (a, f) = arguments(argv(&["api", "--exact", "sync::sqlite::x"]));
        assert!(f.is_empty() && a.exact);
        assert_eq!(a.filter.as_deref(), Some("sync::sqlite::x"));
    }

    #[test]
    fn a_panic_fails_the_test_with_its_message() {
        fn boom(_: Db) -> TestFuture {
            Box::pin(async { panic!("boom {}", 42) })
        }
        let t = Test::backend("api::x", "boom", Db::Sqlite, boom);
        let err = run(t, Duration::from_secs(5)).unwrap_err();
        assert!(format!("{err:?}").contains("boom 42"), "{err:?}");
    }

    #[test]
    fn a_test_that_runs_too_long_fails() {
        fn slow(_: Db) -> TestFuture {
            Box::pin(tokio::time::sleep(Duration::from_secs(600)))
        }
        let t = Test::backend("api::x", "slow", Db::Sqlite, slow);
        let err = run(t, Duration::from_millis(200)).unwrap_err();
        assert!(
            format!("{err:?}").contains("did not finish within"),
            "{err:?}"
        );
    }
}
