-- +goose Up
-- A message's attachments in the order the provider sent them: every
-- attachment of a message is stored with the same created_at, so the order
-- needs a column of its own. A column without a default and a default set
-- afterwards change only the catalogue: attachments hold file contents, and
-- a default given in ADD COLUMN would rewrite the whole table under an
-- exclusive lock. Rows stored before stay without a number (their order was
-- never kept) and sort by ID.
CREATE SEQUENCE attachments_seq_seq;
ALTER TABLE attachments ADD COLUMN seq bigint;
ALTER TABLE attachments ALTER COLUMN seq SET DEFAULT nextval('attachments_seq_seq');
ALTER SEQUENCE attachments_seq_seq OWNED BY attachments.seq;

-- +goose Down
-- Drops the sequence with it (OWNED BY).
ALTER TABLE attachments DROP COLUMN seq;
