use super::*;

#[test]
fn durations() {
    assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
    assert_eq!(parse_duration("12h").unwrap(), Duration::from_secs(43_200));
    assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1_800));
    assert_eq!(parse_duration("45s").unwrap(), Duration::from_secs(45));
    assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
    assert!(parse_duration("7w").is_err());
    assert!(parse_duration("d").is_err());
    assert!(parse_duration("0s").is_err());
    assert!(parse_duration("99999999999999999d").is_err());
}

#[test]
fn defaults_need_no_configuration() {
    let cli = Cli::try_parse_from(["tidesync"]).unwrap();
    assert!(cli.command.is_none());
    let cli = Cli::try_parse_from(["tidesync", "--port", "7001", "--jwt-expire", "2h"]).unwrap();
    assert_eq!(cli.serve.port, 7001);
    assert_eq!(cli.serve.jwt_expire, Duration::from_secs(7200));
    assert!(
        Cli::try_parse_from(["tidesync", "migrate", "--database-url", "sqlite://x.db"]).is_ok()
    );
    assert!(Cli::try_parse_from(["tidesync", "--jwt-secret", "short"]).is_err());
    let cli = Cli::try_parse_from(["tidesync"]).unwrap();
    assert!(cli.serve.database.db_named_statements);
    assert_eq!(cli.serve.database.db_pool_size, default_pool_size());
    assert_eq!(cli.serve.database.listen_database_url, None);
    assert_eq!(
        cli.serve.database.db_acquire_timeout,
        Duration::from_secs(5)
    );
    assert_eq!(
        cli.serve.database.db_idle_tx_timeout,
        Duration::from_secs(10)
    );
    assert_eq!(cli.serve.export_idle_timeout, Duration::from_secs(30));
    assert_eq!(
        (cli.serve.max_exports, cli.serve.max_exports_per_space),
        (4, 2)
    );
    let w = ServeArgs::with_database("sqlite://x.db");
    assert_eq!(
        (
            w.export_idle_timeout,
            w.max_exports,
            w.max_exports_per_space
        ),
        (
            cli.serve.export_idle_timeout,
            cli.serve.max_exports,
            cli.serve.max_exports_per_space
        )
    );
    assert!(Cli::try_parse_from(["tidesync", "--max-exports", "0"]).is_err());
    let cli = Cli::try_parse_from([
        "tidesync",
        "--db-named-statements",
        "false",
        "--db-pool-size",
        "3",
        "--listen-database-url",
        "postgres://direct/db",
    ])
    .unwrap();
    assert!(!cli.serve.database.db_named_statements);
    assert_eq!(cli.serve.database.db_pool_size, 3);
    assert_eq!(
        cli.serve.database.listen_database_url.as_deref(),
        Some("postgres://direct/db")
    );
}

#[test]
fn secret_is_redacted() {
    let s = Secret::new("super-secret-value-123");
    assert!(!format!("{s:?}").contains("super"));
}

#[test]
fn data_dir_follows_sqlite_file() {
    assert_eq!(data_dir("sqlite://data/tidesync.db"), PathBuf::from("data"));
    assert_eq!(data_dir("sqlite://x.db"), PathBuf::from("."));
    assert_eq!(data_dir("postgres://localhost/x"), PathBuf::from("data"));
}

/// Each default is written once: the flags' defaults and `with_database`
/// agree (but for the test server's port and host), and the database
/// flags' durations are the backends' defaults.
#[test]
fn with_database_is_the_flags_defaults() {
    let mut parsed = Cli::try_parse_from(["tidesync"]).unwrap().serve;
    let built = ServeArgs::with_database(DEFAULT_DATABASE_URL);
    assert_eq!((parsed.port, parsed.host.as_str()), (5000, "0.0.0.0"));
    parsed.port = built.port;
    parsed.host = built.host.clone();
    // The one a CI environment may set.
    parsed.database.database_url = built.database.database_url.clone();
    assert_eq!(format!("{parsed:?}"), format!("{built:?}"));
    assert_eq!(
        built.database.db_acquire_timeout,
        tidesync_store::defaults::ACQUIRE_TIMEOUT
    );
    assert_eq!(
        built.database.db_idle_tx_timeout,
        tidesync_store::defaults::IDLE_TX_TIMEOUT
    );
    let o = crate::db::DbOptions::from_args(&built);
    let d = crate::db::DbOptions::default();
    assert_eq!(format!("{o:?}"), format!("{d:?}"));
}
