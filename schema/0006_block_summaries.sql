-- SPDX-License-Identifier: MIT
-- gradwatch storage, version 6: block summaries of chunks.
--
-- chunks.blocks: for each aligned block of 128 steps that a chunk's
-- points meet, the heatmap cell of those points (its largest finite
-- value, or the non-finite value that outranks it), in daemon/chunk.h's
-- block format, written with the chunk.  A heatmap whose buckets are
-- whole blocks (bucket_size a multiple of 128, from a multiple of 128)
-- reads these instead of decoding the chunk: a whole-run heatmap costs
-- its chunks' count, not its points'.  NULL for chunks written before
-- this version and for tails rows, which are read point by point as
-- before.
--
-- The table is rebuilt so that blocks lies before data: SQLite reads a
-- row's columns in order, and a column after a blob that overflows its
-- page costs reading the whole blob.  Every row is copied once.

CREATE TABLE chunks_v6 (
	id		INTEGER PRIMARY KEY,
	series_id	INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
	first_step	INTEGER NOT NULL,
	last_step	INTEGER NOT NULL,
	n		INTEGER NOT NULL CHECK (n > 0),
	min_value	REAL,		-- over the finite values; NULL if none
	min_step	INTEGER,
	max_value	REAL,
	max_step	INTEGER,
	nonfinite	INTEGER NOT NULL DEFAULT 0,	-- count of NaN/+-Inf values
	blocks		BLOB,		-- daemon/chunk.h's block summaries
	data		BLOB		-- daemon/chunk.h's format
);
INSERT INTO chunks_v6 (id, series_id, first_step, last_step, n, min_value,
    min_step, max_value, max_step, nonfinite, data)
    SELECT id, series_id, first_step, last_step, n, min_value, min_step,
    max_value, max_step, nonfinite, data FROM chunks ORDER BY id;
DROP TABLE chunks;
ALTER TABLE chunks_v6 RENAME TO chunks;
CREATE INDEX chunks_by_series ON chunks(series_id, first_step);
