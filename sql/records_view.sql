-- The `records` view: the stored rows under the CSV's own column names, one view column per
-- live column (`<physical column> AS "<CSV name>"`). csv-watchdog fills in the list below and
-- re-creates the view in the same transaction whenever the column catalog changes.
DROP VIEW IF EXISTS records;
CREATE VIEW records AS SELECT {columns} FROM record_data;
