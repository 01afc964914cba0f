-- The `records` view: the stored rows under the CSV's own column names. {columns} is the list
-- of `<physical column> AS "<CSV name>"`, one per live column; csv-watchdog re-creates the view
-- in the same transaction whenever the column catalog changes.
DROP VIEW IF EXISTS records;
CREATE VIEW records AS SELECT {columns} FROM record_data;
