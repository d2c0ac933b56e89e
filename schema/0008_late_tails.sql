-- SPDX-License-Identifier: MIT
-- gradwatch storage, version 8: no table changes; what the rows may hold.
--
-- From this version on, a series' tails rows may interleave: points that
-- arrive late but fall inside the open tail get a tails row of their own
-- beside the rows already written (daemon/store_tails.c), and a tail is
-- read back by merging its rows.  No step is in two rows.  A chunk_blocks
-- row of a series drawn as a line may carry each block's min and max
-- (the EXTREMES flag of daemon/chunk.h's block format), and chunk rows
-- are cut to fill a page rather than at 4,096 points.
--
-- Nothing is rewritten here.  Chunks written before their block
-- summaries (or before extremes) get them later, a few at a time while
-- the daemon is idle (daemon/store_backfill.c, its cursor in settings
-- as 'blocks_backfilled_through').  The version exists so that an older
-- gradwatchd refuses the file (it would quarantine interleaving tails
-- rows as damaged) instead of misreading it.

SELECT 1;
