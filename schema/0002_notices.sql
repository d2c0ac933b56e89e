-- SPDX-License-Identifier: MIT
-- gradwatch storage, version 2: the notification outbox.
--
-- An alert change that a receiver (an Alertmanager, a webhook, a Slack
-- channel) must hear of becomes one row here per receiver, inserted in
-- the same transaction as the change to the alert row: a notice exists
-- exactly when its change was committed, and survives what the alert
-- survives.  The notifier thread delivers each receiver's pending rows in
-- id order and the writer marks them 'sent' or 'dropped'.  Done rows are
-- kept for a week after their alert resolves (a receiver that heard of an
-- alert hears of its every later change), then pruned.

CREATE TABLE notices (
	id		INTEGER PRIMARY KEY,
	receiver	TEXT NOT NULL,	-- the receiver's name (name= in its directive)
	alert_id	INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
	seq		INTEGER NOT NULL,	-- per alert: 1, 2, ... one per change
	status		TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
	state		TEXT NOT NULL DEFAULT 'pending'
			CHECK (state IN ('pending', 'sent', 'dropped')),
	created_at	REAL NOT NULL,
	done_at		REAL,
	attempts	INTEGER NOT NULL DEFAULT 0,
	last_error	TEXT,
	body		TEXT NOT NULL	-- the webhook notice of docs/API.md, compact JSON
);
CREATE INDEX notices_pending ON notices(receiver, id) WHERE state = 'pending';
CREATE INDEX notices_by_alert ON notices(alert_id, receiver);

-- Facts about this database.  'instance' is a random id made when the
-- database was created: notices name an alert "<instance>-<alert id>",
-- which stays unique when a database is replaced by a fresh one.
CREATE TABLE settings (
	id		INTEGER PRIMARY KEY,
	name		TEXT NOT NULL UNIQUE,
	value		TEXT NOT NULL
);
INSERT INTO settings (name, value) VALUES ('instance', lower(hex(randomblob(8))));
