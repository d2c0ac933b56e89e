-- SPDX-License-Identifier: MIT
-- gradwatch storage, version 5: a run's tags and note.
--
-- Set by people, not by the training job: PATCH /api/v1/runs/{run}
-- writes them through the writer thread like any other write, and the
-- runs list and a run's object carry them.  tags is a compact JSON array
-- of distinct short strings (at most 32 of at most 64 bytes, checked by
-- gradwatchd before it writes), note a string of at most 4 KiB.  NULL
-- (every run stored before this version) reads as no tags and an empty
-- note.  Ingest never touches either column.

ALTER TABLE runs ADD COLUMN tags TEXT;
ALTER TABLE runs ADD COLUMN note TEXT;
