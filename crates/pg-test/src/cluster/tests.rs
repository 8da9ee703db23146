//! Real clusters: each test starts its own, in parallel with the others.

use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use super::*;

/// A started cluster, or `None` (after the skip line) where PostgreSQL is not installed.
fn started() -> Option<Cluster> {
    Cluster::start().unwrap_or_else(|e| panic!("starting a cluster: {e}"))
}

/// `psql -tAc sql` against `database`, from the same install as the server.
fn psql(cluster: &Cluster, database: &str, sql: &str) -> String {
    let mut psql = cluster.tools.client("psql");
    psql.args(["-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", &cluster.port.to_string()]);
    psql.args(["-U", "postgres", "-d", database, "-tAc", sql]);
    run(&mut psql).unwrap_or_else(|e| panic!("{e}")).trim().to_string()
}

fn accepts_tcp(port: u16) -> bool {
    TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(1)).is_ok()
}

#[test]
fn answers_queries_with_the_settings_tests_rely_on() {
    let Some(cluster) = started() else { return };
    assert_eq!(psql(&cluster, "postgres", "select 1"), "1");
    assert_eq!(cluster.url(), format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port()));
    assert_eq!(psql(&cluster, "postgres", "show fsync"), "on");
    assert_eq!(psql(&cluster, "postgres", "show max_connections"), "200");
    assert_eq!(psql(&cluster, "postgres", "show listen_addresses"), "127.0.0.1");
    assert_eq!(psql(&cluster, "postgres", "show server_encoding"), "UTF8");
    let sockets = psql(&cluster, "postgres", "show unix_socket_directories");
    assert!(Path::new(&sockets).starts_with(std::env::temp_dir()), "sockets in {sockets}");
    assert!(cluster.data_dir().join("PG_VERSION").is_file());
}

#[test]
fn creates_databases_it_can_connect_to() {
    let Some(cluster) = started() else { return };
    let url = cluster.create_database("flags_test").unwrap();
    assert_eq!(url, format!("postgres://postgres@127.0.0.1:{}/flags_test", cluster.port()));
    assert_eq!(psql(&cluster, "flags_test", "select current_database()"), "flags_test");
    // createdb's own error comes back: the name is taken.
    let again = cluster.create_database("flags_test").unwrap_err().to_string();
    assert!(again.contains("already exists"), "{again}");
}

#[test]
fn rejects_names_that_would_need_quoting() {
    for bad in ["", "1st", "a-b", "a b", "a/b", "a'b", "ä", &"x".repeat(64)] {
        assert!(matches!(check_name(bad), Err(Error::InvalidName { .. })), "{bad:?}");
    }
    for good in ["flags", "_t", "t_1", &"x".repeat(63)] {
        assert!(check_name(good).is_ok(), "{good:?}");
    }
}

#[test]
fn restart_immediate_keeps_committed_rows_and_the_port() {
    let Some(cluster) = started() else { return };
    let port = cluster.port();
    psql(&cluster, "postgres", "create table t (v int); insert into t values (42)");
    cluster.restart_immediate().unwrap();
    assert_eq!(cluster.port(), port);
    assert_eq!(psql(&cluster, "postgres", "select v from t"), "42");
    // It really crashed: the restart had to recover from the WAL.
    let log = std::fs::read_to_string(&cluster.log).unwrap();
    assert!(log.contains("not properly shut down"), "{log}");
}

#[test]
fn stop_immediate_refuses_connections_until_start_again() {
    let Some(cluster) = started() else { return };
    cluster.stop_immediate().unwrap();
    assert!(!accepts_tcp(cluster.port()), "still listening after stop_immediate");
    cluster.start_again().unwrap();
    assert_eq!(psql(&cluster, "postgres", "select 1"), "1");
}

#[test]
fn drop_stops_the_server_and_deletes_its_files() {
    let Some(cluster) = started() else { return };
    let (port, data) = (cluster.port(), cluster.data_dir().to_path_buf());
    assert!(accepts_tcp(port));
    drop(cluster);
    assert!(!accepts_tcp(port), "still listening after drop");
    assert!(!data.exists(), "{} left behind", data.display());
}

#[test]
fn clusters_started_at_once_are_independent() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(started);
        let b = s.spawn(started);
        (a.join().unwrap(), b.join().unwrap())
    });
    let (Some(a), Some(b)) = (a, b) else { return };
    assert_ne!(a.port(), b.port());
    assert_ne!(a.data_dir(), b.data_dir());
    psql(&a, "postgres", "create table only_in_a ()");
    assert_eq!(psql(&b, "postgres", "select count(*) from pg_class where relname = 'only_in_a'"), "0");
}

#[test]
fn a_taken_port_is_retried_on_another() {
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let mut ports = [Ok(taken_port), free_port()].into_iter();
    let Some(cluster) = Cluster::start_with(|| ports.next().unwrap()).unwrap() else { return };
    assert_ne!(cluster.port(), taken_port);
    assert_eq!(psql(&cluster, "postgres", "select 1"), "1");
}

#[test]
fn gives_up_on_taken_ports_with_the_server_log() {
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let mut tries = 0;
    let result = Cluster::start_with(|| {
        tries += 1;
        Ok(taken_port)
    });
    let error = match result {
        Ok(None) => return,
        Ok(Some(cluster)) => panic!("started on a taken port {}", cluster.port()),
        Err(error) => error.to_string(),
    };
    assert_eq!(tries, START_ATTEMPTS);
    assert!(error.contains("pg_ctl") && error.contains("could not start server"), "{error}");
    assert!(error.contains("last lines of the server log:") && error.contains("could not bind"), "{error}");
}

#[test]
fn the_shared_cluster_survives_another_clusters_crash() {
    let Some(shared) = crate::shared().unwrap() else { return };
    let url = crate::fresh_schema("survivor").unwrap().unwrap();
    assert!(url.contains("search_path%3Dsurvivor_"), "{url}");
    let Some(other) = Cluster::start().unwrap() else { return };
    other.restart_immediate().unwrap();
    assert!(
        crate::fresh_schema("survivor").unwrap().is_some(),
        "shared cluster on {} still answers",
        shared.port()
    );
}
