-- +goose Up
-- A message's attachments in the order the provider sent them: every
-- attachment of a message is stored with the same created_at, so the order
-- needs a column of its own. Existing rows are numbered in their stored order.
ALTER TABLE attachments ADD COLUMN seq bigserial;

-- +goose Down
ALTER TABLE attachments DROP COLUMN seq;
