//! The main job end to end: merge semantics, archiving, exports, exit statuses.

mod common;

use common::Sandbox;

#[test]
fn later_file_replaces_rows_and_absent_columns_become_empty() {
    let mut sb = Sandbox::new();
    sb.drop_bytes("a.csv", b"cluster_name,cpu,mem\nc1,1,10\nc2,2,20\n");
    sb.drop_bytes("b.csv", b"cluster_name,cpu\nc1,5\n");
    sb.run_expect(0);
    assert_eq!(sb.master_text(), "cluster_name,cpu,mem\nc2,2,20\nc1,5,\n");
    sb.drop_bytes("c.csv", b"cluster_name,cpu\nc2,6\n");
    sb.run_expect(0);
    // mem holds no value any more, so it is dropped (seed fault F1).
    assert_eq!(sb.master_text(), "cluster_name,cpu\nc1,5\nc2,6\n");
}

#[test]
fn no_subcommand_runs_the_main_job_like_run() {
    let mut sb = Sandbox::new();
    sb.drop_bytes("a.csv", b"cluster_name,cpu\nc1,1\n");
    let run = sb.cmd(&[]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(sb.master_text(), "cluster_name,cpu\nc1,1\n");
    assert!(
        run.stdout.contains("1 applied, 0 rejected, 0 duplicate; 1 rows inserted, 0 updated"),
        "{run:?}"
    );
}

#[test]
fn dry_run_reports_per_file_and_changes_nothing() {
    let mut sb = Sandbox::new();
    sb.drop_bytes("a.csv", b"cluster_name,cpu,mem\nc1,1,10\n");
    sb.run_expect(0);
    let store_before = std::fs::read(sb.store_path()).unwrap();
    let master_before = sb.master_text();
    sb.drop_bytes("b.csv", b"cluster_name,cpu\nc1,5\nc2,6\n");
    sb.drop_bytes("c.csv", b"cluster_name,cpu\nc3\n");

    let run = sb.cmd(&["run", "--dry-run"]);
    assert_eq!(run.status, 2, "{run:?}");
    assert!(
        run.stdout.contains("would apply b.csv: 2 rows read, 1 inserted, 1 updated, 0 unchanged"),
        "{run:?}"
    );
    assert!(run.stdout.contains("columns dropped: mem"), "{run:?}");
    assert!(run.stderr.contains("would reject c.csv: line 2"), "{run:?}");
    assert_eq!(std::fs::read(sb.store_path()).unwrap(), store_before);
    assert_eq!(sb.master_text(), master_before);
    assert_eq!(sb.names_in(&sb.inbox()), vec!["b.csv", "c.csv"]);
    assert!(sb.names_in(&sb.rejected()).is_empty());
    assert_eq!(sb.names_in(&sb.archive()).len(), 1);
}

#[test]
fn dry_run_on_a_new_installation_creates_no_store() {
    let mut sb = Sandbox::new();
    sb.drop_bytes("a.csv", b"cluster_name,cpu\nc1,1\n");
    let run = sb.cmd(&["run", "--dry-run"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(run.stdout.contains("would apply a.csv: 1 rows read, 1 inserted"), "{run:?}");
    assert!(!sb.store_path().exists());
    assert!(!sb.master().exists());
}

#[cfg(unix)]
#[test]
fn exports_keep_the_permissions_of_the_files_they_replace() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let mut sb = Sandbox::new();
    sb.drop_bytes("a.csv", b"cluster_name,cpu\nc1,1\n");
    sb.run_expect(0);
    // A new export is world-readable, not a temporary file's 0600 (seed fault F9).
    assert_eq!(mode(&sb.master()), 0o644);
    assert_eq!(mode(&sb.metadata()), 0o644);

    std::fs::set_permissions(sb.master(), std::fs::Permissions::from_mode(0o640)).unwrap();
    sb.drop_bytes("b.csv", b"cluster_name,cpu\nc2,2\n");
    sb.run_expect(0);
    assert_eq!(sb.master_text(), "cluster_name,cpu\nc1,1\nc2,2\n");
    assert_eq!(mode(&sb.master()), 0o640);
}

#[test]
fn a_repeated_delivery_is_archived_as_duplicate_and_changes_nothing() {
    let mut sb = Sandbox::new();
    sb.drop_bytes("daily.csv", b"cluster_name,cpu\nc1,1\n");
    sb.run_expect(0);
    sb.drop_bytes("other.csv", b"cluster_name,cpu\nc1,2\n");
    sb.run_expect(0);
    sb.drop_bytes("daily.csv", b"cluster_name,cpu\nc1,1\n");
    let run = sb.run_expect(0);
    assert!(run.stdout.contains("duplicate daily.csv (checksum "), "{run:?}");
    assert_eq!(sb.value("c1", "cpu").as_deref(), Some("2"));
    let statuses: Vec<String> =
        sb.ledger().into_iter().map(|(name, status, ..)| format!("{name}:{status}")).collect();
    assert_eq!(statuses, vec!["daily.csv:applied", "other.csv:applied", "daily.csv:duplicate"]);
    assert_eq!(sb.names_in(&sb.archive()).len(), 3);
    assert!(sb.names_in(&sb.inbox()).is_empty());
}

#[test]
fn files_apply_in_modification_time_order_not_name_order() {
    let mut sb = Sandbox::new();
    let later = sb.path("later");
    std::fs::write(&later, b"cluster_name,cpu\nc1,new\n").unwrap();
    sb.drop_bytes("b_old.csv", b"cluster_name,cpu\nc1,old\n");
    sb.drop_file(&later, "a_new.csv");
    sb.run_expect(0);
    assert_eq!(sb.value("c1", "cpu").as_deref(), Some("new"));
}

#[test]
fn row_order_key_and_column_order_first_seen_shape_the_master() {
    let mut sb =
        Sandbox::with_config(serde_json::json!({"row_order": "key", "column_order": "first_seen"}));
    sb.drop_bytes("a.csv", b"zone,cluster_name\neu,c2\nus,c1\n");
    sb.drop_bytes("b.csv", b"cluster_name,alpha\nc0,x\n");
    sb.run_expect(0);
    assert_eq!(sb.master_text(), "cluster_name,zone,alpha\nc0,,x\nc1,us,\nc2,eu,\n");
}

#[test]
fn hidden_partial_and_unsupported_files_and_folders_are_left_alone() {
    let mut sb = Sandbox::new();
    sb.drop_bytes(".hidden.csv", b"cluster_name\nh\n");
    sb.drop_bytes("part.csv.part", b"cluster_name\np\n");
    sb.drop_bytes("notes.txt", b"cluster_name\nn\n");
    sb.drop_bytes("UPPER.CSV", b"cluster_name\nu\n");
    std::fs::create_dir(sb.inbox().join("sub.csv")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(sb.path("config.json"), sb.inbox().join("link.csv")).unwrap();
    sb.run_expect(0);
    assert_eq!(sb.row_count(), 1);
    assert_eq!(sb.value("u", "cluster_name").as_deref(), Some("u"));
    let mut left = sb.names_in(&sb.inbox());
    left.sort();
    let mut expected = vec![".hidden.csv", "notes.txt", "part.csv.part", "sub.csv"];
    if cfg!(unix) {
        expected.insert(1, "link.csv");
    }
    assert_eq!(left, expected);
}

#[test]
fn a_file_still_being_written_is_left_for_the_next_run() {
    let mut sb = Sandbox::with_config(serde_json::json!({"checksum_wait_seconds": 1.0}));
    let path = sb.drop_bytes("slow.csv", b"cluster_name,cpu\n");
    let writer = std::thread::spawn(move || {
        for i in 0..8 {
            std::thread::sleep(std::time::Duration::from_millis(200));
            let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
            std::io::Write::write_all(&mut f, format!("c{i},{i}\n").as_bytes()).unwrap();
        }
    });
    let run = sb.run_expect(0);
    writer.join().unwrap();
    assert!(run.stdout.contains("waiting   slow.csv: still changing"), "{run:?}");
    assert!(!sb.store_path().exists() || sb.row_count() == 0);
    sb.run_expect(0);
    assert_eq!(sb.row_count(), 8);
}

#[test]
fn a_bad_config_stops_with_one_line_naming_the_problem() {
    let sb = Sandbox::with_config(serde_json::json!({"archve_dir": "x"}));
    let run = sb.run();
    assert_eq!(run.status, 1, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(
        run.stderr.contains(r#"unknown key "archve_dir"; did you mean "archive_dir"?"#),
        "{run:?}"
    );

    let sb = Sandbox::with_config(serde_json::json!({"supported_extensions": ["csv"]}));
    let run = sb.run();
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains("must start with '.'"), "{run:?}");

    let missing = std::process::Command::new(common::BIN)
        .args(["--config", "/nonexistent/c.json", "run"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("cannot read config file /nonexistent/c.json")
    );
}

#[test]
fn the_config_is_found_through_the_environment_and_paths_resolve_against_its_folder() {
    let mut sb = Sandbox::new();
    sb.drop_bytes("a.csv", b"cluster_name,cpu\nc1,1\n");
    let elsewhere = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::BIN)
        .arg("run")
        .current_dir(elsewhere.path())
        .env("CSV_MONITOR_CONFIG", sb.path("config.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sb.master_text(), "cluster_name,cpu\nc1,1\n");
    assert!(std::fs::read_dir(elsewhere.path()).unwrap().next().is_none());
}

#[test]
fn a_run_that_cannot_get_the_lock_in_time_exits_1() {
    let mut sb = Sandbox::with_config(serde_json::json!({"lock_timeout_seconds": 0.3}));
    sb.drop_bytes("a.csv", b"cluster_name,cpu\nc1,1\n");
    let lock = std::fs::File::create(sb.path("csv_watchdog.lock")).unwrap();
    lock.lock().unwrap();
    let run = sb.run();
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains("another csv-watchdog run holds the lock"), "{run:?}");
    assert_eq!(sb.names_in(&sb.inbox()), vec!["a.csv"]);
    lock.unlock().unwrap();
    sb.run_expect(0);
}

#[test]
fn a_store_from_a_newer_version_is_refused() {
    let mut sb = Sandbox::new();
    sb.drop_bytes("a.csv", b"cluster_name,cpu\nc1,1\n");
    sb.run_expect(0);
    sb.db().pragma_update(None, "user_version", 99).unwrap();
    sb.drop_bytes("b.csv", b"cluster_name,cpu\nc2,1\n");
    let run = sb.run();
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains("written by a newer csv-watchdog (schema version 99"), "{run:?}");
    assert_eq!(sb.names_in(&sb.inbox()), vec!["b.csv"]);
}

#[test]
fn metadata_describes_the_master_csv_it_was_written_with() {
    let mut sb = Sandbox::new();
    sb.drop_bytes("a.csv", b"cluster_name,cpu\nc1,1\nc2,2\n");
    sb.run_expect(0);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sb.metadata()).unwrap()).unwrap();
    assert_eq!(meta["row_count"], 2);
    assert_eq!(meta["column_count"], 2);
    assert_eq!(meta["columns"], serde_json::json!(["cluster_name", "cpu"]));
    assert_eq!(meta["key_column"], "cluster_name");
    assert_eq!(meta["files_applied"], 1);
    assert_eq!(meta["merged_file_xxh3_128"], common::xxh128_hex(sb.master_text().as_bytes()));
    let updated = meta["last_updated"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(updated).is_ok(), "{updated}");
}

#[test]
fn the_log_file_gets_one_line_per_file_and_rotates_by_size() {
    let mut sb =
        Sandbox::with_config(serde_json::json!({"log_max_bytes": 400, "log_backup_count": 2}));
    for i in 0..6 {
        sb.drop_bytes(&format!("f{i}.csv"), format!("cluster_name,cpu\nc{i},{i}\n").as_bytes());
        sb.run_expect(0);
    }
    let log = std::fs::read_to_string(sb.path("csv_watchdog.log")).unwrap();
    assert!(log.len() <= 400, "{}", log.len());
    assert!(sb.path("csv_watchdog.log.1").exists());
    assert!(sb.path("csv_watchdog.log.2").exists());
    assert!(!sb.path("csv_watchdog.log.3").exists());
    assert!(
        log.contains("applied   f5.csv: 1 rows read, 1 inserted")
            || std::fs::read_to_string(sb.path("csv_watchdog.log.1")).unwrap().contains("f5.csv")
    );
}

#[test]
fn a_lost_store_next_to_a_full_archive_is_refused_not_started_afresh() {
    let mut sb = Sandbox::new();
    sb.drop_bytes("a.csv", b"cluster_name,cpu\nc1,1\nc2,2\n");
    sb.run_expect(0);
    let master = sb.master_text();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", sb.store_path().display()));
    }
    sb.drop_bytes("b.csv", b"cluster_name,cpu\nc3,3\n");
    let run = sb.run();
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains("the store was lost or replaced"), "{run:?}");
    assert!(run.stderr.contains("csv-watchdog rebuild --force"), "{run:?}");
    assert_eq!(sb.master_text(), master);
    assert_eq!(sb.names_in(&sb.inbox()), vec!["b.csv"]);

    let rebuilt = sb.cmd(&["rebuild", "--force"]);
    assert_eq!(rebuilt.status, 0, "{rebuilt:?}");
    sb.run_expect(0);
    assert_eq!(sb.master_text(), "cluster_name,cpu\nc1,1\nc2,2\nc3,3\n");
}

#[test]
fn dry_run_before_another_subcommand_is_a_usage_error() {
    let mut sb = Sandbox::new();
    sb.drop_bytes("a.csv", b"cluster_name,cpu\nc1,1\n");
    let run = sb.cmd(&["--dry-run", "watch", "--interval", "1"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains("go with `run` only"), "{run:?}");
    assert_eq!(sb.names_in(&sb.inbox()), vec!["a.csv"]);
    let run = sb.cmd(&["--dry-run", "run"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(run.stdout.contains("would apply a.csv"), "{run:?}");
    assert!(!sb.store_path().exists());
}

#[test]
fn malformed_quoting_is_rejected_instead_of_silently_rewritten() {
    let mut sb = Sandbox::new();
    sb.drop_bytes("a.csv", b"cluster_name,v\nk1,ok\nk2,\"x\"y\n");
    let run = sb.run_expect(2);
    assert!(run.stderr.contains("a.csv: line 3: text after the closing quote"), "{run:?}");
    assert!(run.stderr.contains("[malformed]"), "{run:?}");
    assert!(!sb.master().exists());
}

#[test]
fn utf16_without_a_byte_order_mark_is_named_as_utf16() {
    let mut sb = Sandbox::new();
    let text: Vec<u8> =
        "cluster_name,v\nw1,x\n".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    sb.drop_bytes("wide.csv", &text);
    let run = sb.run_expect(2);
    assert!(run.stderr.contains("wide.csv: line 1: the file looks like UTF-16"), "{run:?}");
}

#[test]
fn exports_are_never_written_over_the_store_or_into_the_inbox() {
    let sb = Sandbox::with_config(serde_json::json!({"merged_file": "csv_watchdog.db"}));
    let run = sb.run();
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains("are the same file"), "{run:?}");

    let mut sb = Sandbox::new();
    sb.drop_bytes("a.csv", b"cluster_name,cpu\nc1,1\n");
    sb.run_expect(0);
    let store = sb.store_path();
    for args in [
        vec!["export", "--output", store.to_str().unwrap()],
        vec!["export", "--output", "/tmp/x-same.csv", "--metadata", "/tmp/x-same.csv"],
    ] {
        let run = sb.cmd(&args);
        assert_eq!(run.status, 1, "{args:?}: {run:?}");
    }
    let inbox_copy = sb.inbox().join("again.csv");
    let run = sb.cmd(&["export", "--output", inbox_copy.to_str().unwrap()]);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(!inbox_copy.exists());
    assert_eq!(sb.value("c1", "cpu").as_deref(), Some("1"));
}

#[test]
fn another_applications_database_is_not_taken_over() {
    let mut sb = Sandbox::new();
    let db = rusqlite::Connection::open(sb.store_path()).unwrap();
    db.execute_batch("CREATE TABLE t (a)").unwrap();
    drop(db);
    sb.drop_bytes("a.csv", b"cluster_name,cpu\nc1,1\n");
    let run = sb.run();
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains("another application's database"), "{run:?}");
    let tables: i64 =
        sb.db().query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)).unwrap();
    assert_eq!(tables, 1);
}

#[test]
fn archive_stamps_are_utc_and_follow_the_order_of_application() {
    let mut sb = Sandbox::new();
    sb.drop_bytes("b.csv", b"cluster_name,cpu\nc1,1\n");
    sb.drop_bytes("a.csv", b"cluster_name,cpu\nc1,2\n");
    let before = chrono::Utc::now().format("%Y%m%dT%H%M").to_string();
    let out = std::process::Command::new(common::BIN)
        .args(["--config", sb.path("config.json").to_str().unwrap(), "run"])
        .env("TZ", "Pacific/Kiritimati")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let names = sb.names_in(&sb.archive());
    assert_eq!(names.len(), 2);
    let stamp = |n: &str| n.rsplit_once(".csv.").unwrap().1.to_string();
    let (a, b) = (
        names.iter().find(|n| n.starts_with("a.csv")).unwrap(),
        names.iter().find(|n| n.starts_with("b.csv")).unwrap(),
    );
    assert!(stamp(b) < stamp(a), "{names:?}");
    assert!(stamp(a)[..13] >= before[..], "{} is not UTC ({before})", stamp(a));
}

#[test]
fn history_warns_when_files_were_applied_without_it() {
    let mut sb = Sandbox::new();
    sb.drop_bytes("f1.csv", b"cluster_name,v\na,1\n");
    sb.run_expect(0);
    sb.set("keep_history", serde_json::json!(false));
    sb.drop_bytes("f2.csv", b"cluster_name,v\na,2\n");
    sb.run_expect(0);
    let run = sb.cmd(&["history", "a", "--format", "csv"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stderr.contains("keep_history was off for files from ledger entry 2 on"),
        "{run:?}"
    );
    assert!(run.stderr.contains("last written by ledger entry 2 without history"), "{run:?}");
}

#[test]
fn a_huge_wait_is_a_config_error_not_a_panic() {
    let sb = Sandbox::with_config(serde_json::json!({"lock_timeout_seconds": 1e20}));
    let run = sb.run();
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains("at most 86400"), "{run:?}");
    let run = Sandbox::new().cmd(&["watch", "--interval", "1e20"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");
}

#[test]
fn several_columns_emptied_by_one_file_are_dropped_together() {
    let mut sb = Sandbox::new();
    sb.drop_bytes("a.csv", b"cluster_name,a,b,c,d\nk1,1,2,3,4\nk2,5,6,7,8\n");
    sb.run_expect(0);
    sb.drop_bytes("b.csv", b"cluster_name,e\nk1,x\nk2,y\n");
    let run = sb.run_expect(0);
    assert!(run.stdout.contains("columns dropped: a, b, c, d"), "{run:?}");
    assert_eq!(sb.master_text(), "cluster_name,e\nk1,x\nk2,y\n");
    assert_eq!(sb.catalog(), vec!["cluster_name", "e"]);
    let sources: i64 = sb
        .db()
        .query_row("SELECT count(*) FROM record_source WHERE file = 'b.csv'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sources, 2);
    let verify = sb.cmd(&["verify"]);
    assert_eq!(verify.status, 0, "{verify:?}");
    sb.drop_bytes("c.csv", b"cluster_name,a\nk3,back\n");
    sb.run_expect(0);
    assert_eq!(sb.master_text(), "a,cluster_name,e\n,k1,x\n,k2,y\nback,k3,\n");
}
