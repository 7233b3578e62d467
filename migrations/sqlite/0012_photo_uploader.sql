-- Who is uploading each chunk of a photo, so what one person has pending (uploads started
-- and not finished) can be capped.
ALTER TABLE photo_chunks ADD COLUMN user_id TEXT;
CREATE INDEX photo_chunks_by_person ON photo_chunks (user_id);
