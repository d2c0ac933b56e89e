-- SPDX-License-Identifier: MIT
-- gradwatch storage, version 7: block summaries in a table of their own.
--
-- chunk_blocks holds the block summaries (daemon/chunk.h's block
-- format) of the chunk whose id it bears, with that chunk's last step.
-- In the chunk's own row (schema 0006) they shared the page that the
-- chunk's blob fills, so a whole-run heatmap read every page of the
-- file.  Here they are packed a few hundred to a page: the heatmap
-- walks chunks_by_series (first steps and ids only) and looks each
-- chunk up by id.  Rows are appended in id order with the chunks they
-- summarise, so writing them touches the table's last page only.
--
-- A chunk that has no row here (sparse, or written before this
-- version) is read as before: chunks.blocks when 0006 wrote it, else
-- its points.  From this version on chunks.blocks is written NULL; a
-- chunk rewritten in place loses its old chunks.blocks.  Nothing is
-- copied: the migration is instant on a database of any size.

CREATE TABLE chunk_blocks (
	chunk_id	INTEGER PRIMARY KEY REFERENCES chunks(id)
			    ON DELETE CASCADE,
	last_step	INTEGER NOT NULL,	-- the chunk's
	blocks		BLOB NOT NULL		-- daemon/chunk.h's block summaries
);
