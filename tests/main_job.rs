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
