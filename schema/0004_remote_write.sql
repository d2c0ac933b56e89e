-- SPDX-License-Identifier: MIT
-- gradwatch storage, version 4: the remote-write log.
--
-- While gradwatchd runs with remote-write targets, every batch it stores
-- adds one row here in the same transaction: the run and the step range
-- the batch wrote.  The row's id is a commit sequence (AUTOINCREMENT: an
-- id is never reused, even once every row was pruned), so each target's
-- cursor is the last id it was sent through.  A sender reads the rows
-- after its cursor and sends the run's points in each range as they are
-- stored then, from chunks and tails: tails are sealed into chunks and
-- deleted, so no cursor may name a tails row, but a step range does not
-- change when its points move.  A step sent again adds a new row and is
-- sent again with its new value.  The writer deletes the rows every
-- configured target was sent through.

CREATE TABLE remote_log (
	id		INTEGER PRIMARY KEY AUTOINCREMENT,
	run_id		INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
	first_step	INTEGER NOT NULL,
	last_step	INTEGER NOT NULL,
	n		INTEGER NOT NULL,	-- steps the batch carried, at most
	stored_at	REAL NOT NULL		-- commit time: the fallback timestamp
);

-- Each target's cursor: every remote_log row up to sent_id was delivered
-- (or dropped after a permanent refusal).  A target is named by its
-- name= option, its host and port by default.
CREATE TABLE remote_cursors (
	id		INTEGER PRIMARY KEY,
	target		TEXT NOT NULL UNIQUE,
	sent_id		INTEGER NOT NULL,
	updated_at	REAL NOT NULL
);
